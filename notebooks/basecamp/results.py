"""The results file: one JSON line per measurement, so later notebooks can compare steps.

Appends take an exclusive lock and write whole lines, so two kernels never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from basecamp import config
from basecamp.errors import InputError

# What a record is (`Record.kind`):
#: one timed build of a scenario ("cold", "code-change", ...): the protocol's runs (basecamp.measure),
#: or a notebook's own timed build.
RUN = "run"
#: a measurement's image and its sizes (one per measurement).
IMAGE = "image"
#: written last by a measurement: one without it was interrupted or failed part-way.
DONE = "done"
#: a smoke test on a measured image (basecamp.yours): `ok`, and its line in `note`.
SMOKE = "smoke"
#: layer forensics of a measured image (basecamp.forensics).
FORENSICS = "forensics"
#: notebook 07's build context sizes and its rebuilds with and without .dockerignore (basecamp.context).
CONTEXT = "context"
#: notebook 12's CI runner builds (basecamp.cicache), scenario "ci-<mode>".
CI = "ci"
#: notebook 11's measurements on running images (basecamp.running): "stop: ...", "start: ...", "reproducible: ...".
RUNNING = "running"
KINDS = (RUN, IMAGE, DONE, SMOKE, FORENSICS, CONTEXT, CI, RUNNING)


#: One id per run of the series (`./lab test`, `./lab report`, one `./lab start`): measurements made in the same
#: run with the same inputs may be reused (basecamp.readback.measure_or_reuse).
RUN_ID_ENV = "ANNAPURNA_RUN_ID"


def run_id() -> str:
    """This run's id ($ANNAPURNA_RUN_ID), "" outside a run."""
    return os.environ.get(RUN_ID_ENV, "").strip()


def kind_of(scenario: str) -> str:
    """The kind of a record written without one (older results files, writers that leave it to this)."""
    if scenario in (IMAGE, DONE, SMOKE, FORENSICS):
        return scenario
    if scenario.startswith(("context: ", "notebook-edit ")):
        return CONTEXT
    if scenario.startswith("ci-"):
        return CI
    if scenario.startswith(("stop: ", "start: ", "reproducible: ")):
        return RUNNING
    return RUN


@dataclass(frozen=True)
class Record:
    """One record of one step: a run in one scenario ("cold", "code-change", ...), or what `kind` says.

    `kind` (KINDS) says what the record is; readers select by it. A record made without one, and every
    record of an older results file, gets `kind_of(scenario)`. Records of the other kinds keep their
    kind's name in `scenario` too ("image", "done", "smoke"), so older readers still find them.
    """

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
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: Packages Poetry downloaded in this build (basecamp.measure, when known).
    downloads: int | None = None
    #: 1, 2, ...: which run of its scenario this was, within one measurement (basecamp.measure).
    run: int | None = None
    #: The id shared by every record of one `measure_step` call ("" for records made elsewhere).
    measurement: str = ""
    #: Layer forensics (basecamp.forensics, scenario "forensics"): bytes shipped but hidden by later layers.
    wasted_bytes: int | None = None
    #: 1 - wasted/total bytes of every layer (basecamp.forensics).
    efficiency: float | None = None
    #: The project measured (basecamp.project): "annapurna" for the repo's app ("" in older records).
    project: str = ""
    #: The learner's own Dockerfile measured (basecamp.yours), as a path; "" for a step's.
    dockerfile: str = ""
    #: A check's outcome (scenario "smoke": the smoke test passed), None when the record is no check.
    ok: bool | None = None
    #: One line about the record (scenario "smoke": the smoke test's summary).
    note: str = ""
    #: What the record is (KINDS); "" means "derive it from `scenario`" (kind_of).
    kind: str = ""
    #: "workshop bundle" when the build installed from the bundle's index (basecamp.bundle), else "".
    package_index: str = ""
    #: sha256 of what the measurement's builds read (basecamp.measure.inputs_digest): the Dockerfile, the
    #: target, the build context's files and the base images' ids; "" in records made elsewhere.
    inputs: str = ""
    #: The run the record was made in ($ANNAPURNA_RUN_ID: one `./lab test`, `./lab report` or `./lab start`).
    run_id: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", kind_of(self.scenario))
        elif self.kind not in KINDS:
            raise InputError(f"record kind {self.kind!r}: use one of {', '.join(KINDS)}")


def record(rec: Record, path: Path | None = None) -> Record:
    """Append `rec` to the results file (created with its folder when missing).

    One `write` of one whole line, under an exclusive lock. A line left unfinished by a writer
    killed mid-write is closed first, so it never swallows this one (`load` skips it).
    """
    path = path or config.RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(rec), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return rec


def load(step: str | None = None, path: Path | None = None, project: str | None = None) -> list[Record]:
    """Every record (of `step`, of `project`, when given), oldest first. Unreadable lines (a truncated last one) are skipped.

    A record without a project (written before projects existed) is the repo's app's (config.DEFAULT_PROJECT).
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
        if not isinstance(data, dict) or "step" not in data or "scenario" not in data:
            continue
        # a kind this version does not know (a newer writer's) is derived from the scenario instead
        rec = Record(**{k: v for k, v in data.items() if k in known and (k != "kind" or v in KINDS)})
        if (step is None or rec.step == step) and (project is None or (rec.project or config.DEFAULT_PROJECT) == project):
            out.append(rec)
    return out
