"""The one error a model bundle is refused with, in a module of its own so that bundle.py and
bundle_config.py (which bundle.py imports) can both raise it; bundle.py re-exports it."""


class BundleError(ValueError):
    """A bundle that cannot be trusted or read; the message names the file or value."""
