"""The label store: an append-only log of labeling events in a folder of Parquet files.

Knows nothing of pools or models: it holds item ids, labels and who did what, when.
`files` is its only module that writes to disk; `views` are pure folds over the log;
`claims` lets several open sessions on one store serve different items.
"""

from workbench.store.log import SCHEMA_VERSION, Event, LabelStore, SchemaVersionError, StoreError

__all__ = ["SCHEMA_VERSION", "Event", "LabelStore", "SchemaVersionError", "StoreError"]
