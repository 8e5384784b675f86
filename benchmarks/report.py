"""What every benchmark's report shares: when it ran, on what machine, and where it is written.

Each script under benchmarks/ used to build the same "machine" block (platform, cores, Python,
sometimes the load average), stamp the date and write indented JSON into benchmarks/results/
by hand; these few functions do it once, so the reports stay alike. Scripts import it as a
sibling module (`sys.path.insert(0, str(Path(__file__).parent))`, then `from report import ...`).
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def now() -> str:
    """The time in UTC, ISO 8601 to the second: a report's "date"."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def machine(*, load_average_at_start: bool = False, **extra) -> dict:
    """A report's "machine" block: platform, CPU count, Python version, the load average now
    when asked for (on a shared machine other work shows in the timings), then `extra`
    (library versions and the like)."""
    block = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    if load_average_at_start:
        block["load_average_at_start"] = os.getloadavg()
    return {**block, **extra}


def save(name: str, report: dict, *, folder: Path = RESULTS, load_average_at_end: bool = False) -> Path:
    """Write `report` as indented JSON to `folder / name` (benchmarks/results/ unless a script's
    --out says otherwise), creating the folder; returns the file's path. With
    `load_average_at_end`, the load average now goes into the report's "machine" block first."""
    if load_average_at_end:
        report["machine"]["load_average_at_end"] = os.getloadavg()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
