"""Read a build's progress as it streams: BuildKit `--progress=plain` text, or the classic builder's JSON.

BuildKit plain output is a sequence of blocks, one per *vertex* (a node of the build graph):

    #8 [builder 4/5] RUN poetry install --no-root     <- header: "#<vertex> <name>"
    #8 sha256:32fe31fe...                             <- vertex digest (docker 20.10 CLI only)
    #8 0.190 Installing dependencies from lock file   <- log line: seconds since start, text
    #8 DONE 12.3s                                     <- or "CACHED", "ERROR: ...", "CANCELED"

Parallel stages interleave blocks, and a vertex's header is printed again each time output switches
back to it, so everything is keyed by the vertex number. A vertex is a *Dockerfile step* when its
name starts with `[<stage> k/n]` (`[k/n]` in a single-stage file; buildx may prefix a platform);
everything else (`[internal] load build definition`, `exporting to image`, `#0 building with ...`)
is internal. Lines without a `#<n>` prefix (the error summary BuildKit prints at the end) are kept
in `ProgressParser.trailer`.

Status rules: "CACHED" wins over "DONE" (docker 20.10 reports a shared FROM vertex as DONE and then,
in a later block, CACHED); a step that is CACHED never prints DONE; ERROR and CANCELED stick.
Each vertex gives exactly one "started" and at most one "finished" event; a later status line
updates the Step silently.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

StepStatus = Literal["running", "done", "cached", "error", "canceled"]
EventKind = Literal["started", "finished", "log"]

_TERMINAL = ("done", "cached", "error", "canceled")

_LINE = re.compile(r"^#(\d+) ?(.*)$")
_DONE = re.compile(r"^DONE (\d+(?:\.\d+)?)s$")
_LOG = re.compile(r"^(\d+\.\d+)(?: (.*))?$")
_HEADER = re.compile(r"^\[(?P<bracket>[^\]]+)\] ?(?P<instruction>.*)$")
#: BuildKit pads the index to the total's width: "[builder  1/10]", "[ 1/10]" (a stage of 10 steps or more).
_BRACKET = re.compile(
    r"^ *(?:(?P<platform>[a-z0-9]+/[a-z0-9_]+(?:/v\d+)?) +)?(?:(?P<stage>\S+) +)?(?P<index>\d+)/(?P<total>\d+)$"
)
_WRITING_IMAGE = re.compile(r"^writing image (sha256:[0-9a-f]{64})")
_SUMMARY_STEP = re.compile(r"^ > (\[.+\] .*):$")


@dataclass
class Step:
    """One vertex of a build. `name` is the header as printed, e.g. "[builder 3/5] RUN poetry install"."""

    vertex: int
    name: str
    stage: str | None
    index: int | None
    total: int | None
    instruction: str
    internal: bool
    status: StepStatus = "running"
    duration_s: float | None = None
    log: list[str] = field(default_factory=list)
    #: The text after "ERROR:" when the step failed.
    error: str | None = None
    #: buildx's platform prefix ("linux/amd64"), when the build names one.
    platform: str | None = None

    @property
    def keyword(self) -> str:
        """The Dockerfile instruction's keyword ("RUN", "COPY", "FROM", ...); "" for internal vertices."""
        return "" if self.internal else self.instruction.split(" ", 1)[0].upper()

    @property
    def is_from(self) -> bool:
        """A FROM step: it fetches the base image, it builds no layer (so it is neither cached nor ran)."""
        return self.keyword == "FROM"

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL

    @property
    def label(self) -> str:
        """The bracket part of the name, "[builder 3/5]" ("" for vertices without one)."""
        m = _HEADER.match(self.name)
        return f"[{m['bracket']}]" if m else ""

    def outcome(self) -> str:
        """What a one-line report shows: "CACHED", "12.3s", "ERROR", "CANCELED" or "running"."""
        if self.status == "done":
            return f"{self.duration_s:.1f}s" if self.duration_s is not None else "done"
        return self.status.upper() if self.status != "running" else "running"


@dataclass(frozen=True)
class Progress:
    """How far the Dockerfile steps are: `done` of `total` (the total grows as stages appear)."""

    done: int
    total: int


@dataclass(frozen=True)
class StepEvent:
    """Something happened to a step: it started, finished, or printed a log line (`line`)."""

    kind: EventKind
    step: Step
    progress: Progress
    line: str | None = None


def parse_header(vertex: int, name: str) -> Step:
    """A new Step from a vertex header ("[builder 3/5] RUN ...", "[internal] load ...", "exporting to image")."""
    m = _HEADER.match(name)
    b = _BRACKET.match(m["bracket"]) if m else None
    if m is None or b is None:
        return Step(vertex, name, None, None, None, name, internal=True)
    return Step(
        vertex, name, b["stage"], int(b["index"]), int(b["total"]), m["instruction"], internal=False,
        platform=b["platform"],
    )


class _Tracker:
    """What both parsers share: the steps by key, and the progress count over Dockerfile steps."""

    def __init__(self) -> None:
        self.vertices: dict[int, Step] = {}

    @property
    def steps(self) -> list[Step]:
        """Dockerfile steps only, in order of first appearance."""
        return [s for s in self.vertices.values() if not s.internal]

    @property
    def internal(self) -> list[Step]:
        return [s for s in self.vertices.values() if s.internal]

    def progress(self) -> Progress:
        """Finished Dockerfile steps over the sum of each seen stage's step count.

        BuildKit runs one FROM vertex for all stages on the same base and names it after one of
        them, so a stage whose `k/n` steps appear without its own `1/n` counts its FROM as done.
        """
        totals: dict[tuple[str | None, str | None], int] = {}
        done: set[tuple[str | None, str | None, int]] = set()
        has_first: set[tuple[str | None, str | None]] = set()
        for s in self.steps:
            key = (s.platform, s.stage)
            totals[key] = max(totals.get(key, 0), s.total or 0)
            if s.index == 1:
                has_first.add(key)
            if s.finished and s.index is not None:
                done.add((*key, s.index))
        implied = sum(1 for key in totals if key not in has_first)
        return Progress(done=min(len(done) + implied, sum(totals.values())), total=sum(totals.values()))

    def event(self, kind: EventKind, step: Step, line: str | None = None) -> StepEvent:
        return StepEvent(kind, step, self.progress(), line)

    def failed_step(self) -> Step | None:
        """The first Dockerfile step (else vertex) that reported an error."""
        errors = [s for s in self.vertices.values() if s.status == "error"]
        errors.sort(key=lambda s: s.internal)
        return errors[0] if errors else None


class ProgressParser(_Tracker):
    """Incremental parser of BuildKit `--progress=plain` output: `feed` it one line at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.trailer: list[str] = []
        self.image_id: str | None = None
        self.lines = 0

    def feed(self, line: str) -> list[StepEvent]:
        """Take one output line (with or without its newline); return what it changed."""
        line = line.rstrip("\r\n")
        self.lines += 1
        m = _LINE.match(line)
        if m is None:
            if line.strip():
                self.trailer.append(line)
            return []
        vertex, rest = int(m[1]), m[2]
        step = self.vertices.get(vertex)
        if step is None:
            step = self.vertices[vertex] = parse_header(vertex, rest)
            return [self.event("started", step)]
        if rest == step.name or rest == "...":
            return []  # the header again (output switched back to this vertex), or "more follows"
        return self._status(step, rest)

    def feed_text(self, text: str) -> list[StepEvent]:
        """Feed a whole captured log."""
        events: list[StepEvent] = []
        for line in text.splitlines():
            events += self.feed(line)
        return events

    def _status(self, step: Step, rest: str) -> list[StepEvent]:
        if (d := _DONE.match(rest)) is not None:
            was = step.status
            step.duration_s = float(d[1]) if step.status != "cached" else step.duration_s
            if was == "running":
                step.status = "done"
                return [self.event("finished", step)]
            return []
        if rest == "CACHED":
            was = step.status
            if was in ("running", "done"):
                step.status = "cached"
            return [self.event("finished", step)] if was == "running" else []
        if rest == "CANCELED" or rest.startswith("ERROR"):
            was = step.status
            if rest == "CANCELED":
                step.status = "canceled" if step.status != "error" else "error"
            else:
                step.status = "error"
                step.error = rest.removeprefix("ERROR").lstrip(":").strip() or None
            return [self.event("finished", step)] if was == "running" else []
        if (lg := _LOG.match(rest)) is not None:
            text = lg[2] or ""
            step.log.append(text)
            return [self.event("log", step, text)]
        # A status line: "sha256:...", "transferring context: 34B done", "writing image sha256:...".
        if (w := _WRITING_IMAGE.match(rest)) is not None:
            self.image_id = w[1]
        return []

    @property
    def error_message(self) -> str | None:
        """BuildKit's own words for the failure: the failing vertex's ERROR, else the trailer's last ERROR."""
        failed = self.failed_step()
        if failed is not None and failed.error:
            return failed.error
        errors = [t for t in self.trailer if t.startswith("ERROR")]
        return errors[-1].removeprefix("ERROR").lstrip(":").strip() if errors else None

    @property
    def failed_name(self) -> str | None:
        """The failing step as BuildKit names it ("[builder 4/4] RUN ..."), from the vertex or the summary."""
        failed = self.failed_step()
        if failed is not None:
            return failed.name
        for t in self.trailer:
            if (m := _SUMMARY_STEP.match(t)) is not None:
                return m[1]
        return None


def parse_log(text: str) -> ProgressParser:
    """A parser that has read a whole captured BuildKit plain log."""
    parser = ProgressParser()
    parser.feed_text(text)
    return parser


_CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_CLASSIC_FROM_AS = re.compile(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ClassicParser(_Tracker):
    """The classic builder's JSON stream (docker SDK `api.build(decode=True)`) as the same Steps.

    "Step 5/14 : RUN ..." starts step 5 (numbered over the whole file, so `index`/`total` are
    global and `stage` is the name after the last `FROM ... AS`); " ---> Using cache" marks it
    cached; the next step's start (or the stream's end) finishes it, timed with `clock`.
    The step's name is BuildKit-like, "[builder 5/14] RUN ...", so reports read the same.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.clock = clock
        self.image_id: str | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self.text: list[str] = []
        self._current: Step | None = None
        self._stage: str | None = None
        self._stage_count = 0
        self._started = 0.0
        self._pending = ""

    def feed(self, chunk: dict[str, Any]) -> list[StepEvent]:
        """Take one decoded JSON chunk; return what it changed."""
        events: list[StepEvent] = []
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            self.image_id = chunk["aux"]["ID"]
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.error = detail.get("message") or chunk.get("error") or "build failed"
            self.error_code = detail.get("code")
            self.text.append(f"ERROR: {self.error}\n")
            if self._current is not None:
                self._current.status = "error"
                self._current.error = self.error
                events.append(self._finish(self._current))
            return events
        stream = chunk.get("stream")
        if not stream:
            return events
        self.text.append(stream)
        self._pending += _ANSI.sub("", stream)
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            events += self._line(line)
        return events

    def close(self) -> list[StepEvent]:
        """The stream ended: finish the step still open."""
        events = self._line(self._pending) if self._pending else []
        self._pending = ""
        if self._current is not None and self._current.status == "running":
            events.append(self._finish(self._current))
        return events

    def _line(self, line: str) -> list[StepEvent]:
        events: list[StepEvent] = []
        if (m := _CLASSIC_STEP.match(line)) is not None:
            if self._current is not None and self._current.status == "running":
                events.append(self._finish(self._current))
            index, total, instruction = int(m[1]), int(m[2]), m[3].strip()
            if (f := _CLASSIC_FROM_AS.match(instruction)) is not None:
                self._stage = f[1] or (f"stage-{self._stage_count}" if self._stage_count else None)
                self._stage_count += 1
            label = f"{self._stage} {index}/{total}" if self._stage else f"{index}/{total}"
            step = Step(len(self.vertices) + 1, f"[{label}] {instruction}", self._stage, index, total,
                        instruction, internal=False)
            self.vertices[step.vertex] = step
            self._current, self._started = step, self.clock()
            events.append(self.event("started", step))
        elif line.strip() == "---> Using cache" and self._current is not None:
            self._current.status = "cached"
            events.append(self.event("finished", self._current))
        elif self._current is not None and line and not line.startswith(" ---> ") \
                and not line.startswith("Removing intermediate container"):
            if line.startswith(("Successfully built", "Successfully tagged")):
                return events
            self._current.log.append(line)
            events.append(self.event("log", self._current, line))
        return events

    def progress(self) -> Progress:
        """Classic steps are numbered over the whole file: finished steps of "Step k/n"'s n."""
        steps = self.steps
        total = max((s.total or 0 for s in steps), default=0)
        return Progress(done=sum(1 for s in steps if s.finished), total=total)

    def _finish(self, step: Step) -> StepEvent:
        if step.status == "running":
            step.status = "done"
        if step.status != "cached":
            step.duration_s = round(self.clock() - self._started, 3)
        return self.event("finished", step)

    def feed_all(self, chunks: Iterable[dict[str, Any]]) -> list[StepEvent]:
        """Feed a whole captured stream and close it."""
        events: list[StepEvent] = []
        for chunk in chunks:
            events += self.feed(chunk)
        return events + self.close()
