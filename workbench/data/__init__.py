"""The items people label: pools, how they are loaded and how one item is shown.

Knows nothing of labels, stores or models.
"""

from workbench.data import datasets
from workbench.data.pool import Pool

__all__ = ["Pool", "datasets"]
