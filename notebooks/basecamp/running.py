"""What a built image costs when it runs: stop, start, health, least privilege, reproducibility.

Every measurement runs a fresh container the same way (`_running`): detached, the lab's labels on it,
its port published on 127.0.0.1 only, and removed afterwards whatever happens (an error, Ctrl-C, a
kernel interrupt). Each timed measurement holds the engine lock (`basecamp.enginelock`), so another
notebook's build never runs beside it.

- `measure_stop(spec)`: `docker stop` timed on a container that serves, with who is PID 1 (`docker top`)
  and the exit code (137 = killed with SIGKILL after the grace period).
- `measure_start(spec)`: from `docker run` to the first HTTP 200 on /health, and the `.pyc` files the
  start wrote (`docker diff`): the modules Python compiled because the image had no bytecode for them.
- `measure_health(image)`: a HEALTHCHECK's status reaching `healthy`, and the time one check takes
  (`docker inspect`'s State.Health.Log Start/End).
- `least_privilege(spec)`: serve with `--read-only --cap-drop ALL --security-opt no-new-privileges`,
  and try a temporary file there (what such a run breaks).
- `reproducibility(step)`: build a step twice with `--no-cache`, compare the ids and every layer's
  files (`docker save`).

The pure parts (spread, PID 1 from `docker top`, `.pyc` areas from `docker diff`, health log times,
layer member comparison, verdicts) take plain data, so the unit tests need no engine.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors

from basecamp import config, engine
from basecamp.containers import throwaway
from basecamp.errors import InputError, LabError

#: The engine's default grace period: `docker stop` sends SIGTERM, waits this long, then SIGKILL.
GRACE_S = 10
#: A process killed by SIGKILL (9) exits with 128 + 9.
SIGKILL_EXIT = 137
PORT = 8000
HEALTH_PATH = "/health"
POLL_S = 0.02
READY_TIMEOUT_S = 60.0
#: The step images this notebook measures, and the user each runs as (their Dockerfile's USER).
STEPS = ("01", "06", "08", "09")


# --- how a container is run -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One way to run an image: what `docker run` changes from the image's own settings."""

    name: str
    image: str
    #: Replaces the image's ENTRYPOINT (None: the image's, as written).
    entrypoint: tuple[str, ...] | None = None
    #: Arguments after the image name (None: the image's CMD).
    command: tuple[str, ...] | None = None
    #: `--user` (None: the image's USER).
    user: str | None = None
    read_only: bool = False
    #: `--cap-drop ALL --security-opt no-new-privileges`.
    least_privilege: bool = False
    #: `--tmpfs` mounts (paths).
    tmpfs: tuple[str, ...] = ()

    def variant(self, what: str, **changes: Any) -> RunSpec:
        """This spec with `changes` (RunSpec fields), named "<name>, <what>"."""
        return replace(self, name=f"{self.name}, {what}", **changes)

    def options(self) -> list[str]:
        """The `docker run` options this spec adds (without -d, labels and the port)."""
        opts: list[str] = []
        if self.user is not None:
            opts += ["--user", self.user]
        if self.read_only:
            opts.append("--read-only")
        if self.least_privilege:
            opts += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for path in self.tmpfs:
            opts += ["--tmpfs", path]
        if self.entrypoint is not None:
            opts += ["--entrypoint", self.entrypoint[0]]
        return opts

    def docker_run(self, name: str = "") -> str:
        """The terminal line that runs this spec (`name`: a `--name` to add)."""
        import shlex

        args = ["docker", "run", "-d", *(["--name", name] if name else []),
                "-p", f"127.0.0.1:{PORT}:{PORT}", *self.options(), self.image]
        if self.entrypoint is not None:
            args += list(self.entrypoint[1:])
        if self.command is not None:
            args += list(self.command)
        return shlex.join(args)

    def _run_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ports": {f"{PORT}/tcp": ("127.0.0.1", None)}}
        if self.entrypoint is not None:
            kwargs["entrypoint"] = list(self.entrypoint)
        if self.command is not None:
            kwargs["command"] = list(self.command)
        if self.user is not None:
            kwargs["user"] = self.user
        if self.read_only:
            kwargs["read_only"] = True
        if self.least_privilege:
            kwargs["cap_drop"] = ["ALL"]
            kwargs["security_opt"] = ["no-new-privileges"]
        if self.tmpfs:
            kwargs["tmpfs"] = {path: "" for path in self.tmpfs}
        return kwargs


def shell_form(spec: RunSpec, command: str) -> RunSpec:
    """`spec` with a shell-form entrypoint: `ENTRYPOINT <command>` is stored as ["/bin/sh", "-c", command]."""
    return spec.variant("shell form", entrypoint=("/bin/sh", "-c", command), command=())


@dataclass
class _Running:
    container: Any
    host_port: int | None
    t0: float


@contextmanager
def _running(spec: RunSpec) -> Iterator[_Running]:
    """Run `spec` detached; yield it with its host port and when `docker run` was called; always remove it."""
    dk = engine.client()
    try:
        dk.images.get(spec.image)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"no image {spec.image!r} in the engine: build it first") from exc
    t0 = time.perf_counter()
    with throwaway(spec.image, start=True, what=spec.name, client=dk, **spec._run_kwargs()) as container:
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{PORT}/tcp") or []
        port = next((int(b["HostPort"]) for b in bindings if b.get("HostPort")), None)
        yield _Running(container, port, t0)


def _wait_ready(run: _Running, timeout_s: float = READY_TIMEOUT_S) -> float | None:
    """Seconds from `docker run` to the first HTTP 200 on /health; None when the container exits or time runs out."""
    from basecamp.smoke import _get

    if run.host_port is None:
        return None
    url = f"http://127.0.0.1:{run.host_port}{HEALTH_PATH}"
    deadline = run.t0 + timeout_s
    checks = 0
    while time.perf_counter() < deadline:
        if _get(url).status == 200:
            return time.perf_counter() - run.t0
        checks += 1
        if checks % 25 == 0:  # now and then: has it exited?
            run.container.reload()
            if run.container.status in ("exited", "dead"):
                return None
        time.sleep(POLL_S)
    return None


def _logs(container: Any, tail: int = 8) -> str:
    import docker.errors

    try:
        return container.logs(tail=tail).decode(errors="replace")
    except docker.errors.APIError:  # a courtesy: the container may be gone
        return ""


def _locked(what: str, say: Callable[[str], None] = print) -> Any:
    from basecamp import enginelock

    return enginelock.exclusive(enginelock.describe(what), say=say)


def engine_held(what: str, *, quiet: bool = False) -> Any:
    """Hold the engine lock around several measurements (`with bc.engine_held("..."):`): no other
    notebook's build runs between them, and a cell says at most once that it waits (`quiet`: not even
    that, for a cell whose output must hold nothing but an exercise's check). Re-entrant: the
    measurements inside take it again without waiting."""
    return _locked(what, say=(lambda _line: None) if quiet else print)


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
    import docker.errors

    from basecamp import engine

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


# --- reproducibility ------------------------------------------------------------------------------


#: A .pyc's header: magic number, flags, then the source's mtime and size (or a hash) (PEP 552).
PYC_HEADER = 16


@dataclass(frozen=True)
class Member:
    """A file of a layer tar: its size, mtime and content digest ("" for folders and links).

    `body`: for a `.pyc`, the digest of what follows its 16-byte header (magic, flags, and the source's
    mtime and size, PEP 552); for any other file, `digest`.
    """

    size: int
    mtime: int
    digest: str
    body: str = ""


@dataclass(frozen=True)
class LayerDiff:
    index: int
    created_by: str
    same: bool
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    #: Members whose content differs.
    content: tuple[str, ...] = ()
    #: Members with the same content but another mtime.
    mtime_only: tuple[str, ...] = ()
    #: Of `content`: the .pyc files whose code is the same and only the header differs.
    header_only: tuple[str, ...] = ()

    def kinds(self) -> dict[str, int]:
        """Content differences by file kind (".pyc", ".py", "RECORD", ...)."""
        out: dict[str, int] = {}
        for name in self.content:
            base = name.rsplit("/", 1)[-1]
            kind = base if "." not in base else "." + base.rsplit(".", 1)[-1]
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def line(self) -> str:
        if self.same:
            return f"layer {self.index} same: {self.created_by[:70]}"
        kinds = ", ".join(f"{n} {k}" for k, n in list(self.kinds().items())[:4])
        header = f" ({len(self.header_only)} of them .pyc headers only)" if self.header_only else ""
        return (f"layer {self.index} DIFFERS: {self.created_by[:70]}\n"
                f"    {len(self.content)} files with other content ({kinds or 'none'}){header}, {len(self.mtime_only)} "
                f"with only another mtime, {len(self.only_a) + len(self.only_b)} in one build only")


def compare_members(a: dict[str, Member], b: dict[str, Member]) -> tuple[tuple[str, ...], ...]:
    """(only in a, only in b, other content, same content but other mtime, of the other content: .pyc whose
    header alone differs), names sorted."""
    only_a = tuple(sorted(set(a) - set(b)))
    only_b = tuple(sorted(set(b) - set(a)))
    both = sorted(set(a) & set(b))
    content = tuple(n for n in both if (a[n].digest, a[n].size) != (b[n].digest, b[n].size))
    mtime = tuple(n for n in both if n not in content and a[n].mtime != b[n].mtime)
    header = tuple(n for n in content if n.endswith(".pyc") and a[n].body and a[n].body == b[n].body)
    return only_a, only_b, content, mtime, header


@dataclass(frozen=True)
class ReproResult:
    step: str
    image_a: str
    image_b: str
    layers: tuple[LayerDiff, ...]
    #: The build commands (the terminal lines).
    commands: tuple[str, ...] = field(default=())

    @property
    def same_image(self) -> bool:
        return self.image_a == self.image_b

    @property
    def differing(self) -> list[LayerDiff]:
        return [layer for layer in self.layers if not layer.same]

    def lines(self) -> list[str]:
        head = (f"{self.step}: image ids {'EQUAL' if self.same_image else 'differ'} "
                f"({self.image_a[7:19]} vs {self.image_b[7:19]}); {len(self.differing)} of {len(self.layers)} "
                "layers differ")
        return [head, *[layer.line() for layer in self.layers]]


def _members(tar_bytes: bytes) -> dict[str, Member]:
    import io

    out: dict[str, Member] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar:
            digest = ""
            body = ""
            if m.isfile():
                fh = tar.extractfile(m)
                data = fh.read() if fh else b""
                digest = hashlib.sha256(data).hexdigest()
                body = hashlib.sha256(data[PYC_HEADER:]).hexdigest() if m.name.endswith(".pyc") else digest
            elif m.issym() or m.islnk():
                digest = body = "link:" + m.linkname
            out[m.name] = Member(m.size, int(m.mtime), digest, body)
    return out


def saved_layers(image_id: str) -> tuple[list[str], dict[str, dict[str, Member]], list[str]]:
    """`docker save` of one image: its layers' diff ids in order, each layer's members, and the
    `created_by` of each non-empty history entry (aligned with the layers)."""
    from basecamp import engine
    from basecamp.probe import _ChunkReader

    image = engine.client().images.get(image_id)
    members: dict[str, dict[str, Member]] = {}
    sha: dict[str, str] = {}
    manifest: list[dict[str, Any]] = []
    configs: dict[str, bytes] = {}
    with tarfile.open(fileobj=_ChunkReader(iter(image.save())), mode="r|") as tar:  # type: ignore[call-overload]
        for m in tar:
            if not m.isfile():
                continue
            fh = tar.extractfile(m)
            data = fh.read() if fh else b""
            if m.name.endswith("/layer.tar"):  # its sha256 is the layer's diff id
                members[m.name], sha[m.name] = _members(data), "sha256:" + hashlib.sha256(data).hexdigest()
            elif m.name == "manifest.json":
                manifest = json.loads(data)
            elif m.name.endswith(".json"):
                configs[m.name] = data
    entry = manifest[0]
    cfg = json.loads(configs[entry["Config"]])
    history = [h.get("created_by", "") for h in cfg.get("history", []) if not h.get("empty_layer")]
    digests = [sha[name] for name in entry["Layers"]]
    by_digest = {sha[name]: members[name] for name in entry["Layers"]}
    return digests, by_digest, history


def compare_images(step: str, a: str, b: str, commands: Sequence[str] = ()) -> ReproResult:
    """Compare two images layer by layer: their diff ids, and for a differing layer its files."""
    digests_a, members_a, history = saved_layers(a)
    digests_b, members_b, _ = saved_layers(b)
    diffs: list[LayerDiff] = []
    for i, (da, db) in enumerate(zip(digests_a, digests_b, strict=False)):
        how = history[i] if i < len(history) else ""
        how = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", how).strip()
        if da == db:
            diffs.append(LayerDiff(i, how, True))
            continue
        only_a, only_b, content, mtime, header = compare_members(members_a[da], members_b[db])
        diffs.append(LayerDiff(i, how, False, only_a, only_b, content, mtime, header))
    if len(digests_a) != len(digests_b):
        raise LabError(f"{a} and {b} have {len(digests_a)} and {len(digests_b)} layers: not the same Dockerfile")
    return ReproResult(step, a, b, tuple(diffs), tuple(commands))


def reproducibility(step: str, *, dockerfile: Path | None = None, target: str | None = None,
                    display: Any = None) -> ReproResult:
    """Build `step` twice with `--no-cache` from one scratch copy (same inputs), compare the two images.

    `dockerfile`: build this Dockerfile (an extra derived from the step) instead of the step's own;
    its images are tagged annapurna-lab/<its stem>:repro-a and :repro-b. `target`: the stage to build,
    by default the step's shipped one (its `runtime` stage when it has one, like the measurements).
    """
    from basecamp.build import build
    from basecamp.measure import default_target
    from basecamp.scratch import scratch_copy
    from basecamp.steps import STEP_LABEL, build_step, step_name

    target = target or default_target(step)

    app = scratch_copy("repro")
    if dockerfile is None:
        builds = [build_step(step, app, label, no_cache=True, target=target, display=display)
                  for label in ("repro-a", "repro-b")]
        name = step_name(step)
    else:
        name = Path(dockerfile).stem
        builds = [build(Path(dockerfile), app.path, f"{config.IMAGE_REPO_PREFIX}/{name}:{label}", target=target,
                        no_cache=True, labels={STEP_LABEL: step_name(step)}, display=display)
                  for label in ("repro-a", "repro-b")]
    return compare_images(name, builds[0].image_id, builds[1].image_id, [b.command for b in builds])


# --- the step images, and the results file --------------------------------------------------------


def shipped(step: str, image: str) -> RunSpec:
    """The image as its Dockerfile runs it."""
    from basecamp.steps import step_name

    return RunSpec(name=step_name(step), image=image)


def record_running(*, stops: Sequence[StopResult] = (), starts: Sequence[StartResult] = (),
                   repros: Sequence[ReproResult] = ()) -> None:
    """Write the medians to the results file: step "11-running", scenario "<what>: <spec name>"
    (`basecamp.summary.running_table` reads them back)."""
    from basecamp.results import Record, record

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
    import plotly.graph_objects as go
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
