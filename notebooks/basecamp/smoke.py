"""Does the built image actually serve? Run it, ask its health endpoint, always clean up.

`smoke_test` never raises for a broken app: a container that exits early, or never answers 200
before the timeout, gives `ok=False` with the reason (`error`), its exit code and its last log
lines, so a notebook can show what went wrong. It raises InputError for a missing image and
LabError when the engine refuses to create or start the container at all.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from basecamp import config
from basecamp.errors import InputError, LabError

#: Seconds between health checks, and the timeout of one HTTP request.
POLL_S = 0.25
REQUEST_TIMEOUT_S = 2.0
LOG_TAIL = 40
BODY_LIMIT = 2000

# Straight to 127.0.0.1: an http_proxy set in the environment must not catch these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class SmokeResult:
    """One smoke test. `seconds_to_ready`: from container start to the first HTTP 200 (or giving up)."""

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

    def summary(self) -> str:
        if self.ok:
            return (f"{self.image}: HTTP {self.status} from {self.url} after {self.seconds_to_ready:.1f} s"
                    f" — {self.body[:80]!r}")
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


def _host_port(container: Any, port: int) -> int | None:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _logs(container: Any) -> str:
    import docker.errors

    try:
        return container.logs(tail=LOG_TAIL).decode(errors="replace")
    except docker.errors.APIError:  # the container may already be gone; logs are a courtesy
        return ""


def smoke_test(
    image: str,
    *,
    port: int = 8000,
    timeout_s: float = 60,
    path: str = "/health",
    command: list[str] | None = None,
    environment: dict[str, str] | None = None,
) -> SmokeResult:
    """Run `image` detached, publish `port` on 127.0.0.1 (random host port), GET `path` until 200.

    The container carries the lab label and is removed afterwards whatever happens (including
    Ctrl-C / kernel interrupt).
    """
    import docker.errors

    from basecamp import engine

    if not path.startswith("/"):
        raise InputError(f"smoke_test: path {path!r} must start with '/'")
    dk = engine.client()
    try:
        dk.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"smoke_test: no image {image!r} in the engine: build it first") from exc
    try:
        container = dk.containers.run(
            image, command=command, environment=environment, detach=True, labels=config.made_labels(),
            ports={f"{port}/tcp": ("127.0.0.1", None)},
        )
    except docker.errors.APIError as exc:
        raise LabError(f"smoke_test: the engine could not start {image}: {exc}") from exc
    host_port: int | None = None
    url = ""
    answer = _Answer(None, "")
    try:
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        while True:
            if host_port is None:
                host_port = _host_port(container, port)
                url = f"http://127.0.0.1:{host_port}{path}" if host_port else ""
            else:
                container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                return SmokeResult(image, False, answer.status, answer.body, time.perf_counter() - t0, host_port,
                                   _logs(container), f"the container exited early (exit code {code})", code, url)
            if url:
                answer = _get(url)
                if answer.status == 200:
                    return SmokeResult(image, True, 200, answer.body, time.perf_counter() - t0, host_port,
                                       _logs(container), "", None, url)
            if time.perf_counter() >= deadline:
                last = f"last status {answer.status}" if answer.status else "no HTTP answer"
                return SmokeResult(image, False, answer.status, answer.body, time.perf_counter() - t0, host_port,
                                   _logs(container), f"timed out after {timeout_s:g} s ({last})", None, url)
            time.sleep(POLL_S)
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
