"""What a learner sees of a build: live progress while it runs, then one line, its command, its log.

Every build shows, in this order:

1. the terminal command that does the same build (`shell_command`: the real argv, minus the
   lab's own flags, paths relative to the repo root), to copy and run;
2. while it runs: a progress bar (an ipywidgets bar in JupyterLab; nothing in plain mode);
3. when it ends: ONE summary line (time, steps cached and ran) with the full BuildKit log
   collapsed under it (`BuildLog`: an HTML `<details>` in a notebook, whose text/plain form is
   one line, so the stored outputs stay short; a terminal gets the line only).

`make_display()` picks the display. Every kind implements `BuildDisplay`: `start`, `on_event`
(a `progress.StepEvent`), `finish`; ours also `report(result, line)`, so a measurement can show
its own line ("cold 1: ...") instead of the build's (`make_display(report=False)`), and share a
set of commands already shown (`commands=`) so a command repeated build after build is shown once.
Choose the mode with the argument or the environment variable ANNAPURNA_PROGRESS: "widget",
"plain", "none", or "auto" (the default: widget inside an IPython kernel when ipywidgets
imports, plain otherwise; "widget" also falls back to plain without them). Plain inside a kernel
(`./lab test`, stored outputs) shows the same command, line and collapsed log as the widget, without the bar.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from basecamp import config
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
    """What `build()` tells a display: the build starts (with its command), something happens, it ends."""

    def start(self, total_hint: int | None = None, title: str = "", command: str | None = None) -> None: ...

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
    """A build's one line, for success or failure: `built <tag> in 11.6 s: 3 steps, 0 cached, 3 ran`."""
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
    # a build that installed from the workshop bundle's index says so beside its time (basecamp.bundle)
    where = f" (from the {result.package_index}'s index)" if result.package_index else ""
    return (f"built {result.tag} in {fmt_seconds(result.wall_s)}{where}: {len(steps)} steps, "
            f"{len(result.cached_steps)} cached, {len(result.ran_steps)} ran")


# ---------------------------------------------------------------------------------------------
# The terminal command


#: Flags only the lab needs (its progress parser, image-id file, ownership labels): not shown.
_LAB_ONLY_WITH_VALUE = ("--progress", "--iidfile", "--label", "--metadata-file")
#: Flags whose value is a path: shown relative to the repo root when inside it.
_PATH_FLAGS = ("-f", "--file")


def _relative(path: str, root: Path) -> str:
    """`path` relative to `root` ("." for root itself) when it lies inside it, else unchanged."""
    p = Path(path)
    if not p.is_absolute():
        return path
    for base in dict.fromkeys((root, root.resolve())):
        for candidate in dict.fromkeys((p, p.resolve())):
            try:
                rel = candidate.relative_to(base)
            except ValueError:
                continue
            return rel.as_posix() or "."
    return path


def _program(argv0: str) -> str:
    """`docker` when that name on PATH is the CLI that ran (the usual case), else its full path."""
    name = Path(argv0).name
    if not Path(argv0).is_absolute():
        return argv0
    found = shutil.which(name)
    if found and Path(found).resolve() == Path(argv0).resolve():
        return name
    return argv0


def _secret(spec: str) -> str:
    """`id=<id>,src=<temporary file>` -> `id=<id>,src=<id>.secret`: the lab's file is gone after the build."""
    fields = spec.split(",")
    ids = [f.split("=", 1)[1] for f in fields if f.startswith("id=")]
    if not ids:
        return spec
    return ",".join(f"src={ids[0]}.secret" if f.split("=", 1)[0] in ("src", "source") else f for f in fields)


def shell_command(argv: Sequence[str], env: Mapping[str, str] | None = None, *, root: Path | None = None) -> str:
    """The build command a learner can copy and run from the repo root, made from the argv that ran.

    `env` (DOCKER_BUILDKIT=1 for the 20.10 CLI) goes in front. Dropped: `--progress`, `--iidfile`,
    `--label` (the lab's parser, image-id file and ownership labels; the build is the same without
    them). A `--secret`'s temporary file becomes `<id>.secret` (put the value there to run it).
    The Dockerfile (`-f`) and the context (the last argument) are relative to `root` (default: the
    repo root) when inside it. Every word is shell-quoted.
    """

    root = config.REPO_ROOT if root is None else root
    if not argv:
        raise InputError("shell_command: empty argv")
    words = [f"{key}={shlex.quote(value)}" for key, value in (env or {}).items()]
    words.append(_program(argv[0]))
    args = list(argv[1:])
    context = args.pop() if args and not args[-1].startswith("-") else None
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        if flag in _LAB_ONLY_WITH_VALUE and flag.startswith("--"):
            i += 1 if eq else 2
            continue
        if arg in _PATH_FLAGS and i + 1 < len(args):
            words += [arg, _relative(args[i + 1], root)]
            i += 2
            continue
        if arg == "--secret" and i + 1 < len(args):
            words += [arg, _secret(args[i + 1])]
            i += 2
            continue
        if flag == "--secret" and eq:
            words.append(f"--secret={_secret(value)}")
            i += 1
            continue
        words.append(arg)
        i += 1
    if context is not None:
        words.append(_relative(context, root))
    return " ".join(w if w.split("=", 1)[0] in (env or {}) else shlex.quote(w) for w in words)


# ---------------------------------------------------------------------------------------------
# Host names in logs


#: Top-level domains a host name in a build log ends with; a token like "<name>.<tld>" is a host.
_TLDS = ("com", "org", "net", "io", "dev", "edu", "gov", "co", "cloud", "info", "uk", "de", "fr", "eu", "cn",
         "jp", "ru", "in", "br", "au", "ca", "nl", "ch", "se", "us")
_URL_HOST = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/\s]*@)?(\[[0-9a-fA-F:.]+\]|[^/\s:'\"\]>)]+)")
_BARE_HOST = re.compile(r"(?:connection \(\d+\): |session for |host )([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_DOMAIN = re.compile(r"(?<![\w.@/-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + "|".join(_TLDS) + r"))(?![\w-]|\.\w)",
                     re.IGNORECASE)
#: An image reference's registry part ("<registry>/library/python:3.11"), as BuildKit prints names.
_IMAGE_REGISTRY = re.compile(r"(?<![\w./:@-])(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?/(?:library/)?(?=[a-z0-9])",
                             re.IGNORECASE)
_KEEP = {"localhost", "index.invalid", "host.invalid"}
_INDEX_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "POETRY_PYPI_MIRROR_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
              "UV_INDEX", "UV_EXTRA_INDEX_URL")
HOST_PLACEHOLDER = "host.invalid"


def _hosts_in(text: str, extra: Iterable[str] = ()) -> list[str]:
    from urllib.parse import urlsplit

    hosts = {m[1].strip("[]") for m in _URL_HOST.finditer(text)}
    hosts |= {m[1] for m in _BARE_HOST.finditer(text)}
    for name in _INDEX_ENV:
        for url in os.environ.get(name, "").split():
            host = urlsplit(url).hostname
            if host:
                hosts.add(host)
    hosts |= {h for h in extra if h}
    keep = {h for h in hosts if h.lower() in _KEEP or re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", h)}
    return sorted(hosts - keep, key=len, reverse=True)


_CREDENTIALS = re.compile(r"(://)[^@/\s]+@")


def _domain(m: re.Match[str]) -> str:
    name = m[1]
    if name.lower() in _KEEP or not re.search(r"[a-z]", name.rsplit(".", 1)[0], re.IGNORECASE):
        return name  # "1.0.dev": a version, not a host
    return HOST_PLACEHOLDER


def redact_hosts(text: str, extra_hosts: Iterable[str] = ()) -> str:
    """`text` with every network host name replaced by "host.invalid" (addresses and localhost kept).

    Credentials in URLs become `***`.

    Build logs name the package index and the image registry (URLs, "Starting new HTTPS
    connection (1): <host>:443", "<registry>/library/python:3.11" in FROM lines); a notebook's stored
    outputs must not. Image names lose their registry part, as `docker images` shows them.
    """
    text = _CREDENTIALS.sub(r"\1***@", _IMAGE_REGISTRY.sub("", text))
    for host in _hosts_in(text, extra_hosts):
        text = re.sub(rf"(?<![\w-]){re.escape(host)}(?![\w-])", HOST_PLACEHOLDER, text)
    return _DOMAIN.sub(_domain, text)


# ---------------------------------------------------------------------------------------------
# What a notebook shows: the command and the collapsed log, each one line of text/plain


_MONO = "font-family:var(--jp-code-font-family,monospace)"


@dataclass(frozen=True)
class ShellCommand:
    """A terminal command to copy: HTML (a caption and the command) in a notebook, `$ <command>` as text."""

    command: str
    caption: str = "The same build in a terminal, from the repo root:"

    def text(self) -> str:
        return f"$ {self.command}"

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        return (f'<div style="font-size:85%;opacity:0.8">{html.escape(self.caption)}</div>'
                f'<pre style="{_MONO};margin:0 0 0.4em 0;white-space:pre-wrap">{html.escape(self.command)}</pre>')


@dataclass(frozen=True)
class BuildLog:
    """A build's summary line with its full BuildKit log collapsed under it.

    In a notebook: an HTML `<details>` (closed unless `open`) whose summary is the line; its
    text/plain form is the line and the log's length: ONE line, so stored text stays short.
    Host names in the log are replaced (`redact_hosts`): the log lands in the notebook file.
    """

    line: str
    log: str
    open: bool = False

    @property
    def lines(self) -> int:
        return len(self.log.splitlines())

    def text(self) -> str:
        return f"{self.line}  [BuildKit log: {self.lines} lines]" if self.log else self.line

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        line = f"<code>{html.escape(self.line)}</code>"
        if not self.log:
            return f"<div>{line}</div>"
        body = html.escape(redact_hosts(self.log.rstrip("\n")))
        return (f"<details{' open' if self.open else ''}><summary>{line} "
                f'<span style="opacity:0.7">· full BuildKit log: {self.lines} lines</span></summary>'
                f'<pre style="{_MONO};max-height:30em;overflow:auto;font-size:85%;line-height:1.25">{body}</pre>'
                "</details>")


def _show(obj: ShellCommand | BuildLog, stream: TextIO | None = None, *, rich: bool | None = None) -> Any:
    """Show in a notebook (IPython display: HTML + one text line), else print the text line."""
    if rich if rich is not None else (stream is None and in_kernel()):
        from IPython.display import display

        return display(obj, display_id=True)
    print(obj.text() if isinstance(obj, ShellCommand) else obj.line, file=stream or sys.stdout, flush=True)
    return None


def _error_log(error: BaseException | None) -> str:
    return str(getattr(error, "log", "") or "")


class _Reporting:
    """What our displays share: the command at the start, one line and the collapsed log at the end.

    `report=False`: `finish` shows nothing on success, the caller shows its own line with
    `report(result, line)` (a failure is always shown). `commands`: a set shared by several
    builds; a command already in it is not shown again.
    """

    #: True: `report()` shows the line (measure_step then does not log it).
    reports = True

    def __init__(self, stream: TextIO | None = None, *, report: bool = True,
                 commands: set[str] | None = None, rich: bool | None = None) -> None:
        self.stream = stream
        self.auto_report = report
        self.commands = commands
        self.rich = rich

    def _rich(self) -> bool:
        return self.rich if self.rich is not None else (self.stream is None and in_kernel())

    def show_command(self, command: str | None) -> None:
        if not command or (self.commands is not None and command in self.commands):
            return
        if self.commands is not None:
            self.commands.add(command)
        _show(ShellCommand(command), self.stream, rich=self._rich())

    def start(self, total_hint: int | None = None, title: str = "", command: str | None = None) -> None:
        self.show_command(command)

    def on_event(self, event: StepEvent) -> None:
        pass

    def _publish(self, out: BuildLog) -> None:
        _show(out, self.stream, rich=self._rich())

    def report(self, result: BuildResult | None, line: str) -> None:
        """Show `line` with the build's full log collapsed under it."""
        self._publish(BuildLog(line, result.log if result is not None else ""))

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        if error is not None:
            self._publish(BuildLog(summary_line(None, error), _error_log(error)))
        elif self.auto_report:
            self.report(result, summary_line(result))


class PlainDisplay(_Reporting):
    """No live progress; at the start the command, at the end one line (+ the collapsed log in a notebook).

    In a terminal (or with a `stream`) everything is plain text: the `$ command` line and the summary line.
    """


class NullDisplay:
    """Shows nothing (for tests and scripts that print their own report)."""

    reports = False

    def start(self, total_hint: int | None = None, title: str = "", command: str | None = None) -> None:
        pass

    def on_event(self, event: StepEvent) -> None:
        pass

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        pass


class WidgetDisplay(_Reporting):
    """A live progress bar over the Dockerfile steps, the current step, and a collapsed log pane.

    The bar's value/max come from BuildKit's `[k/n]` counters; the log pane tails the output
    (the last `tail` lines, redrawn at most every `refresh_s`). When the build ends the widget is
    replaced, in place, by the summary line with the full log collapsed under it (`BuildLog`), so a
    saved notebook shows the result without widget state; on failure the log is open.
    """

    def __init__(self, tail: int = 200, refresh_s: float = 0.25, show: Any = None, *, report: bool = True,
                 commands: set[str] | None = None) -> None:
        import ipywidgets as w

        super().__init__(report=report, commands=commands, rich=True)
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
        self._show_fn = show
        self._handle: Any = None
        self.final: BuildLog | None = None

    def start(self, total_hint: int | None = None, title: str = "", command: str | None = None) -> None:
        self.show_command(command)
        self.bar.max = max(total_hint or 1, 1)
        self.label.value = f"building {title}" if title else "building"
        if self._show_fn is not None:
            self._show_fn(self.box)
        else:
            from IPython.display import display

            self._handle = display(self.box, display_id=True)

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
        text = html.escape(redact_hosts("\n".join(self.tail)))
        # column-reverse keeps the pane scrolled to its newest line.
        self.log.value = (
            '<div style="max-height:18em;overflow-y:auto;display:flex;flex-direction:column-reverse">'
            f'<pre style="margin:0;font-size:85%;line-height:1.25">{text}</pre></div>'
        )

    def _publish(self, out: BuildLog) -> None:
        """Replace the widget by `out` (in place), or show it below when the widget has no handle."""
        self.final = out
        if self._handle is not None:
            self._handle.update(out)
        elif self._show_fn is not None:
            self._show_fn(out)
        else:
            _show(out, rich=True)

    def finish(self, result: BuildResult | None, error: BaseException | None = None) -> None:
        if error is None:
            self.bar.value = self.bar.max
            self.bar.bar_style = "success"
            self.label.value = "finished"
        else:
            self.bar.bar_style = "danger"
            self.pane.selected_index = 0
            self.label.value = short(summary_line(None, error), 140)
        self._draw()
        if error is not None:
            self._publish(BuildLog(summary_line(None, error), _error_log(error), open=True))
        elif self.auto_report:
            self.report(result, summary_line(result))


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


def make_display(mode: str | None = None, *, report: bool = True, commands: set[str] | None = None) -> BuildDisplay:
    """A display for one build; see the module docstring for how the mode is chosen.

    `report=False`: on success the caller shows the line (`display.report(result, line)`).
    `commands`: commands already shown (updated), shared by the builds of one measurement.
    """
    resolved = resolve_mode(mode)
    if resolved == "widget":
        return WidgetDisplay(report=report, commands=commands)
    if resolved == "none":
        return NullDisplay()
    return PlainDisplay(report=report, commands=commands)
