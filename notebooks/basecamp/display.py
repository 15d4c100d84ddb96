"""Live build progress: an ipywidgets bar in a notebook kernel, one short line per step elsewhere.

`make_display()` picks one. Both kinds implement `BuildDisplay`: `start`, `on_event` (a
`progress.StepEvent`), `finish`. Choose with the argument or the environment variable
ANNAPURNA_PROGRESS: "widget", "plain", "none", or "auto" (the default: widget inside an IPython
kernel when ipywidgets imports, plain otherwise; "widget" also falls back to plain without them).
"""

from __future__ import annotations

import html
import os
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from basecamp.errors import BuildError, InputError
from basecamp.progress import StepEvent
from basecamp.units import fmt_seconds

if TYPE_CHECKING:
    from basecamp.build import BuildResult

ENV_VAR = "ANNAPURNA_PROGRESS"
MODES = ("auto", "widget", "plain", "none")
#: Step names longer than this are cut with "..." in one-line reports.
NAME_WIDTH = 72


class BuildDisplay(Protocol):
    """What `build()` tells a display: the build starts, something happens, the build ends."""

    def start(self, total_hint: int | None = None, title: str = "") -> None: ...

    def on_event(self, event: StepEvent) -> None: ...

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None: ...


def short(text: str, width: int = NAME_WIDTH) -> str:
    """`text` on one line, cut to `width` characters with "..." when longer."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def step_line(event: StepEvent) -> str:
    """`[builder 3/5] RUN poetry install ...  CACHED` (or `12.3s`, `ERROR`, `CANCELED`)."""
    return f"{short(event.step.name)}  {event.step.outcome()}"


def summary_line(result: BuildResult | None, error: BaseException | None = None) -> str:
    """The last line of a build's report, for success or failure."""
    if error is not None:
        if isinstance(error, BuildError):
            where = f" at {short(error.failed_step)}" if error.failed_step else ""
            code = getattr(error, "step_exit_code", None)
            why = f" (exit code {code})" if code is not None else f" (exit status {error.returncode})"
            return f"FAILED{where}{why}"
        if isinstance(error, KeyboardInterrupt):
            return "INTERRUPTED: the build was stopped"
        return f"FAILED: {short(str(error).splitlines()[0] if str(error) else type(error).__name__)}"
    if result is None:
        return "finished"
    steps = [s for s in result.steps if not s.is_from]
    return (
        f"built {result.tag} in {fmt_seconds(result.wall_s)}: {len(steps)} steps, "
        f"{len(result.cached_steps)} cached, {len(result.ran_steps)} ran ({result.builder})"
    )


class PlainDisplay:
    """One line per finished Dockerfile step, then a summary line. Nothing else."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def _print(self, text: str) -> None:
        out = self.stream or sys.stdout
        print(text, file=out, flush=True)

    def start(self, total_hint: int | None = None, title: str = "") -> None:
        pass

    def on_event(self, event: StepEvent) -> None:
        if event.kind == "finished" and not event.step.internal:
            self._print(step_line(event))

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        self._print(summary_line(result, error))


class NullDisplay:
    """Shows nothing (for tests and scripts that print their own report)."""

    def start(self, total_hint: int | None = None, title: str = "") -> None:
        pass

    def on_event(self, event: StepEvent) -> None:
        pass

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        pass


class WidgetDisplay:
    """A progress bar over the Dockerfile steps, the current step, and a collapsed log pane.

    The bar's value/max come from BuildKit's `[k/n]` counters; the log pane tails the output
    (the last `tail` lines, redrawn at most every `refresh_s`). At the end the bar turns green or
    red, the label shows the summary, the pane opens on failure, and the summary is also printed
    as plain text so a saved notebook without widget state still shows the result.
    """

    def __init__(self, tail: int = 200, refresh_s: float = 0.25, show: Any = None) -> None:
        import ipywidgets as w

        self.tail: deque[str] = deque(maxlen=tail)
        self.refresh_s = refresh_s
        self._last_draw = 0.0
        self.bar = w.IntProgress(value=0, min=0, max=1, description="building", bar_style="info",
                                 layout=w.Layout(width="40%"))
        self.label = w.Label(value="starting...")
        self.log = w.HTML(value="")
        self.pane = w.Accordion(children=[self.log], titles=("build log",))
        self.pane.selected_index = None
        self.box = w.VBox([w.HBox([self.bar, self.label]), self.pane])
        self._show = show

    def start(self, total_hint: int | None = None, title: str = "") -> None:
        self.bar.max = max(total_hint or 1, 1)
        self.label.value = f"building {title}" if title else "building"
        show = self._show
        if show is None:
            from IPython.display import display as show
        show(self.box)

    def on_event(self, event: StepEvent) -> None:
        step = event.step
        if event.kind == "log":
            self.tail.append(f"#{step.vertex} {event.line}")
        elif event.kind == "started":
            self.tail.append(f"#{step.vertex} {step.name}")
            if not step.internal:
                self.label.value = short(step.name, 100)
        else:
            self.tail.append(f"#{step.vertex} {step.outcome()}")
        if event.progress.total:
            self.bar.max = max(event.progress.total, 1)
            self.bar.value = min(event.progress.done, self.bar.max)
            self.bar.description = f"{event.progress.done}/{event.progress.total}"
        now = time.monotonic()
        if now - self._last_draw >= self.refresh_s:
            self._draw()
            self._last_draw = now

    def _draw(self) -> None:
        text = html.escape("\n".join(self.tail))
        # column-reverse keeps the pane scrolled to its newest line.
        self.log.value = (
            '<div style="max-height:18em;overflow-y:auto;display:flex;flex-direction:column-reverse">'
            f'<pre style="margin:0;font-size:85%;line-height:1.25">{text}</pre></div>'
        )

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        line = summary_line(result, error)
        if error is None:
            self.bar.value = self.bar.max
            self.bar.bar_style = "success"
        else:
            self.bar.bar_style = "danger"
            self.pane.selected_index = 0
        self.label.value = short(line, 140)
        self._draw()
        print(line, flush=True)


def in_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, nbval, VS Code), False in a terminal or script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_mode(mode: str | None = None) -> str:
    """The mode `make_display` would use: "widget", "plain" or "none"."""
    chosen = (mode or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if chosen not in MODES:
        source = "argument" if mode else f"${ENV_VAR}"
        raise InputError(f"progress display {source}={chosen!r}: use one of {', '.join(MODES)}")
    if chosen == "auto":
        return "widget" if in_kernel() and _widgets_available() else "plain"
    if chosen == "widget" and not _widgets_available():
        return "plain"
    return chosen


def make_display(mode: str | None = None) -> BuildDisplay:
    """A display for one build; see the module docstring for how the mode is chosen."""
    resolved = resolve_mode(mode)
    if resolved == "widget":
        return WidgetDisplay()
    if resolved == "none":
        return NullDisplay()
    return PlainDisplay()
