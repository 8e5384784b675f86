"""What `name@version` names: the registry folder (`registry=`, else `WORKBENCH_MODELS`, else
`~/.cache/workbench/models`) and the bundle folder of a version in it. "name" alone, or
"name@latest", means the highest version. `load_model("name@version")` resolves here, and so
does the registry (registry.py), which adds pushing, listing, showing and pulling."""

from __future__ import annotations

import os
import re
from pathlib import Path

from workbench.learn.bundle_errors import BundleError

__all__ = ["NAME", "default_registry", "resolve"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_registry() -> Path:
    root = os.environ.get("WORKBENCH_MODELS")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "workbench" / "models"


def _root(registry) -> Path:
    return Path(registry).expanduser() if registry is not None else default_registry()


def _parse(ref: str) -> tuple[str, str | None]:
    name, _, version = str(ref).partition("@")
    if not NAME.match(name):
        raise ValueError(f"{ref!r} is not a model name: expected 'name' or 'name@version', the name "
                         "of letters, digits, '.', '_' and '-'")
    if version in ("", "latest"):
        return name, None
    if not version.isdigit():
        raise ValueError(f"in {ref!r} the version must be a number or 'latest', got {version!r}")
    return name, str(int(version))


def _versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def resolve(ref: str, *, registry=None) -> Path:
    """The bundle folder of `name@version`; a clear error naming what the registry holds."""
    root = _root(registry)
    try:
        name, version = _parse(ref)
    except ValueError as e:
        raise BundleError(f"no bundle at {ref!r}, and {e}") from None
    versions = _versions(root / name)
    if not versions:
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise BundleError(f"no bundle at {ref!r} and no model named {name!r} in the registry "
                          f"{str(root)!r}; it holds {', '.join(known) or 'no models'}")
    if version is None:
        version = str(versions[-1])
    if int(version) not in versions:
        raise BundleError(f"model {name!r} has no version {version} in {str(root)!r}; versions: "
                          f"{', '.join(map(str, versions))}")
    return root / name / version
