"""What Poetry's installer did in a build: the packages it installed, downloaded, or took from its cache.

Everything is read from the installer's own output, as the build log keeps it (`Step.log`).
What Poetry 2.5.1 prints for `poetry install` without a terminal (BuildKit's plain progress,
`docker run` without `-t`), measured in the lab's bases:

- At every verbosity, one line per package operation, printed when the operation starts:
  `  - Installing anyio (4.16.0)` (also `Updating x (1.0 -> 1.1)`, `Downgrading ...`,
  `Removing ...`); the project itself is `Installing the current project: annapurna (0.1.0)`.
- By default and with `-v` / `-vv` nothing else is printed per package: Poetry draws
  "Downloading... 42%" only on a terminal (`Executor.supports_fancy_output()`), so a download and
  a cache hit print the very same line. From that output the question has no answer: `None`.
- With `-vvv` Poetry also prints third-party debug logs, each line prefixed `[package:logger]`,
  among them one line per HTTP request from urllib3 (the index host shown as `<index>` here):

      [urllib3:urllib3.connectionpool] https://<index>:443 "GET /simple/anyio/ HTTP/1.1" 200 56551
      [urllib3:urllib3.connectionpool] https://<files>:443 "GET /packages/a9/16/.../anyio-4.16.0-py3-none-any.whl HTTP/1.1" 200 134521

  The index page (`/simple/anyio/`, or the JSON API) is requested for every package, cached or
  not. The archive (`.whl`, `.tar.gz`, ...) is requested only when it is *not* already in
  Poetry's artifact cache (`$POETRY_CACHE_DIR/artifacts`): a cache hit makes no request at all.

So, at `-vvv`: `downloaded` = the distributions whose archive was fetched (HTTP 200), and
`from_cache` = the installed packages that were not downloaded. The output is taken to be `-vvv`
when it carries a debug-only line (`DEBUG_MARKERS`); BuildKit clipping the step's log
(`[output clipped, log limit ... reached]`) makes the count unknown again.

uv (step 8) is read the same way: what `uv sync -v` prints without a terminal (uv 0.13.9, measured in the lab's bases):

    DEBUG Identified uncached distribution: fastapi==0.165.0
    DEBUG Sending fresh GET request for: https://<files>/packages/.../fastapi-0.165.0-py3-none-any.whl
    Prepared 14 packages in 491ms
    Installed 14 packages in 476ms
     + fastapi==0.165.0

A package already in uv's cache makes no request, so `downloaded` = the archives fetched with a
fresh GET, `installed` = the `+` lines, `from_cache` = installed and not downloaded. Without `-v`
there is no per-archive line: downloads are then unknown.

Names are compared normalised (PEP 503: lower case, runs of `-_.` as one `-`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from basecamp.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from basecamp.build import BuildResult

#: The instruction of a uv step that installs, and what `uv sync -v` prints per package.
SYNC_MATCH = "uv sync"
_INSTALLED = re.compile(r"^\s*\+\s+(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")
_FRESH_GET = re.compile(r"DEBUG Sending fresh GET request for: (?P<url>\S+)")
_UV_DEBUG = re.compile(r"^(?:\d+\.\d+\s+)?DEBUG ")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: `  - Installing anyio (4.16.0)`, `  - Updating x (1.0 -> 1.1)`; `: Skipped ...` when already there.
_OPERATION = re.compile(
    r"^\s*-\s+(?P<verb>Installing|Updating|Downgrading|Removing)\s+(?P<name>\S+)\s+\((?P<version>[^)]*)\)"
    r"(?::\s*(?P<status>.*))?$"
)
_INSTALLS = ("Installing", "Updating", "Downgrading")
#: urllib3's request line, as Poetry prints it at -vvv: `... "GET /path HTTP/1.1" 200 1234`.
_REQUEST = re.compile(r'^\[urllib3:[^\]]*\]\s.*"GET (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})\b')
#: Lines Poetry 2.5.1 prints only at -vvv (debug level): urllib3's connection and request logs,
#: filelock's and findpython's debug logs, keyring's backend loading, and Poetry's own debug
#: lines of its HTTP client and of its wheel chooser.
DEBUG_MARKERS = re.compile(
    r"^(?:\[(?:urllib3|filelock|findpython|keyring):"
    r"|Creating new session for "
    r"|Skipping wheel \S+ as this is not supported by the current environment)"
)
_CLIPPED = re.compile(r"\[output clipped, log limit .+ reached\]")
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz")


@dataclass
class InstallReport:
    """What one or more `poetry install` runs did to the venv.

    `installed`: packages installed, updated or downgraded (the project itself not included).
    `downloaded` / `from_cache`: None when the output cannot tell (Poetry below `-vvv`, or a
    clipped log; `reason` says which). `downloaded` may name a package that is not in
    `installed` (e.g. a build requirement fetched to build an sdist).
    """

    installed: list[str]
    downloaded: list[str] | None  # None when the output cannot tell
    from_cache: list[str] | None
    #: The archive file names behind `downloaded`, in the order they were fetched.
    files: list[str] = field(default_factory=list)
    #: Why `downloaded` is None ("" when it is known).
    reason: str = ""

    @property
    def known(self) -> bool:
        """True when the output told downloads and cache hits apart."""
        return self.downloaded is not None

    def summary(self) -> str:
        """One line: "15 installed: 1 downloaded (tabulate), 14 from Poetry's cache"."""
        head = f"{len(self.installed)} installed"
        if self.downloaded is None or self.from_cache is None:
            return f"{head}; downloads unknown ({self.reason})"
        shown = ", ".join(self.downloaded[:5]) + (", ..." if len(self.downloaded) > 5 else "")
        got = f"{len(self.downloaded)} downloaded" + (f" ({shown})" if self.downloaded else "")
        return f"{head}: {got}, {len(self.from_cache)} from Poetry's cache"


def normalize(name: str) -> str:
    """PEP 503 name: "Typing_Extensions" -> "typing-extensions"."""
    return re.sub(r"[-_.]+", "-", name).lower()


def archive_name(filename: str) -> str | None:
    """The distribution an archive file belongs to (normalised); None when it is not an archive.

    Wheels: `{name}-{version}(-{build})?-{tags}.whl`, the name with `_` for `-`.
    Sdists: `{name}-{version}.tar.gz` (or .zip, ...), the version after the last `-`.
    """
    lower = filename.lower()
    suffix = next((s for s in ARCHIVE_SUFFIXES if lower.endswith(s)), None)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    name = stem.split("-", 1)[0] if suffix == ".whl" else stem.rsplit("-", 1)[0]
    return normalize(name) if name else None


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def url_filename(url: str) -> str:
    """The file a URL (or a URL's path) names: its last path segment, unquoted."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class LogLine:
    """What one line of an installer's output says: a package installed, an archive fetched, or neither."""

    installed: str | None = None
    fetched: str | None = None  # the archive's file name


def parse_output(lines: list[str], read: Callable[[str], LogLine], debug: re.Pattern[str],
                 quiet: str) -> InstallReport:
    """Read one installer run's output: `read` tells what each (ANSI-free) line says.

    `debug` matches a line only the verbose output has (without one, downloads are unknown and
    `quiet` says why); a clipped log makes them unknown too. Shared by Poetry's and uv's parsers.
    """
    installed: list[str] = []
    downloaded: list[str] = []
    files: list[str] = []
    verbose = clipped = False
    for raw in lines:
        line = _ANSI.sub("", raw).rstrip("\r\n")
        if _CLIPPED.search(line):
            clipped = True
        if debug.match(line):
            verbose = True
        said = read(line)
        if said.installed is not None:
            installed.append(normalize(said.installed))
        if said.fetched is not None and (name := archive_name(said.fetched)) is not None:
            downloaded.append(name)
            files.append(said.fetched)
    installed, downloaded, files = _unique(installed), _unique(downloaded), _unique(files)
    if clipped:
        return InstallReport(installed, None, None, files, "BuildKit clipped the log")
    if not verbose:
        if not installed:  # nothing was installed, so nothing was downloaded for it
            return InstallReport([], [], [], [])
        return InstallReport(installed, None, None, [], quiet)
    return InstallReport(installed, downloaded, [p for p in installed if p not in downloaded], files)


def _read_poetry_line(line: str) -> LogLine:
    if (op := _OPERATION.match(line)) is not None:
        status = (op["status"] or "").strip()
        if op["verb"] in _INSTALLS and not status.startswith(("Skipped", "Failed", "Cancelled")):
            return LogLine(installed=op["name"])
        return LogLine()
    if (req := _REQUEST.match(line)) is not None and req["status"] == "200":
        return LogLine(fetched=url_filename(req["path"]))
    return LogLine()


def parse_install(lines: list[str]) -> InstallReport:
    """Read one `poetry install`'s output (a step's log lines, or any captured output)."""
    return parse_output(lines, _read_poetry_line, DEBUG_MARKERS, "Poetry below -vvv prints no per-download line")


def combine(reports: list[InstallReport]) -> InstallReport:
    """Several installs as one: lists joined in order; unknown as soon as one part is unknown."""
    installed = _unique([p for r in reports for p in r.installed])
    files = _unique([f for r in reports for f in r.files])
    unknown = next((r for r in reports if r.downloaded is None or r.from_cache is None), None)
    if unknown is not None:
        return InstallReport(installed, None, None, files, unknown.reason)
    downloaded = _unique([p for r in reports for p in r.downloaded or []])
    from_cache = _unique([p for r in reports for p in r.from_cache or [] if p not in downloaded])
    return InstallReport(installed, downloaded, from_cache, files)


def install_report(build: BuildResult, match: str = "poetry install") -> InstallReport:
    """What the build's install steps did: every step whose name contains `match` and that ran.

    A step that came from the layer cache ran nothing and installed nothing, so it adds nothing.
    Raises InputError when no step's name contains `match` (exact case first, then ignoring case).
    """
    matching = [s for s in build.steps if match in s.name and not s.internal]
    if not matching:
        folded = match.casefold()
        matching = [s for s in build.steps if folded in s.name.casefold() and not s.internal]
    if not matching and match == "poetry install" and any("uv sync" in s.name for s in build.steps):
        # step 8 installs with uv: its output has its own format
        return sync_report(build)
    if not matching:
        names = "; ".join(s.name for s in build.steps if not s.is_from) or "none"
        raise InputError(f"install_report: no step of {build.tag} contains {match!r} (its steps: {names})")
    return combine([parse_install(s.log) for s in matching if s.status == "done"])


# --- what `uv sync` did (step 8) ------------------------------------------------------------


def _read_uv_line(line: str) -> LogLine:
    if (m := _INSTALLED.match(line)) is not None:
        return LogLine(installed=m["name"])
    if (g := _FRESH_GET.search(line)) is not None:
        return LogLine(fetched=url_filename(g["url"]))
    return LogLine()


def parse_sync(lines: list[str]) -> InstallReport:
    """Read one `uv sync`'s output (a step's log lines, or any captured output)."""
    return parse_output(lines, _read_uv_line, _UV_DEBUG, "uv without -v prints no per-download line")


def sync_report(build: BuildResult) -> InstallReport:
    """What the build's `uv sync` steps did (steps that came from the layer cache add nothing)."""
    matching = [s for s in build.steps if SYNC_MATCH in s.name and not s.internal]
    if not matching:
        raise InputError(f"sync_report: no step of {build.tag} runs {SYNC_MATCH!r}")
    return combine([parse_sync(s.log) for s in matching if s.status == "done"])
