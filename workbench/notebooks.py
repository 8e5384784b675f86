"""`workbench lab`: copy the tutorial notebooks somewhere writable and open JupyterLab on them.

The notebooks ship in the wheel as `workbench/_notebooks` and live in the repository's
`notebooks/` in a checkout (editable install). They are copied, not opened in place, so
that running them (which saves outputs into the file) never dirties a checkout or an
installed package, and so that their label stores land next to the copies.

A copy the user has changed is never overwritten. A small manifest in the target folder
remembers the hash of each file as copied, which tells "edited by the user" (keep it) apart
from "an unedited copy of an older release" (update it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DIR = "workbench-notebooks"
FIRST = "01_quickstart.ipynb"
MANIFEST = ".workbench-notebooks.json"


def bundled_notebooks() -> Path:
    """The folder holding the tutorial notebooks: in the wheel, else in the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_notebooks", here.parent / "notebooks"):
        if any(candidate.glob("*.ipynb")):
            return candidate
    raise FileNotFoundError(
        f"no tutorial notebooks found in {str(here / '_notebooks')!r} (installed wheel) or "
        f"{str(here.parent / 'notebooks')!r} (source checkout); reinstall workbench"
    )


@dataclass
class CopyReport:
    """What copy_notebooks did with each notebook, by file name."""

    directory: Path
    copied: list[str] = field(default_factory=list)    # new in the target folder
    updated: list[str] = field(default_factory=list)   # unedited old copies, refreshed
    unchanged: list[str] = field(default_factory=list)  # already identical
    kept: list[str] = field(default_factory=list)      # edited by the user: left alone


def copy_notebooks(directory: str | os.PathLike | None = None, *,
                   source: str | os.PathLike | None = None) -> CopyReport:
    """Copy the bundled notebooks into `directory` (default ./workbench-notebooks)
    without ever overwriting a copy the user has edited."""
    target = Path(directory if directory is not None else DEFAULT_DIR)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{str(target)!r} is a file; expected a folder for the notebooks")
    source = Path(source) if source is not None else bundled_notebooks()
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    manifest = _read_manifest(manifest_path)
    report = CopyReport(target)
    for src in sorted(source.glob("*.ipynb")):
        name, dest = src.name, target / src.name
        new = _sha256(src)
        if not dest.exists():
            report.copied.append(name)
        elif _sha256(dest) == new:
            report.unchanged.append(name)
            manifest[name] = new
            continue
        elif manifest.get(name) == _sha256(dest):  # still exactly what we copied last time
            report.updated.append(name)
        else:
            report.kept.append(name)
            continue
        tmp = dest.with_name(f".{name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)  # a crash never leaves a half-written notebook
        manifest[name] = new
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return report


def lab_command(notebook: str | os.PathLike, *, no_browser: bool = False,
                port: int | None = None) -> list[str]:
    """The JupyterLab command line that opens `notebook` (its folder becomes the root)."""
    cmd = [sys.executable, "-m", "jupyter", "lab", str(notebook)]
    if no_browser:
        cmd.append("--no-browser")
    if port is not None:
        cmd.append(f"--ServerApp.port={int(port)}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses without it
    return cmd


def open_lab(directory: str | os.PathLike | None = None, *, no_browser: bool = False,
             port: int | None = None) -> int:
    """Copy the notebooks into `directory` and run JupyterLab on the quickstart.

    On POSIX the process becomes JupyterLab (exec), so Ctrl+C reaches it directly;
    elsewhere JupyterLab runs as a child and its exit status is returned.
    """
    report = copy_notebooks(directory)
    _print_report(report)
    first = report.directory / FIRST
    if not first.exists():
        raise FileNotFoundError(f"{str(first)!r} is missing after copying the notebooks")
    cmd = lab_command(first, no_browser=no_browser, port=port)
    print("workbench: " + " ".join(cmd[1:]), flush=True)
    return _run(cmd)


def _run(cmd: list[str]) -> int:
    if os.name == "posix":
        os.execv(cmd[0], cmd)  # does not return
    return subprocess.call(cmd)


def _print_report(report: CopyReport) -> None:
    where = str(report.directory)
    for verb, names in (("copied", report.copied), ("updated", report.updated)):
        if names:
            print(f"workbench: {verb} {', '.join(names)} into {where}")
    for name in report.kept:
        print(f"workbench: kept your edited {name} (delete it to get the current version)")


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):  # unreadable: treat every existing copy as the user's
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
