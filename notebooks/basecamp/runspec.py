"""How the lab runs an image it measures: a `RunSpec` (what `docker run` changes from the image's own
settings) and `_running`, the one way basecamp.running starts one: detached, made-labelled, its port
published on 127.0.0.1 only, removed afterwards whatever happens (basecamp.containers). `_wait_ready`
waits for the first HTTP 200 on /health; `engine_held` holds the engine lock around measurements.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import docker.errors

from basecamp import engine, enginelock
from basecamp.containers import throwaway
from basecamp.errors import InputError
from basecamp.smoke import _get

PORT = 8000
HEALTH_PATH = "/health"
POLL_S = 0.02
READY_TIMEOUT_S = 60.0



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
    try:
        return str(container.logs(tail=tail).decode(errors="replace"))
    except docker.errors.APIError:  # a courtesy: the container may be gone
        return ""


def _locked(what: str, say: Callable[[str], None] = print) -> Any:
    return enginelock.exclusive(enginelock.describe(what), say=say)


def engine_held(what: str, *, quiet: bool = False) -> Any:
    """Hold the engine lock around several measurements (`with bc.engine_held("..."):`): no other
    notebook's build runs between them, and a cell says at most once that it waits (`quiet`: not even
    that, for a cell whose output must hold nothing but an exercise's check). Re-entrant: the
    measurements inside take it again without waiting."""
    return _locked(what, say=(lambda _line: None) if quiet else print)
