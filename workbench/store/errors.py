"""The errors the label store raises: every one names the value and what was expected."""


class StoreError(ValueError):
    """A store path, event or request that the label store cannot accept."""


class SchemaVersionError(StoreError):
    """The store was written by a newer workbench than this one."""
