"""The results file: one JSON line per measurement, so later notebooks can compare steps.

Appends take an exclusive lock and write whole lines, so two kernels never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from basecamp import config
from basecamp.project import DEFAULT_NAME


@dataclass(frozen=True)
class Record:
    """One measurement of one step in one scenario ("cold", "code-change", ...)."""

    step: str
    scenario: str
    wall_s: float | None = None
    size_bytes: int | None = None
    compressed_bytes: int | None = None
    cached_steps: int | None = None
    ran_steps: int | None = None
    builder: str = ""
    base: str = ""
    image_id: str = ""
    recorded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    #: Packages Poetry downloaded in this build (basecamp.measure, when known).
    downloads: int | None = None
    #: 1, 2, ...: which run of its scenario this was, within one measurement (basecamp.measure).
    run: int | None = None
    #: The id shared by every record of one `measure_step` call ("" for records made elsewhere).
    measurement: str = ""
    #: The project measured (basecamp.project): "annapurna" for the repo's app ("" in older records).
    project: str = ""


def record(rec: Record, path: Path | None = None) -> Record:
    """Append `rec` to the results file (created with its folder when missing)."""
    path = path or config.RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(rec), sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return rec


def load(step: str | None = None, path: Path | None = None, project: str | None = None) -> list[Record]:
    """Every record (of `step`, of `project`, when given), oldest first. Unreadable lines are skipped.

    A record without a project (written before projects existed) is the repo's app's (DEFAULT_NAME).
    """
    path = path or config.RESULTS_FILE
    if not path.exists():
        return []
    known = {f.name for f in fields(Record)}
    out: list[Record] = []
    with path.open(encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            lines = fh.readlines()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        rec = Record(**{k: v for k, v in data.items() if k in known})
        if (step is None or rec.step == step) and (project is None or (rec.project or DEFAULT_NAME) == project):
            out.append(rec)
    return out
