"""Build an image with BuildKit (through the docker CLI), timed, with live progress and parsed steps.

The docker SDK cannot drive BuildKit (docker/docker-py#2230), so `build()` runs the CLI that
`engine.buildkit_cli()` found with `--progress=plain` and reads its output line by line. Without
such a CLI it falls back to the SDK's classic builder and says so in `BuildResult.builder`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from basecamp import buildcache, bundle, config, dockerparse, enginelock, process
from basecamp.buildcache import Tracking
from basecamp.display import BuildDisplay, make_display, shell_command, summary_line
from basecamp.errors import BuildError, CommandError, InputError
from basecamp.progress import ClassicParser, ProgressParser, Step

CLASSIC_BUILDER = "classic builder (docker SDK fallback)"
#: How long an interrupted CLI gets to cancel its build (SIGINT), then to stop (SIGTERM).
INTERRUPT_GRACE_S = (10.0, 5.0)


def _dies_with_us(argv: list[str]) -> list[str]:
    """`argv`, run so that it gets SIGINT (a cancelled build) when the process that started it dies.

    A Ctrl-C or kernel interrupt reaches Python, and `_stop` cancels the build. A kernel *restart*
    kills the kernel outright (SIGKILL): nothing of ours runs, and the CLI, started in its own session
    so a terminal's Ctrl-C reaches us only, would go on building beside the next notebook's
    measurement, outside the engine lock. Linux's parent-death signal (util-linux `setpriv
    --pdeathsig`, kept across its exec of the CLI) cancels it instead. Where `setpriv` is missing
    (macOS), the CLI runs as before.
    """
    setpriv = _setpriv_with_pdeathsig()
    return [setpriv, "--pdeathsig", "INT", "--", *argv] if setpriv else argv


@functools.cache
def _setpriv_with_pdeathsig() -> str | None:
    """util-linux `setpriv`, when it knows --pdeathsig (2.33 and later); else None."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    helped = process.attempt([setpriv, "--help"], timeout=10)
    return setpriv if helped is not None and "--pdeathsig" in helped.output else None
#: Log lines of the failing step (and of BuildKit's error summary) a BuildError message shows.
ERROR_TAIL = 20

_SECRET_ID = re.compile(r"[A-Za-z0-9._-]+")
_EXIT_CODE = re.compile(r"(?:exit code:|non-zero code:)\s*(\d+)")
#: A file every build appends one JSON line to (when it started, seconds, tag, --no-cache), when set: `./lab test`
#: sets it (tests/conftest.py) so that its summary can say how much of each phase was `docker build` running.
BUILD_TIMES_ENV = "ANNAPURNA_BUILD_TIMES"


def _note_build_time(result: BuildResult, no_cache: bool) -> None:
    """One line per finished build in $ANNAPURNA_BUILD_TIMES (unset: nothing). Kernels and subprocesses inherit it."""
    path = os.environ.get(BUILD_TIMES_ENV, "").strip()
    if not path:
        return
    line = json.dumps({"start": time.time() - result.wall_s, "wall_s": round(result.wall_s, 3), "tag": result.tag,
                       "no_cache": no_cache})
    with open(path, "a", encoding="utf-8") as out:  # one short write per line: parallel writers do not interleave
        out.write(line + "\n")


@dataclass
class BuildResult:
    """One finished build: what was built, how long it took, and every Dockerfile step's outcome."""

    tag: str
    image_id: str
    dockerfile: Path
    context: Path
    #: The CLI's description (engine.BuildCLI.description), or CLASSIC_BUILDER.
    builder: str
    #: Seconds around the whole CLI run (time.perf_counter).
    wall_s: float
    #: Dockerfile steps in Dockerfile order (stage by stage, then k of k/n).
    steps: list[Step]
    #: Everything the build printed.
    log: str
    #: ISO 8601, UTC, when the build started.
    started_at: str
    target: str | None = None
    #: BuildKit's own vertices ("[internal] load build context", "exporting to image", ...).
    internal_steps: list[Step] = field(default_factory=list)
    #: The command line that ran (`cli_argv`) and the environment it added (DOCKER_BUILDKIT=1).
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: What the build did to BuildKit's cache records (basecamp.buildcache.track around it; None when untracked).
    tracking: Tracking | None = field(default=None, repr=False, compare=False)
    #: "workshop bundle" when the build's installers were pointed at the bundle's index (basecamp.bundle), else "".
    package_index: str = ""

    @property
    def command(self) -> str:
        """The same build as a terminal command to copy, run from the repo root (display.shell_command)."""
        return shell_command(self.argv, self.env) if self.argv else ""

    @property
    def cached_steps(self) -> list[Step]:
        """Steps whose layer came from the cache (FROM steps are never counted: they build no layer)."""
        return [s for s in self.steps if s.status == "cached" and not s.is_from]

    @property
    def ran_steps(self) -> list[Step]:
        """Steps that executed in this build (FROM steps excluded)."""
        return [s for s in self.steps if s.status == "done" and not s.is_from]

    def step_matching(self, substring: str) -> Step | None:
        """The first step whose name contains `substring` (exact case first, then ignoring case)."""
        for s in self.steps:
            if substring in s.name:
                return s
        folded = substring.casefold()
        return next((s for s in self.steps if folded in s.name.casefold()), None)

    def summary(self) -> str:
        """One line: tag, time, cached/ran counts, builder."""
        return f"{summary_line(self)} ({self.builder})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (paths as strings, steps as dicts, the command as text, the log left out)."""
        data = asdict(self)
        data.pop("log"), data.pop("tracking")
        data.pop("argv"), data.pop("env")
        data["command"] = self.command
        data["dockerfile"], data["context"] = str(self.dockerfile), str(self.context)
        data["cached"], data["ran"] = len(self.cached_steps), len(self.ran_steps)
        return data


class BuildCounts:
    """Mixin for a result that wraps one build (`self.build`): how many of its steps were cached / ran."""

    build: BuildResult

    @property
    def cached(self) -> int:
        return len(self.build.cached_steps)

    @property
    def ran(self) -> int:
        return len(self.build.ran_steps)


def dockerfile_stages(text: str | dockerparse.Dockerfile) -> list[str]:
    """Stage names in file order, as BuildKit prints them: the `AS` name, else "stage-<i>" (text or parsed model)."""
    model = dockerparse.parse(text) if isinstance(text, str) else text
    return [st.name or f"stage-{i}" for i, st in enumerate(model.stages)]


def order_steps(steps: list[Step], dockerfile_text: str | dockerparse.Dockerfile = "") -> list[Step]:
    """Dockerfile order: by stage position in the file (unknown stages last, as seen), then index."""
    rank = {name: i for i, name in enumerate(dockerfile_stages(dockerfile_text))}
    seen: dict[str | None, int] = {}
    for s in steps:
        seen.setdefault(s.stage, len(seen))

    def key(s: Step) -> tuple[int, int, int, int]:
        stage_rank = 0 if s.stage is None else rank.get(s.stage, len(rank) + seen[s.stage])
        return (stage_rank, s.index or 0, s.vertex, 0)

    return sorted(steps, key=key)


def _step_exit_code(*texts: str | None) -> int | None:
    for text in texts:
        if text and (m := _EXIT_CODE.search(text)) is not None:
            return int(m[1])
    return None


def _error_output(failed: Step | None, error_message: str | None, trailer: list[str]) -> str:
    """What a BuildError shows: the failing step's last log lines, BuildKit's error and its summary."""
    lines: list[str] = []
    if failed is not None:
        lines.append(f"{failed.name}:")
        lines += [f"  {line}" for line in failed.log[-ERROR_TAIL:]]
    if error_message:
        lines.append(f"ERROR: {error_message}")
    if trailer:
        lines.append("")
        lines += trailer[-ERROR_TAIL:]
    return "\n".join(lines)


def _attach(err: BuildError, *, step_exit_code: int | None, log: str, steps: list[Step]) -> BuildError:
    """A BuildError also carries the failing command's own exit code, the full log and the steps."""
    err.step_exit_code = step_exit_code
    err.log = log
    err.steps = steps
    return err


def build(
    dockerfile: Path,
    context: Path,
    tag: str,
    *,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    no_cache: bool = False,
    display: BuildDisplay | str | None = None,
    cache_from: list[str] | None = None,
    secrets: dict[str, str] | None = None,
    model: dockerparse.Dockerfile | None = None,
) -> BuildResult:
    """Build `dockerfile` with `context`, tag it `tag`, label it as the lab's; return what happened.

    Mechanics only: the command, its output streamed to the display and parsed, the time, and the
    build-cache records it made, tracked once (`BuildResult.tracking`, basecamp.buildcache.track).
    The engine's free disk (basecamp.disk) and the results file are the callers' (`build_step`,
    `measure_step`): a plain build reads neither.

    `display`: a BuildDisplay, a mode name for `display.make_display`, or None for the default.
    `cache_from`: images whose inline cache BuildKit may reuse (`--cache-from`; BuildKit CLI only).
    `secrets`: id -> value, handed to BuildKit as build secrets (`RUN --mount=type=secret,id=<id>`):
    written to 0600 files in a private temporary folder for the build's duration only, so a value
    never reaches an image layer, its history, its config or the command line.
    `model`: the Dockerfile already parsed (basecamp.dockerparse), when the caller has it; else it is
    read and parsed here, once.
    Raises BuildError (failing step, the CLI's exit status as `returncode`, the step's own exit
    code as `.step_exit_code`, the full output as `.log`) when the build fails. Ctrl-C / kernel
    interrupt cancels the build, waits for the CLI to exit, and re-raises KeyboardInterrupt.
    Another notebook's build or measurement on the same engine is waited for (basecamp.enginelock).
    """
    dockerfile, context = Path(dockerfile), Path(context)
    if not dockerfile.is_file():
        raise InputError(f"build: dockerfile {dockerfile} does not exist")
    if not context.is_dir():
        raise InputError(f"build: context {context} is not a folder")
    if not tag or any(c.isspace() for c in tag):
        raise InputError(f"build: tag {tag!r} must be a non-empty name without spaces")
    for key in secrets or {}:
        if not _SECRET_ID.fullmatch(key):
            raise InputError(f"build: secret id {key!r} must be letters, digits, '.', '_' or '-'")
    if model is None:
        model = dockerparse.parse(dockerfile.read_text(errors="replace"))
    # one build at a time on the engine: two would time each other, and can crash a 20.10 engine
    with enginelock.exclusive(enginelock.describe(f"building {tag}")):
        result = _build_locked(dockerfile, context, tag, target, build_args, labels, no_cache, display, cache_from,
                               secrets, model)
    _note_build_time(result, no_cache)
    return result


def _build_locked(dockerfile: Path, context: Path, tag: str, target: str | None, build_args: dict[str, str] | None,
                  labels: dict[str, str] | None, no_cache: bool, display: BuildDisplay | str | None,
                  cache_from: list[str] | None, secrets: dict[str, str] | None,
                  model: dockerparse.Dockerfile) -> BuildResult:
    """`build` once the engine is the lab's alone (see basecamp.enginelock)."""
    from basecamp import engine  # here, not above: it loads the docker SDK

    all_labels = {**config.made_labels(), **(labels or {})}
    shown = display if display is not None and not isinstance(display, str) else make_display(display)
    cli = engine.buildkit_cli()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with bundle.serving() as served:  # a workshop bundle's index, served for this build only
            if cli is None:
                if secrets:
                    raise InputError("build: secrets need BuildKit, and no docker CLI here builds with it")
                result = _build_classic(engine.client(), dockerfile, context, tag, target, build_args or {},
                                        all_labels, no_cache, shown, started_at, model)
            else:
                # BuildKit's cache carries no labels: remember the cache mounts this build creates as
                # the lab's, so cold measurements and cleanup prune those and never the user's. Tracked
                # here only: a caller reads `result.tracking` (two disk-usage queries per build).
                with buildcache.track(note=tag, client=engine.client(), dockerfile_text=model) as tracking:
                    result = _build_cli(cli, dockerfile, context, tag, target, build_args or {}, all_labels,
                                        no_cache, shown, started_at, secrets or {}, cache_from or [], model)
                result.tracking = tracking
        if served is not None:
            result.package_index = bundle.PACKAGE_INDEX
    except BaseException as exc:
        shown.finish(None, exc)
        raise
    shown.finish(result)
    return result


def cli_argv(cli_argv_prefix: list[str], dockerfile: Path, context: Path, tag: str, iidfile: Path, *,
             target: str | None, build_args: dict[str, str], labels: dict[str, str], no_cache: bool,
             cache_from: list[str] | None = None,
             secret_files: dict[str, Path] | None = None) -> list[str]:
    """The full BuildKit command line (secrets by file path: their values never appear in it)."""
    argv = [*cli_argv_prefix, "--progress=plain", "--iidfile", str(iidfile), "-f", str(dockerfile), "-t", tag]
    for key, path in (secret_files or {}).items():
        argv += ["--secret", f"id={key},src={path}"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if target:
        argv += ["--target", target]
    if no_cache:
        argv.append("--no-cache")
    for ref in cache_from or []:
        argv += ["--cache-from", ref]
    return [*argv, str(context)]


def _secret_file(folder: Path, key: str, value: str) -> Path:
    """A file only its owner can read, holding one secret for one build."""
    path = folder / f"secret-{key}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return path


def _stop(proc: subprocess.Popen[str]) -> None:
    """Cancel the CLI like Ctrl-C in a terminal would, then escalate; never leave it running."""
    for sig, grace in ((signal.SIGINT, INTERRUPT_GRACE_S[0]), (signal.SIGTERM, INTERRUPT_GRACE_S[1])):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


def _build_cli(cli: Any, dockerfile: Path, context: Path, tag: str, target: str | None,
               build_args: dict[str, str], labels: dict[str, str], no_cache: bool,
               shown: BuildDisplay, started_at: str, secrets: dict[str, str],
               cache_from: list[str] | None = None, model: dockerparse.Dockerfile | None = None) -> BuildResult:
    parser = ProgressParser()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="annapurna-build-") as tmp:  # 0700, removed after the build
        iidfile = Path(tmp) / "iid"
        secret_files = {key: _secret_file(Path(tmp), key, value) for key, value in secrets.items()}
        argv = cli_argv(list(cli.argv), dockerfile, context, tag, iidfile, target=target,
                        build_args=build_args, labels=labels, no_cache=no_cache, cache_from=cache_from,
                        secret_files=secret_files)
        shown.start(None, tag, command=shell_command(argv, cli.env))
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                _dies_with_us(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors="replace", bufsize=1, env={**os.environ, **cli.env},
                start_new_session=True,  # a terminal's Ctrl-C reaches us only; _stop() forwards it
            )
        except OSError as exc:
            raise CommandError(argv, 127, str(exc), "is the docker CLI installed?") from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                for event in parser.feed(line):
                    shown.on_event(event)
            returncode = proc.wait()
        except BaseException as exc:
            _stop(proc)
            try:
                exc.log = "".join(lines)  # type: ignore[attr-defined]  # what ran, for the display
            except AttributeError:
                pass
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        wall_s = time.perf_counter() - t0
        log = "".join(lines)
        steps = order_steps(parser.steps, model if model is not None else dockerfile.read_text(errors="replace"))
        if returncode != 0:
            failed = parser.failed_step()
            err = BuildError(argv, returncode, _error_output(failed, parser.error_message, parser.trailer),
                             parser.failed_name)
            raise _attach(err, step_exit_code=_step_exit_code(parser.error_message, *parser.trailer[::-1]),
                          log=log, steps=steps)
        image_id = iidfile.read_text().strip() if iidfile.exists() else (parser.image_id or "")
    return BuildResult(tag, image_id, dockerfile, context, cli.description or " ".join(cli.argv), wall_s,
                       steps, log, started_at, target, parser.internal, argv=argv, env=dict(cli.env))


def _build_classic(dk: Any, dockerfile: Path, context: Path, tag: str, target: str | None,
                   build_args: dict[str, str], labels: dict[str, str], no_cache: bool,
                   shown: BuildDisplay, started_at: str, model: dockerparse.Dockerfile | None = None) -> BuildResult:
    parser = ClassicParser()
    command = ["docker-sdk", "build", "-f", str(dockerfile), "-t", tag, *(["--target", target] if target else []),
               *(["--no-cache"] if no_cache else []), str(context)]
    # the same build with the CLI's classic builder (the lab's labels left out, as for BuildKit)
    argv = ["docker", "build", *command[2:]]
    for key, value in build_args.items():
        argv[-1:-1] = ["--build-arg", f"{key}={value}"]
    env = {"DOCKER_BUILDKIT": "0"}
    shown.start(None, tag, command=shell_command(argv, env))
    t0 = time.perf_counter()
    chunks: Iterator[dict[str, Any]] = dk.api.build(
        path=str(context), dockerfile=str(dockerfile.resolve()), tag=tag, labels=labels, buildargs=build_args,
        target=target, nocache=no_cache, rm=True, forcerm=True, decode=True,
    )
    try:
        for chunk in chunks:
            for event in parser.feed(chunk):
                shown.on_event(event)
        for event in parser.close():
            shown.on_event(event)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # on an interrupt: drop the stream, the engine stops the build
    wall_s = time.perf_counter() - t0
    log = "".join(parser.text)
    steps = order_steps(parser.steps, model if model is not None else dockerfile.read_text(errors="replace"))
    if parser.error is not None:
        failed = parser.failed_step()
        code = parser.error_code if parser.error_code is not None else _step_exit_code(parser.error)
        err = BuildError(command, code or 1, _error_output(failed, parser.error, []),
                         failed.name if failed else None)
        raise _attach(err, step_exit_code=code, log=log, steps=steps)
    image_id = dk.images.get(tag).id
    return BuildResult(tag, image_id, dockerfile, context, CLASSIC_BUILDER, wall_s, steps, log, started_at,
                       target, [], argv=argv, env=env)
