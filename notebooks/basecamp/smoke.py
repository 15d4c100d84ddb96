"""Does the built image actually serve? Run it, ask its health endpoint, always clean up.

`smoke_test(image, paths=[...])` asks each path in turn, round after round, until one answers
2xx (redirects are followed, so a `/` that redirects to `/docs` counts when `/docs` answers 200);
`SmokeResult.path` records which one did. A 3xx that leads nowhere, a 404 (even on every path),
or any other status is not proof the app works: the smoke test goes on asking until it times
out, and the error lists the last answer of each path (pass the path your app serves then).

`smoke_test` never raises for a broken app: a container that exits early, or never answers 2xx
before the timeout, gives `ok=False` with the reason (`error`), its exit code and its last log
lines, so a notebook can show what went wrong. It raises InputError for a missing image and
LabError when the engine refuses to create or start the container at all.

Where the requests come from depends on where the engine is (`engine.is_local`):

- A local engine (a unix socket, or tcp to 127.0.0.1): the app's port is published on 127.0.0.1 only,
  on a random free port, and the lab asks `http://127.0.0.1:<port>` itself. Nothing is published on
  any other address of the machine.
- A remote engine (DOCKER_HOST=tcp://HOST:PORT or ssh://HOST): the client's 127.0.0.1 is not the
  engine's, and the engine host's published ports may be firewalled or on a private network (GitLab's
  `docker:dind` service, a build host behind NAT). So nothing is published: the lab starts a small
  probe container from the slim base (`PROBE_IMAGE`, which has python3) on the engine's default bridge
  beside the app, and asks `http://<app's bridge address>:<port>` from inside it (`docker exec` of a
  few lines of Python's urllib). Every request goes through the engine's API, which the client can
  reach by definition; the app is never exposed beyond the engine's bridge. Both containers carry the
  lab's label and are removed afterwards. Each exec costs a few tens of milliseconds, so
  `seconds_to_ready` against a remote engine is that much coarser.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import docker.errors

from basecamp import config, engine
from basecamp.containers import throwaway
from basecamp.errors import InputError

#: Seconds between health checks, and the timeout of one HTTP request.
POLL_S = 0.25
REQUEST_TIMEOUT_S = 2.0
LOG_TAIL = 40
BODY_LIMIT = 2000

# Straight to 127.0.0.1: an http_proxy set in the environment must not catch these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

#: The probe container's image against a remote engine (the runtime base every step ends on; it has python3).
PROBE_IMAGE = config.SLIM_BASE
#: What the probe runs for one GET (argv[1]: the URL): prints [status or null, body] as JSON, like `_get`.
PROBE_SCRIPT = f"""
import json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
try:
    with opener.open(sys.argv[1], timeout={REQUEST_TIMEOUT_S}) as res:
        print(json.dumps([res.status, res.read({BODY_LIMIT}).decode(errors="replace")]))
except urllib.error.HTTPError as exc:
    print(json.dumps([exc.code, (exc.read({BODY_LIMIT}) if exc.fp is not None else b"").decode(errors="replace")]))
except Exception:
    print(json.dumps([None, ""]))
"""


@dataclass
class SmokeResult:
    """One smoke test. `seconds_to_ready`: from container start to the first HTTP 2xx (or giving up)."""

    image: str
    ok: bool
    status: int | None
    body: str
    seconds_to_ready: float
    host_port: int | None
    logs: str
    #: Why it is not ok: "exited early", "timed out", ... ("" when ok).
    error: str = ""
    #: The container's exit code, when it exited on its own.
    exit_code: int | None = None
    url: str = ""
    #: The path that answered 2xx ("" when none did, or for an app without HTTP).
    path: str = ""
    #: The paths asked, in order.
    tried: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.ok and self.status is None:
            return f"{self.image}: ran and exited 0 after {self.seconds_to_ready:.1f} s"
        if self.ok:
            which = ""
            if len(self.tried) > 1 and self.path in self.tried:
                before = self.tried[: self.tried.index(self.path)]
                which = (f" (asked {', '.join(before)} first: no 2xx)" if before
                         else f" (the first of {', '.join(self.tried)})")
            return (f"{self.image}: HTTP {self.status} from {self.path or self.url}{which} after "
                    f"{self.seconds_to_ready:.1f} s — {self.body[:80]!r}")
        return f"{self.image}: NOT OK ({self.error}) after {self.seconds_to_ready:.1f} s"


@dataclass
class _Answer:
    status: int | None
    body: str


def _get(url: str) -> _Answer:
    """One GET; status None when nothing answered (refused, reset, proxy accepted but app not up)."""
    try:
        with _OPENER.open(url, timeout=REQUEST_TIMEOUT_S) as res:
            return _Answer(res.status, res.read(BODY_LIMIT).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        body = exc.read(BODY_LIMIT).decode(errors="replace") if exc.fp is not None else ""
        return _Answer(exc.code, body)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return _Answer(None, "")


def _probe_get(probe: Any, url: str) -> _Answer:
    """One GET from inside the probe container (remote engines); status None when nothing answered."""
    try:
        code, output = probe.exec_run(["python3", "-c", PROBE_SCRIPT, url], demux=False)
        status, body = json.loads((output or b"").decode(errors="replace").strip().splitlines()[-1])
    except (docker.errors.APIError, ValueError, IndexError, TypeError):
        return _Answer(None, "")
    return _Answer(status if code == 0 else None, body)


def _bridge_address(container: Any) -> str:
    """The container's address on the engine's network ("" until it has one)."""
    settings = container.attrs.get("NetworkSettings", {})
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for net in (settings.get("Networks") or {}).values():
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    return ""


def _probe_image(dk: Any) -> None:
    """Check the engine has the probe's image (a remote engine's smoke test asks through it, module doc)."""
    try:
        dk.images.get(PROBE_IMAGE)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"smoke_test: the engine has no {PROBE_IMAGE}, which the probe container runs: "
                         "load the bases into it (`./lab prepare` with DOCKER_HOST set)") from exc


def _host_port(container: Any, port: int) -> int | None:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _logs(container: Any) -> str:
    try:
        return str(container.logs(tail=LOG_TAIL).decode(errors="replace"))
    except docker.errors.APIError:  # the container may already be gone; logs are a courtesy
        return ""


def _asked(path: str, paths: Sequence[str] | None) -> tuple[str, ...]:
    """The paths to ask, in order; InputError for a string instead of a list, or a relative path."""
    asked = tuple(paths) if paths is not None else (path,)
    if not asked or isinstance(paths, str):
        raise InputError(f"smoke_test: paths {paths!r}: give a list of paths, e.g. ['/health', '/']")
    for p in asked:
        if not p.startswith("/"):
            raise InputError(f"smoke_test: path {p!r} must start with '/'")
    return asked


def smoke_test(
    image: str,
    *,
    port: int = 8000,
    timeout_s: float = 60,
    path: str = "/health",
    command: list[str] | None = None,
    environment: dict[str, str] | None = None,
    paths: Sequence[str] | None = None,
) -> SmokeResult:
    """Run `image` detached, publish `port` on 127.0.0.1 (random host port), GET `path` until 2xx.

    Against a remote engine nothing is published: a probe container asks the app (module doc).

    `paths` (instead of `path`): ask each in order, every round; the first 2xx wins (module doc).
    The container carries the lab label and is removed afterwards whatever happens (including
    Ctrl-C / kernel interrupt).
    """
    asked = _asked(path, paths)
    dk = engine.client()
    try:
        dk.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"smoke_test: no image {image!r} in the engine: build it first") from exc
    remote = not engine.is_local()
    with ExitStack() as stack:
        probe = None
        if remote:
            _probe_image(dk)
            probe = stack.enter_context(throwaway(PROBE_IMAGE, start=True, what="smoke_test", client=dk,
                                                  command=["python3", "-c", "import time; time.sleep(3600)"]))
        container = stack.enter_context(throwaway(
            image, start=True, what="smoke_test", client=dk, command=command, environment=environment,
            ports=None if remote else {f"{port}/tcp": ("127.0.0.1", None)}))
        get = _get if probe is None else (lambda url: _probe_get(probe, url))
        return _Poll(image, container, port, asked, remote, get).until_ready(timeout_s)


class _Poll:
    """One smoke test's polling: where the app answers, what each path said last, the result."""

    def __init__(self, image: str, container: Any, port: int, asked: tuple[str, ...], remote: bool,
                 get: Callable[[str], _Answer]) -> None:
        self.image, self.container, self.port, self.asked, self.remote, self.get = (
            image, container, port, asked, remote, get)
        self.host_port: int | None = None
        self.base = ""
        self.answer = _Answer(None, "")
        self.last: dict[str, _Answer] = {}
        self.t0 = time.perf_counter()

    def result(self, ok: bool, error: str = "", code: int | None = None, answered: str = "") -> SmokeResult:
        url = f"{self.base}{answered or self.asked[0]}" if self.base else ""
        return SmokeResult(self.image, ok, self.answer.status, self.answer.body, time.perf_counter() - self.t0,
                           self.host_port, _logs(self.container), error, code, url, answered, self.asked)

    def _find_base(self) -> None:
        """The app's URL once the engine says where it is ("" until then); refreshes the container's state."""
        if self.remote and not self.base:
            self.container.reload()
            address = _bridge_address(self.container)
            self.base = f"http://{address}:{self.port}" if address else ""
        elif self.host_port is None and not self.remote:
            self.host_port = _host_port(self.container, self.port)
            self.base = f"http://127.0.0.1:{self.host_port}" if self.host_port else ""
        else:
            self.container.reload()

    def _ask(self) -> str | None:
        """Ask each path once, in order; the path that answered 2xx, or None."""
        for p in self.asked:
            self.answer = self.last[p] = self.get(f"{self.base}{p}")
            if self.answer.status is not None and 200 <= self.answer.status < 300:
                return p
            if self.answer.status is None:  # nothing listens yet: the other paths cannot answer either
                break
        return None

    def until_ready(self, timeout_s: float) -> SmokeResult:
        deadline = self.t0 + timeout_s
        while True:
            self._find_base()
            if self.container.status in ("exited", "dead"):
                code = self.container.attrs.get("State", {}).get("ExitCode")
                return self.result(False, f"the container exited early (exit code {code})", code)
            answered = self._ask() if self.base else None
            if answered is not None:
                return self.result(True, answered=answered)
            if time.perf_counter() >= deadline:
                seen = ", ".join(f"{p} {a.status}" for p, a in self.last.items() if a.status is not None)
                hint = f" (last answers: {seen}; pass the path your app serves)" if seen else " (no HTTP answer)"
                return self.result(False, f"timed out after {timeout_s:g} s{hint}")
            time.sleep(POLL_S)
