"""The one error a model bundle is refused with, in a module of its own so that every part
of bundles (bundle_read.py, bundle_write.py, bundle_config.py, bundle_graph.py, ...) and the
registry can raise it; bundle.py re-exports it."""


class BundleError(ValueError):
    """A bundle that cannot be trusted or read; the message names the file or value."""
