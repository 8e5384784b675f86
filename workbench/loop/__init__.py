"""The labeling loop: the session's state machine, its background training and watching,
and simulated labeling. Runs headless: imports no widget, IPython or charting library.
"""
