"""What a person sees in the notebook: the labeling widget and the charts.

Traits and messages only; the front end (ESM + CSS) lives in the top-level `widgets/` folder.
"""
