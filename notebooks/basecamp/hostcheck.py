"""Why no Docker engine answers here, and the one next step (Windows, WSL, macOS, no root, rootless).

`next_step(facts)` is pure: it takes what was found on this machine (`HostFacts`) and returns one
message, or None when there is nothing to tell (an engine answers, or the lab starts one itself: root
on Debian/Ubuntu with the default socket, or an engine elsewhere that the Docker SDK checks later).
`gather()` finds the facts with the standard library only, so `./lab prepare` can ask before the
lab's environment exists (`python3 -m basecamp.hostcheck --uname "$(uname -s)"`, which prints the
message and exits 1), and `basecamp.engine` uses the same message when its ping fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SOCKET = "/var/run/docker.sock"
ROOTLESS_DOCS = "https://docs.docker.com/engine/security/rootless/"
WSL_DOCS = "https://docs.docker.com/desktop/features/wsl/"
#: What a unix socket did when asked `GET /_ping`.
ANSWERS, DENIED, MISSING, SILENT = "answers", "denied", "missing", "silent"


@dataclass(frozen=True)
class HostFacts:
    """What `next_step` decides from; every field can be written by hand in a test."""

    system: str  # `uname -s`: Linux, Darwin, MINGW64_NT-10.0-19045, MSYS_NT-..., CYGWIN_NT-..., or Windows
    uid: int
    user: str = ""
    groups: frozenset[str] = frozenset()  # the groups this process has now
    docker_group_members: frozenset[str] = frozenset()  # who /etc/group puts in `docker` (empty: no group)
    env: Mapping[str, str] = field(default_factory=dict)  # DOCKER_HOST, WSL_DISTRO_NAME
    proc_version: str = ""  # /proc/version: WSL's kernel names Microsoft
    debian_like: bool = False
    socket: str = MISSING  # the engine's socket (DOCKER_HOST's or the default): answers | denied | missing | silent
    rootless_socket: str = MISSING  # /run/user/<uid>/docker.sock, a rootless engine's

    @property
    def docker_host(self) -> str:
        return self.env.get("DOCKER_HOST", "") or f"unix://{DEFAULT_SOCKET}"

    @property
    def rootless_host(self) -> str:
        return f"unix:///run/user/{self.uid}/docker.sock"


def is_windows_shell(system: str) -> bool:
    """Git Bash (MINGW), MSYS2, Cygwin or a Windows Python: not a Linux the lab runs on."""
    return system.upper().startswith(("MINGW", "MSYS", "CYGWIN", "WINDOWS"))


def is_wsl(facts: HostFacts) -> bool:
    return bool(facts.env.get("WSL_DISTRO_NAME")) or "microsoft" in facts.proc_version.lower()


def next_step(facts: HostFacts) -> str | None:
    """The one thing to do so that an engine answers here, or None when there is nothing to tell."""
    if is_windows_shell(facts.system):
        return ("This is a Windows shell (Git Bash, MSYS or Cygwin): the lab runs on Linux. Run it in WSL 2 "
                "(Ubuntu) with Docker Desktop's WSL integration, or open the repository in its dev container "
                "(README: Windows, Dev container).")
    host = facts.docker_host
    if not host.startswith("unix://"):
        return None  # tcp:// or ssh://: the Docker SDK pings it and says what it found
    if facts.socket == ANSWERS:
        return None
    socket_path = host.removeprefix("unix://")
    if facts.socket == DENIED:
        if facts.user and facts.user in facts.docker_group_members and "docker" not in facts.groups:
            return (f"Docker answers at {socket_path} but this session may not use it: you were added to the "
                    "docker group after logging in. Log out and back in (or run `newgrp docker`), then run this again.")
        return (f"Docker runs but its socket {socket_path} is not yours to use. Add yourself to the docker group: "
                "`sudo usermod -aG docker $USER`, then log out and back in (the group is as powerful as root; "
                f"rootless Docker is the alternative: {ROOTLESS_DOCS}).")
    if host == facts.rootless_host:
        return (f"No rootless Docker answers at {host}. Start it: `systemctl --user start docker` "
                f"(or `dockerd-rootless.sh &`); set up: {ROOTLESS_DOCS}")
    if host != f"unix://{DEFAULT_SOCKET}":
        return None  # a socket DOCKER_HOST chose: the lab's own message names it
    if facts.rootless_socket == ANSWERS:
        return (f"A rootless Docker answers at {facts.rootless_host}, but the lab looks at {host}. "
                f"Run `export DOCKER_HOST={facts.rootless_host}`, then this again.")
    if is_wsl(facts):
        distro = facts.env.get("WSL_DISTRO_NAME") or "this distribution"
        return ("This is WSL and no Docker engine answers. Start Docker Desktop on Windows and turn on "
                f"Settings > Resources > WSL integration for {distro}, then open a new WSL terminal and run "
                f"this again ({WSL_DOCS}).")
    if facts.system == "Darwin":
        return "No Docker engine answers. Start Docker Desktop (install it first if it is missing), then run this again."
    if facts.uid == 0:
        if facts.debian_like:
            return None  # the lab installs docker.io and starts dockerd itself
        return (f"No Docker engine answers at {socket_path}. Start it: `systemctl start docker` "
                "(or `dockerd &` without systemd).")
    if "docker" in facts.groups or (facts.user and facts.user in facts.docker_group_members):
        return (f"No Docker engine answers at {socket_path}. Start it: `sudo systemctl start docker` "
                "(or ask the machine's administrator).")
    return ("No Docker engine answers, you are not root and not in the docker group. Install rootless Docker, "
            f"which needs no root once newuidmap is there: `dockerd-rootless-setuptool.sh install` ({ROOTLESS_DOCS}), "
            "or use the dev container (README: Dev container).")


# --- the facts, found on this machine ---------------------------------------------------------------


def probe_socket(path: str, timeout: float = 5.0) -> str:
    """`GET /_ping` on a unix socket: answers (HTTP 200), denied, missing, or silent (anything else)."""
    if not hasattr(socket, "AF_UNIX"):
        return MISSING
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except PermissionError:
        return DENIED
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except OSError:
        return SILENT
    return ANSWERS if reply.startswith(b"HTTP/") and b" 200 " in reply.split(b"\r\n", 1)[0] + b" " else SILENT


def _groups() -> tuple[str, frozenset[str], frozenset[str]]:
    """This user's name, the groups this process has, and the docker group's members in /etc/group."""
    try:
        import grp
        import pwd
    except ImportError:  # a Windows Python
        return os.environ.get("USERNAME", ""), frozenset(), frozenset()
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = os.environ.get("USER", "")
    names = set()
    for gid in {os.getgid(), *os.getgroups()}:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            pass
    try:
        docker = grp.getgrnam("docker")
        members = set(docker.gr_mem)
        if user and _primary_gid(user) == docker.gr_gid:
            members.add(user)
    except KeyError:
        members = set()
    return user, frozenset(names), frozenset(members)


def _primary_gid(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_gid
    except KeyError:
        return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _debian_like() -> bool:
    ids: set[str] = set()
    for line in _read("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip("\"'").split())
    return bool(ids & {"debian", "ubuntu"})


def gather(system: str | None = None, env: Mapping[str, str] | None = None) -> HostFacts:
    """The facts of this machine; `system` is `uname -s` when the shell knows it better than Python."""
    env = dict(os.environ if env is None else env)
    uid = os.getuid() if hasattr(os, "getuid") else -1
    user, groups, members = _groups()
    facts = HostFacts(
        system=system or platform.system(), uid=uid, user=user, groups=groups, docker_group_members=members,
        env={k: env[k] for k in ("DOCKER_HOST", "WSL_DISTRO_NAME") if env.get(k)},
        proc_version=_read("/proc/version"), debian_like=_debian_like(),
    )
    host = facts.docker_host
    status = probe_socket(host.removeprefix("unix://")) if host.startswith("unix://") else MISSING
    rootless = status if host == facts.rootless_host else probe_socket(facts.rootless_host.removeprefix("unix://"))
    return replace(facts, socket=status, rootless_socket=rootless)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m basecamp.hostcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--uname", help="`uname -s` as the shell sees it (Git Bash's Python may not know)")
    args = parser.parse_args(argv)
    # ANNAPURNA_ENGINE_WAIT=<seconds> (the dev container sets it): the engine may still be starting, as the
    # Docker-in-Docker feature's dockerd is when the container's post-create step begins. Ask again until then.
    deadline = time.monotonic() + float(os.environ.get("ANNAPURNA_ENGINE_WAIT") or 0)
    facts = gather(args.uname)
    message = next_step(facts)
    while message and facts.socket in (MISSING, SILENT) and not is_windows_shell(facts.system) \
            and time.monotonic() < deadline:
        time.sleep(1)
        facts = gather(args.uname)
        message = next_step(facts)
    if message:
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
