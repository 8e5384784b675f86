"""The workbench's version, in one place: the package root and a bundle's manifest (which
records what wrote it) both read it from here, so nothing imports the root for it."""

__version__ = "0.1.0"
