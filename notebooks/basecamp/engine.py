"""Find or start the Docker engine, and find a docker CLI that builds with BuildKit."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import docker
from docker.errors import DockerException

from . import config, hostcheck, process
from .errors import EngineError

ENGINE_DIR = config.LAB_HOME / "engine"
DOCKERD_LOG = ENGINE_DIR / "dockerd.log"
DOCKERD_PID = ENGINE_DIR / "dockerd.pid"
DEFAULT_SOCKET = Path("/var/run/docker.sock")
#: How long a freshly started dockerd may take to answer.
START_TIMEOUT = 60.0

HOW_TO_START = (
    "Start Docker, then run this again: open Docker Desktop (macOS/Windows), "
    "or `sudo systemctl start docker` (Linux with systemd), or `sudo dockerd &` (Linux without systemd). "
    "If the engine listens elsewhere, set DOCKER_HOST (e.g. unix:///run/user/1000/docker.sock)."
)


@dataclass
class EngineStatus:
    """The engine the lab talks to and how it came to run."""

    how: str  # "already running" | "started here"
    pid: int | None
    log: Path | None
    server_version: str
    storage_driver: str
    root_dir: str
    docker_host: str


@dataclass
class BuildCLI:
    """A docker command line that builds with BuildKit: run `argv + [options..., context]` with `env` added."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


def docker_host() -> str:
    """DOCKER_HOST, or the default local socket."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


#: Engine addresses on this machine: a port the engine publishes on 127.0.0.1 is this machine's loopback.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_local(host: str | None = None) -> bool:
    """True when the engine `host` (default: DOCKER_HOST) runs on this machine.

    A unix socket (or a Windows named pipe, or systemd's fd://) is local; tcp:// and ssh:// are local
    only to a loopback address. Anything else is remote: its published ports, its data folder and its
    free disk are on another host (basecamp.smoke and basecamp.disk act on that).
    """
    from urllib.parse import urlsplit

    host = docker_host() if host is None else host
    parts = urlsplit(host if "://" in host else f"tcp://{host}")
    if parts.scheme in ("unix", "npipe", "fd"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


def describe_engine(host: str | None = None) -> str:
    """One line: which engine the lab talks to, and whether it is on this machine."""
    host = docker_host() if host is None else host
    return f"{'local' if is_local(host) else 'remote'} engine at {host}"


def next_step() -> str | None:
    """Why no engine answers on this machine and the one thing to do (`basecamp.hostcheck`), or None when
    there is nothing particular to say (root on Debian: the lab starts dockerd; an engine on another host)."""
    return hostcheck.next_step(hostcheck.gather())


def client(timeout: int = 120) -> docker.DockerClient:
    """A docker SDK client for DOCKER_HOST (or the default socket) that has answered a ping."""
    try:
        dk = docker.from_env(timeout=timeout)
        dk.ping()
    except DockerException as exc:
        raise EngineError(f"No Docker engine answers at {docker_host()}: {exc}\n{HOW_TO_START}") from exc
    return dk


def _status(dk: docker.DockerClient, how: str, pid: int | None, log: Path | None) -> EngineStatus:
    info = dk.info()
    return EngineStatus(
        how=how,
        pid=pid,
        log=log,
        server_version=str(info.get("ServerVersion", "")),
        storage_driver=str(info.get("Driver", "")),
        root_dir=str(info.get("DockerRootDir", "")),
        docker_host=docker_host(),
    )


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """The KEY=value pairs of /etc/os-release (quotes removed); empty when the file is missing."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return values


def is_debian_like(release: dict[str, str] | None = None) -> bool:
    """True on Debian, Ubuntu and their derivatives (ID or ID_LIKE)."""
    release = os_release() if release is None else release
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    return bool(ids & {"debian", "ubuntu"})


def is_root() -> bool:
    return os.geteuid() == 0


def run(argv: Sequence[str], hint: str = "", timeout: float = 900, env: dict[str, str] | None = None) -> str:
    """Run a command, return its combined output; raise CommandError (with output) when it fails."""
    return process.run(argv, timeout=timeout, env=env, merge_stderr=True, hint=hint).stdout


def apt_install(packages: Sequence[str], why: str) -> None:
    """`apt-get update` + `apt-get install -y` (root on Debian/Ubuntu only; the caller checks)."""
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], hint=f"needed to install {why}", env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *packages], hint=f"needed to install {why}", env=env)


def find_program(name: str) -> str | None:
    """A program on PATH or in the sbin folders root uses."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def _our_dockerd() -> int | None:
    """The pid of a dockerd this lab started and that still runs."""
    try:
        pid = int(DOCKERD_PID.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process.alive(pid) else None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed): one lab process at a time does the work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ping() -> docker.DockerClient | None:
    try:
        dk = docker.from_env(timeout=10)
        dk.ping()
        return dk
    except DockerException:
        return None


def ensure_engine(allow_install: bool = True) -> EngineStatus:
    """Use the engine that answers; else, as root on Debian/Ubuntu, install and start dockerd here."""
    dk = _ping()
    if dk is not None:
        pid = _our_dockerd()
        return _status(dk, "already running", pid, DOCKERD_LOG if pid else None)
    with locked(ENGINE_DIR / ".lock"):
        return _start_engine(allow_install)


def _start_engine(allow_install: bool) -> EngineStatus:
    """ensure_engine's slow path, under the lock: another lab process may have started it meanwhile."""
    dk = _ping()
    if dk is not None:
        pid = _our_dockerd()
        return _status(dk, "already running", pid, DOCKERD_LOG if pid else None)

    host = docker_host()
    step = next_step()
    if step:  # Windows shell, WSL, macOS, no root, no docker group, rootless: one message, the next step
        raise EngineError(step)
    if host != f"unix://{DEFAULT_SOCKET}":
        raise EngineError(f"No Docker engine answers at DOCKER_HOST={host}. {HOW_TO_START}")
    if not (is_root() and is_debian_like()):
        raise EngineError(f"No Docker engine answers at {host}. {HOW_TO_START}")

    dockerd = find_program("dockerd")
    if dockerd is None:
        if not allow_install:
            raise EngineError(f"No Docker engine answers at {host} and dockerd is not installed. {HOW_TO_START}")
        apt_install(["docker.io"], "the Docker engine (Debian package docker.io)")
        dockerd = find_program("dockerd")
        if dockerd is None:
            raise EngineError("apt-get installed docker.io but no dockerd is on PATH or in /usr/sbin.")

    ENGINE_DIR.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        # Popen, not basecamp.process: dockerd is a daemon that outlives this call (process runs to the end).
        proc = subprocess.Popen(
            [dockerd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this Python process and the shell that ran it
            close_fds=True,
        )
    DOCKERD_PID.write_text(f"{proc.pid}\n")

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(
                f"`{dockerd}` exited with {proc.returncode} right after starting; "
                f"last lines of {DOCKERD_LOG}:\n{log_tail(DOCKERD_LOG)}"
            )
        if DEFAULT_SOCKET.exists():
            dk = _ping()
            if dk is not None:
                return _status(dk, "started here", proc.pid, DOCKERD_LOG)
        time.sleep(0.5)
    raise EngineError(
        f"`{dockerd}` (pid {proc.pid}) did not answer within {START_TIMEOUT:.0f} s; "
        f"last lines of {DOCKERD_LOG}:\n{log_tail(DOCKERD_LOG)}"
    )


# --- BuildKit -------------------------------------------------------------------------------------


def docker_clis(path: str | None = None, extra: Sequence[str] = ("/usr/bin",)) -> list[str]:
    """Every distinct docker executable: each PATH entry's, then those in `extra` folders."""
    seen: set[str] = set()
    found: list[str] = []
    search = os.environ.get("PATH", "") if path is None else path
    for folder in [d for d in search.split(os.pathsep) if d] + list(extra):
        candidate = Path(folder) / "docker"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        real = str(candidate.resolve())
        if real not in seen:
            seen.add(real)
            found.append(str(candidate))
    return found


def _try(argv: Sequence[str], env: dict[str, str] | None = None) -> process.Completed | None:
    return process.attempt(argv, timeout=30, env=env)


def cli_version(cli: str) -> str:
    """The client version `docker --version` prints (no engine needed), or "unknown"."""
    proc = _try([cli, "--version"])
    match = re.search(r"version\s+([^\s,]+)", proc.stdout if proc else "")
    return match.group(1) if match else "unknown"


def buildx_version(cli: str) -> str | None:
    """`docker buildx version`'s line when the buildx plugin works with this CLI, else None."""
    proc = _try([cli, "buildx", "version"])
    if proc is None or proc.returncode != 0 or not proc.stdout.strip():
        return None
    return proc.stdout.strip().splitlines()[0]


def legacy_buildkit(cli: str) -> bool:
    """True when `DOCKER_BUILDKIT=1 <cli> build` builds with BuildKit itself (the pre-23 CLIs).

    Such a CLI shows its BuildKit-only flags (--secret, --ssh) in `build --help` only when BuildKit
    is on; a 23+ CLI without the buildx plugin refuses instead ("buildx component is missing").
    """
    proc = _try([cli, "build", "--help"], env={"DOCKER_BUILDKIT": "1"})
    if proc is None or proc.returncode != 0:
        return False
    text = proc.stdout + proc.stderr
    return "--secret" in text and "--ssh" in text


def find_buildkit_cli(clis: Sequence[str]) -> BuildCLI | None:
    """The first of `clis` with a working buildx plugin, else the first that does BuildKit itself."""
    for cli in clis:
        version = buildx_version(cli)
        if version:
            return BuildCLI(
                argv=[cli, "buildx", "build", "--load"],
                env={},
                description=f"BuildKit via {cli} buildx build ({version})",
            )
    for cli in clis:
        if legacy_buildkit(cli):
            return BuildCLI(
                argv=[cli, "build"],
                env={"DOCKER_BUILDKIT": "1"},
                description=f"BuildKit via DOCKER_BUILDKIT=1 {cli} {cli_version(cli)}",
            )
    return None


@cache
def buildkit_cli() -> BuildCLI | None:
    """The best BuildKit command line here: `docker buildx build --load`, else `DOCKER_BUILDKIT=1 docker build`.

    None when no CLI builds with BuildKit; callers then use the SDK's classic builder.
    Found once per process (`buildkit_cli.cache_clear()` to look again).
    """
    return find_buildkit_cli(docker_clis())
