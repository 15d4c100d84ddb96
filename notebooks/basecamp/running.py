"""What a built image costs when it runs: stop, start, health, least privilege, reproducibility.

Every measurement runs a fresh container the same way (`basecamp.runspec._running`): detached, the lab's
labels on it, its port published on 127.0.0.1 only, and removed afterwards whatever happens (an error,
Ctrl-C, a kernel interrupt). Each timed measurement holds the engine lock (`basecamp.enginelock`), so
another notebook's build never runs beside it.

- `measure_stop(spec)`: `docker stop` timed on a container that serves, with who is PID 1 (`docker top`)
  and the exit code (137 = killed with SIGKILL after the grace period).
- `measure_start(spec)`: from `docker run` to the first HTTP 200 on /health, and the `.pyc` files the
  start wrote (`docker diff`): the modules Python compiled because the image had no bytecode for them.
- `measure_health(image)`: a HEALTHCHECK's status reaching `healthy`, and the time one check takes
  (`docker inspect`'s State.Health.Log Start/End).
- `least_privilege(spec)`: serve with `--read-only --cap-drop ALL --security-opt no-new-privileges`,
  and try a temporary file there (what such a run breaks).
- `reproducibility(step)` (basecamp.reproducible): build a step twice with `--no-cache`, compare the ids
  and every layer's files (`docker save`).

The pure parts (spread, PID 1 from `docker top`, `.pyc` areas from `docker diff`, health log times,
verdicts) take plain data, so the unit tests need no engine.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker.errors

from basecamp import engine
from basecamp.errors import InputError, LabError
from basecamp.reproducible import ReproResult
from basecamp.results import Record, record
from basecamp.runspec import (  # noqa: F401  (RunSpec, shell_form, engine_held: the notebooks' names are here)
    HEALTH_PATH,
    READY_TIMEOUT_S,
    RunSpec,
    _locked,
    _logs,
    _running,
    _wait_ready,
    engine_held,
    shell_form,
)
from basecamp.steps import step_name

GRACE_S = 10
#: A process killed by SIGKILL (9) exits with 128 + 9.
SIGKILL_EXIT = 137
#: The step images this notebook measures, and the user each runs as (their Dockerfile's USER).
STEPS = ("01", "06", "08", "09")


# --- numbers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median of some runs, with the fastest and slowest."""

    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} s ({self.low:.{digits}f}–{self.high:.{digits}f}, {self.n} runs)"


def spread(values: Sequence[float]) -> Spread:
    """The median, min and max of `values` (at least one)."""
    if not values:
        raise InputError("spread: no values")
    return Spread(median=statistics.median(values), low=min(values), high=max(values), n=len(values))


# --- stop -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """One row of `docker top`: host pid, its parent's, and the command line."""

    pid: int
    ppid: int
    command: str


def parse_top(top: dict[str, Any]) -> list[Process]:
    """`docker top`'s answer (Titles, Processes) as processes, the container's PID 1 first.

    The container's PID 1 is the one whose parent is not in the container (containerd's shim).
    """
    titles = [t.upper() for t in top.get("Titles") or []]
    try:
        i_pid, i_ppid = titles.index("PID"), titles.index("PPID")
    except ValueError as exc:
        raise InputError(f"docker top without PID/PPID columns: {titles}") from exc
    i_cmd = next((titles.index(t) for t in ("CMD", "COMMAND", "ARGS") if t in titles), len(titles) - 1)
    procs = [Process(int(row[i_pid]), int(row[i_ppid]), str(row[i_cmd])) for row in top.get("Processes") or []]
    pids = {p.pid for p in procs}
    return sorted(procs, key=lambda p: (p.ppid in pids, p.pid))


@dataclass(frozen=True)
class StopRun:
    """One `docker stop`: its wall time, the exit code, and the container's processes before it."""

    seconds: float
    exit_code: int
    processes: tuple[Process, ...]

    @property
    def pid1(self) -> str:
        return self.processes[0].command if self.processes else "?"

    @property
    def killed(self) -> bool:
        return self.exit_code == SIGKILL_EXIT


@dataclass(frozen=True)
class StopResult:
    spec: RunSpec
    runs: tuple[StopRun, ...]
    grace_s: int = GRACE_S

    @property
    def seconds(self) -> Spread:
        return spread([r.seconds for r in self.runs])

    @property
    def pid1(self) -> str:
        return self.runs[0].pid1

    @property
    def killed(self) -> int:
        """How many runs ended in SIGKILL (exit 137)."""
        return sum(r.killed for r in self.runs)

    def verdict(self) -> str:
        return stop_verdict(self)

    def line(self) -> str:
        codes = sorted({r.exit_code for r in self.runs})
        return (f"{self.spec.name}: stop {self.seconds.fmt()}, exit {'/'.join(map(str, codes))}; "
                f"PID 1: {self.pid1}")


def stop_verdict(result: StopResult) -> str:
    """"graceful" (every run exited on SIGTERM, well inside the grace), "killed" (every run got SIGKILL
    at the grace period), or "mixed"."""
    killed = result.killed
    if killed == 0 and result.seconds.high < result.grace_s / 2:
        return "graceful"
    if killed == len(result.runs) and result.seconds.low >= result.grace_s:
        return "killed"
    return "mixed"


def measure_stop(spec: RunSpec, *, repeats: int = 3, grace_s: int = GRACE_S) -> StopResult:
    """Time `docker stop` (grace `grace_s`) on a fresh container of `spec` that answers /health, `repeats` times."""
    if repeats < 1:
        raise InputError("measure_stop: repeats must be at least 1")
    runs: list[StopRun] = []
    with _locked(f"timing docker stop of {spec.name}"):
        for _ in range(repeats):
            with _running(spec) as run:
                if _wait_ready(run) is None:
                    raise LabError(f"{spec.name}: never answered {HEALTH_PATH}; logs:\n{_logs(run.container)}")
                procs = tuple(parse_top(run.container.top()))
                t = time.perf_counter()
                run.container.stop(timeout=grace_s)
                seconds = time.perf_counter() - t
                run.container.reload()
                runs.append(StopRun(seconds, int(run.container.attrs["State"]["ExitCode"]), procs))
    return StopResult(spec, tuple(runs), grace_s)


# --- start ----------------------------------------------------------------------------------------


def pyc_area(path: str) -> str:
    """Where a `.pyc` belongs: "stdlib", "dependencies" (a site-packages) or "app"."""
    if "/site-packages/" in path or "/dist-packages/" in path:
        return "dependencies"
    if re.match(r"^/usr/(local/)?lib/python3\.\d+/", path):
        return "stdlib"
    return "app"


def written_pyc(changes: Sequence[dict[str, Any]] | None) -> dict[str, int]:
    """`docker diff`'s changes (Path, Kind; 1 = added) -> added `.pyc` files per area."""
    counts = {"stdlib": 0, "dependencies": 0, "app": 0}
    for change in changes or []:
        path = str(change.get("Path", ""))
        if change.get("Kind") == 1 and path.endswith(".pyc"):
            counts[pyc_area(path)] += 1
    return counts


@dataclass(frozen=True)
class StartRun:
    seconds: float
    #: `.pyc` files the start wrote, per area (docker diff).
    pyc_written: dict[str, int]


@dataclass(frozen=True)
class StartResult:
    spec: RunSpec
    runs: tuple[StartRun, ...]

    @property
    def seconds(self) -> Spread:
        return spread([r.seconds for r in self.runs])

    @property
    def pyc_written(self) -> int:
        """`.pyc` files written by the first start (the same every start: each container is fresh)."""
        return sum(self.runs[0].pyc_written.values())

    def line(self) -> str:
        areas = ", ".join(f"{n} {a}" for a, n in self.runs[0].pyc_written.items() if n)
        return f"{self.spec.name}: ready {self.seconds.fmt()}; .pyc written at start: {self.pyc_written}" + (
            f" ({areas})" if areas else "")


def measure_start(spec: RunSpec, *, repeats: int = 3) -> StartResult:
    """Time from `docker run` to the first HTTP 200 on /health, a fresh container each time; count the
    `.pyc` files each start wrote (`docker diff`)."""
    if repeats < 1:
        raise InputError("measure_start: repeats must be at least 1")
    runs: list[StartRun] = []
    with _locked(f"timing the start of {spec.name}"):
        for _ in range(repeats):
            with _running(spec) as run:
                seconds = _wait_ready(run)
                if seconds is None:
                    raise LabError(f"{spec.name}: never answered {HEALTH_PATH}; logs:\n{_logs(run.container)}")
                runs.append(StartRun(seconds, written_pyc(run.container.diff())))
    return StartResult(spec, tuple(runs))


# --- health ---------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the engine writes it (nanoseconds, Z or an offset), to the microsecond."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        raise InputError(f"not an RFC 3339 time: {text!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def check_seconds(log: Sequence[dict[str, Any]]) -> list[float]:
    """The duration of each health check in State.Health.Log (End - Start)."""
    return [(parse_time(e["End"]) - parse_time(e["Start"])).total_seconds() for e in log]


@dataclass(frozen=True)
class HealthResult:
    spec: RunSpec
    #: The test as the image stores it (Config.Healthcheck.Test).
    test: tuple[str, ...]
    status: str
    #: From `docker run` to the status `healthy` (None: never).
    seconds_to_healthy: float | None
    #: The duration of each check the engine logged.
    check_s: tuple[float, ...]
    exit_codes: tuple[int, ...]
    output: str = ""

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"

    def line(self) -> str:
        cost = spread(self.check_s).fmt(3) if self.check_s else "no check logged"
        when = f"after {self.seconds_to_healthy:.1f} s" if self.seconds_to_healthy is not None else "never"
        return f"{self.spec.name}: {self.status} ({when}); one check: {cost}"


def measure_health(spec: RunSpec, *, timeout_s: float = 30, checks: int = 3) -> HealthResult:
    """Run `spec` (an image with a HEALTHCHECK), wait for `healthy` (or `timeout_s`), then until `checks`
    checks are logged; read their durations from State.Health.Log."""
    try:
        cfg = engine.client().images.get(spec.image).attrs.get("Config") or {}
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"no image {spec.image!r} in the engine: build it first") from exc
    test = tuple((cfg.get("Healthcheck") or {}).get("Test") or ())
    if not test:
        raise InputError(f"{spec.image} has no HEALTHCHECK")
    with _locked(f"watching the health check of {spec.name}"), _running(spec) as run:
        healthy_at: float | None = None
        state: dict[str, Any] = {}
        deadline = run.t0 + timeout_s
        while time.perf_counter() < deadline:
            run.container.reload()
            state = run.container.attrs.get("State", {}).get("Health") or {}
            if healthy_at is None and state.get("Status") == "healthy":
                healthy_at = time.perf_counter() - run.t0
            if run.container.status in ("exited", "dead"):
                break
            if (healthy_at is not None or state.get("Status") == "unhealthy") and len(state.get("Log") or []) >= checks:
                break
            time.sleep(0.1)
        log = state.get("Log") or []
        return HealthResult(spec, test, str(state.get("Status", "none")), healthy_at,
                            tuple(check_seconds(log)), tuple(int(e.get("ExitCode", -1)) for e in log),
                            str(log[-1].get("Output", "")).strip()[:300] if log else "")


# --- least privilege ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivilegeResult:
    spec: RunSpec
    serves: bool
    #: From `docker run` to /health's 200 (None when it never answered).
    seconds: float | None
    #: Could the app's python create a temporary file (tempfile.mkstemp)?
    temp_file: bool
    temp_error: str
    logs: str = ""

    def line(self) -> str:
        serve = f"serves /health after {self.seconds:.1f} s" if self.seconds is not None else "does NOT serve"
        temp = "a temporary file works" if self.temp_file else f"a temporary file fails ({self.temp_error})"
        return f"{self.spec.name}: {serve}; {temp}"


#: Ask the image's python for a temporary file (the default probe of `least_privilege`).
TEMP_PROBE = ("python", "-c", "import tempfile; tempfile.mkstemp(); print('ok')")


def least_privilege(spec: RunSpec, *, probe: Sequence[str] = TEMP_PROBE) -> PrivilegeResult:
    """Serve `spec`, then run `probe` in the same running container (`docker exec`, as the container's
    user): by default a temporary file, what a read-only root file system takes away from an app."""
    with _locked(f"least-privilege run of {spec.name}"), _running(spec) as run:
        seconds = _wait_ready(run)
        if seconds is None:
            return PrivilegeResult(spec, False, None, False, "not running", _logs(run.container))
        code, out = run.container.exec_run(list(probe))
        text = out.decode(errors="replace").strip()
        error = "" if code == 0 else (text.splitlines()[-1] if text else f"exit {code}")
        return PrivilegeResult(spec, True, seconds, code == 0, error)


# --- the step images, and the results file --------------------------------------------------------


def shipped(step: str, image: str) -> RunSpec:
    """The image as its Dockerfile runs it."""
    return RunSpec(name=step_name(step), image=image)


def record_running(*, stops: Sequence[StopResult] = (), starts: Sequence[StartResult] = (),
                   repros: Sequence[ReproResult] = ()) -> None:
    """Write the medians to the results file: step "11-running", scenario "<what>: <spec name>"
    (`basecamp.summary.running_table` reads them back)."""
    for stop in stops:
        record(Record(step=RESULTS_STEP, scenario=f"stop: {stop.spec.name}", wall_s=round(stop.seconds.median, 6),
                      image_id=stop.spec.image, ok=stop.killed == 0, note=stop.line()))
    for start in starts:
        record(Record(step=RESULTS_STEP, scenario=f"start: {start.spec.name}", wall_s=round(start.seconds.median, 6),
                      image_id=start.spec.image, note=start.line()))
    for repro in repros:
        record(Record(step=RESULTS_STEP, scenario=f"reproducible: {repro.step}", ok=repro.same_image,
                      image_id=repro.image_a, note=repro.lines()[0]))


#: The results file's step name for this notebook's records.
RESULTS_STEP = "11-running"


# --- chart ----------------------------------------------------------------------------------------


def plot_running(stops: Sequence[StopResult], starts: Sequence[StartResult],
                 title: str = "What the running image costs") -> Any:
    """Two panels: `docker stop` per way of starting (log scale: the grace period dwarfs a clean stop)
    and `docker run` to the first HTTP 200 per run spec; medians, with min-max as error bars."""
    import plotly.graph_objects as go  # plotly on first plot only: importing basecamp.running stays light
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("docker stop (s, log scale)", "docker run to first HTTP 200 (s)"))
    for col, results, colour in ((1, stops, "#d62728"), (2, starts, "#1f77b4")):
        names = [r.spec.name for r in results]
        med = [r.seconds.median for r in results]
        fig.add_trace(go.Bar(
            x=names, y=med, marker_color=colour, showlegend=False,
            error_y={"type": "data", "symmetric": False,
                     "array": [r.seconds.high - r.seconds.median for r in results],
                     "arrayminus": [r.seconds.median - r.seconds.low for r in results]},
            hovertext=[r.line() for r in results], hoverinfo="text",
        ), row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.add_hline(y=GRACE_S, line_dash="dot", annotation_text="grace period", row=1, col=1)
    fig.update_layout(title=title, height=520, margin={"l": 10, "r": 10, "t": 60, "b": 10})
    fig.update_xaxes(tickangle=-35)
    return fig
