"""Models and what they rank: learners, networks, query strategies and the labeling queue.

Imports `workbench.data` only.
"""
