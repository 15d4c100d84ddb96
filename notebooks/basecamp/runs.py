"""What a measurement is made of: its runs, their statistics, the measured step, and its row.

`basecamp.measure` makes these (the protocol), `basecamp.readback` rebuilds them from the results file.
`MeasuredRow` is the one row type of the tables (basecamp.tables), the charts (basecamp.plots), the
summary and the bench: every column name (`cold_median_s`, `gzipped`, ...) comes from its fields here.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp.errors import InputError
from basecamp.units import fmt_bytes

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.images import ImageInfo

#: The protocol's scenarios, in the order a measurement runs them (cold first: the changes edit the copy).
SCENARIOS = ("cold", "code-change", "dependency-change", "version-bump")


@dataclass
class Run:
    """One measured build of one scenario."""

    scenario: str
    wall_s: float
    cached_steps: int
    ran_steps: int
    #: Packages Poetry downloaded (basecamp.installer), None when unknown.
    downloads: int | None
    image_id: str
    #: The build itself; None for a run read back from the results file.
    build: BuildResult | None
    #: 1 for the first run of its scenario, 2 for the next, ...
    index: int = 1
    size_bytes: int | None = None
    #: Packages Poetry installed / took from its cache (basecamp.installer), None when unknown.
    installed: int | None = None
    from_cache: int | None = None
    #: Cache-mount records this build used that the lab did not create ("<id>: <description>").
    foreign_cache_mounts: list[str] = field(default_factory=list)

    def line(self) -> str:
        """`cold 1: 41.2 s, 0 cached, 4 ran, 27 downloads`."""
        dl = f", {self.downloads} downloads" if self.downloads is not None else ""
        return f"{self.scenario} {self.index}: {self.wall_s:.1f} s, {self.cached_steps} cached, {self.ran_steps} ran{dl}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "index": self.index, "wall_s": round(self.wall_s, 3),
            "cached_steps": self.cached_steps, "ran_steps": self.ran_steps, "downloads": self.downloads,
            "installed": self.installed, "from_cache": self.from_cache, "image_id": self.image_id,
            "size_bytes": self.size_bytes,
        }


def fmt_range(values: Iterable[int | None]) -> str:
    """"3" when every value is 3, "2-3" when they differ, "?" when any is unknown, "" for none."""
    vals = list(values)
    if not vals:
        return ""
    if any(v is None for v in vals):
        return "?"
    lo, hi = min(vals), max(vals)  # type: ignore[type-var]
    return str(lo) if lo == hi else f"{lo}-{hi}"


@dataclass
class ScenarioStats:
    """The runs of one scenario and their median and spread."""

    scenario: str
    runs: list[Run]

    def _walls(self) -> list[float]:
        if not self.runs:
            raise InputError(f"scenario {self.scenario!r} has no runs")
        return [r.wall_s for r in self.runs]

    @property
    def median_s(self) -> float:
        return float(statistics.median(self._walls()))

    @property
    def min_s(self) -> float:
        return min(self._walls())

    @property
    def max_s(self) -> float:
        return max(self._walls())

    @property
    def spread_s(self) -> float:
        """max - min: how far apart the fastest and the slowest run were."""
        return self.max_s - self.min_s

    @property
    def cached(self) -> str:
        """Cached step counts over the runs, as a range ("3" or "2-3")."""
        return fmt_range(r.cached_steps for r in self.runs)

    @property
    def ran(self) -> str:
        return fmt_range(r.ran_steps for r in self.runs)

    @property
    def downloads(self) -> str:
        return fmt_range(r.downloads for r in self.runs)

    def timing(self) -> str:
        """"41.2 s (40.1-43.0)": the median, then min-max when there is more than one run."""
        if len(self.runs) == 1:
            return f"{self.median_s:.1f} s"
        return f"{self.median_s:.1f} s ({self.min_s:.1f}–{self.max_s:.1f})"

    def summary(self) -> str:
        dl = f", {self.downloads} downloads" if self.downloads not in ("", "?") else ""
        return (f"{self.scenario}: {self.timing()} over {len(self.runs)} run(s); "
                f"{self.cached} cached, {self.ran} ran{dl}")

    def cells(self) -> ScenarioCells:
        """This scenario's columns in a row (times rounded to the millisecond); empty cells without runs."""
        if not self.runs:
            return NOT_MEASURED
        return ScenarioCells(
            median_s=round(self.median_s, 3), min_s=round(self.min_s, 3), max_s=round(self.max_s, 3),
            spread_s=round(self.spread_s, 3), runs=len(self.runs), cached=self.cached, ran=self.ran,
            downloads=self.downloads, timing=self.timing(),
        )


@dataclass(frozen=True)
class ScenarioCells:
    """One scenario's columns in a row. A scenario not measured has NOT_MEASURED (None / 0 / ""), so rows line up."""

    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    #: max - min.
    spread_s: float | None = None
    runs: int = 0
    #: Dockerfile steps cached / ran and packages downloaded, as ranges over the runs ("3", "2-3", "?").
    cached: str = ""
    ran: str = ""
    downloads: str = ""
    #: The formatted time, "11.0 s (10.0–12.0)"; its column is named after the scenario alone ("cold").
    timing: str = ""


NOT_MEASURED = ScenarioCells()


def column_key(scenario: str) -> str:
    """The prefix of a scenario's columns: "code-change" -> "code_change" (code_change_median_s, ...)."""
    return scenario.replace("-", "_")


@dataclass(frozen=True)
class MeasuredRow(Mapping[str, Any]):
    """One measured step as one row: what the tables, the charts, the summary and the bench show of it.

    Read it by attribute (`row.size_bytes`, `row.cells("cold").median_s`). It also reads like the flat
    dict of its CSV columns (`row["cold_median_s"]`, `as_dict()`): step, label, smoke, dockerfile,
    project, base, builder, target, repeats, size_bytes, size, compressed_bytes, gzipped, then for each
    scenario (underscored: cold, code_change, ...): <s>_median_s, <s>_min_s, <s>_max_s, <s>_spread_s,
    <s>_runs, <s>_cached, <s>_ran, <s>_downloads, and <s> (the formatted timing).
    """

    step: str
    #: What the row is: the step's name, or "your Dockerfile (<file>)" (basecamp.yours).
    label: str
    #: The smoke test after the measurement: "ok", "failed", or "" when not run.
    smoke: str
    #: The learner's own Dockerfile measured ("" for a step).
    dockerfile: str
    project: str
    base: str
    builder: str
    target: str
    repeats: int
    size_bytes: int
    #: size_bytes and compressed_bytes as `docker images` writes them ("877 MB").
    size: str
    compressed_bytes: int | None
    gzipped: str
    #: Every scenario of SCENARIOS, in order, NOT_MEASURED where it was not measured.
    scenarios: Mapping[str, ScenarioCells] = field(default_factory=dict)

    def cells(self, scenario: str) -> ScenarioCells:
        return self.scenarios.get(scenario, NOT_MEASURED)

    def as_dict(self) -> dict[str, Any]:
        """The flat columns, in order: what the CSV and the bench's JSON hold."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scenarios"}
        for scenario, cells in self.scenarios.items():
            key = column_key(scenario)
            for f in fields(cells):
                out[key if f.name == "timing" else f"{key}_{f.name}"] = getattr(cells, f.name)
        return out

    # Read as a Mapping of its columns: the notebooks index rows by column name (`row["size_bytes"]`).
    def __getitem__(self, column: str) -> Any:
        return self.as_dict()[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())



def _smoke_cell(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "failed")



@dataclass(frozen=True)
class LabTime:
    """Where a measurement's time went: the builds, and the lab's own work around them."""

    #: Every build's wall time (the measured runs and the warm-ups), and how many builds.
    builds_s: float
    builds: int
    #: Sizing the measured image: `docker save` streamed and its gzip size counted, its history read.
    sizing_s: float
    #: Edits between builds: the code edit, the version bump, the dependency change with its relock.
    changes_s: float
    #: The whole protocol, from before the first build to after the last.
    total_s: float

    @property
    def lab_s(self) -> float:
        """The lab's own time: everything in the protocol that is not a build."""
        return max(self.total_s - self.builds_s, 0.0)

    @property
    def share(self) -> float:
        """The lab's own time as a fraction of the builds' time."""
        return self.lab_s / self.builds_s if self.builds_s > 0 else 0.0

    def line(self) -> str:
        """'8 builds 29.5 s; the lab's own work around them 9.9 s (34% of the builds): sizing 9.0 s, ...'."""
        rest = max(self.lab_s - self.sizing_s - self.changes_s, 0.0)
        return (f"{self.builds} builds {self.builds_s:.1f} s; the lab's own work around them {self.lab_s:.1f} s "
                f"({self.share:.0%} of the builds): sizing the image {self.sizing_s:.1f} s, edits and relocks "
                f"{self.changes_s:.1f} s, the rest {rest:.1f} s (cache tracking, cache-mount checks, records)")


@dataclass
class StepMeasurement:
    """A step measured with the protocol: its image, and each scenario's runs."""

    step: str
    image: ImageInfo
    #: The base the measured image starts from: "python:3.11-slim-bookworm (stand-in)" or "(official)".
    base: str
    builder: str
    scenarios: dict[str, ScenarioStats]
    target: str | None = None
    repeats: int = 0
    #: The id every record of this measurement carries in the results file.
    measurement: str = ""
    #: The project measured (basecamp.project): "annapurna" for the repo's own app.
    project: str = "annapurna"
    #: The learner's own Dockerfile measured (basecamp.yours); "" for a step.
    dockerfile: str = ""
    #: Its smoke test after the measurement passed (True), failed (False), or was not run (None).
    smoke_ok: bool | None = None
    #: Where the protocol's time went (builds against the lab's own work); None when read back from a file.
    lab_time: LabTime | None = None

    @property
    def label(self) -> str:
        """What the row is: the step's name, or "your Dockerfile (<file>)"."""
        return f"your Dockerfile ({Path(self.dockerfile).name})" if self.dockerfile else self.step

    def row(self) -> MeasuredRow:
        """The measurement as one row (MeasuredRow): every scenario of SCENARIOS, empty where not measured."""
        return MeasuredRow(
            step=self.step, label=self.label, smoke=_smoke_cell(self.smoke_ok), dockerfile=self.dockerfile,
            project=self.project, base=self.base, builder=self.builder, target=self.target or "",
            repeats=self.repeats, size_bytes=self.image.size_bytes, size=fmt_bytes(self.image.size_bytes),
            compressed_bytes=self.image.compressed_bytes, gzipped=fmt_bytes(self.image.compressed_bytes),
            scenarios={s: self.scenarios[s].cells() if s in self.scenarios else NOT_MEASURED for s in SCENARIOS},
        )

    def summary(self) -> str:
        """A few lines: the image, then one line per scenario."""
        lines = [f"{self.step}: {self.image.summary()} — base {self.base}"]
        lines += [f"  {stats.summary()}" for stats in self.scenarios.values()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: the row, the measurement id, the image, and every run."""
        return {
            **self.row().as_dict(), "measurement": self.measurement,
            "image": {"ref": self.image.ref, "id": self.image.id, "size_bytes": self.image.size_bytes,
                      "compressed_bytes": self.image.compressed_bytes, "base_ref": self.image.base_ref},
            "runs": {s: [r.as_dict() for r in stats.runs] for s, stats in self.scenarios.items()},
        }
