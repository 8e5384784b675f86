"""The workbench's version, in one place: the package root, a bundle's manifest (which
records what wrote it) and the wheel's metadata (pyproject.toml's [tool.hatch.version]) all
read it from here."""

__version__ = "0.1.0"
