"""The one next step when no engine answers (issue 18, part 3): one case per machine a learner may bring."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from basecamp import config, engine, hostcheck
from basecamp.hostcheck import ANSWERS, DENIED, MISSING, HostFacts, next_step

LINUX = HostFacts(system="Linux", uid=1000, user="ana", groups=frozenset({"ana"}), debian_like=True)


def facts(**changes: object) -> HostFacts:
    from dataclasses import replace

    return replace(LINUX, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("case", "expected"), [
    (facts(system="MINGW64_NT-10.0-19045"), "WSL 2"),
    (facts(system="MSYS_NT-10.0-19045"), "dev container"),
    (facts(system="Windows"), "Windows shell"),
    (facts(proc_version="Linux version 5.15.167.4-microsoft-standard-WSL2"), "WSL integration for this distribution"),
    (facts(env={"WSL_DISTRO_NAME": "Ubuntu"}), "WSL integration for Ubuntu"),
    (facts(system="Darwin"), "Start Docker Desktop"),
    (facts(socket=DENIED), "sudo usermod -aG docker $USER"),
    (facts(socket=DENIED, docker_group_members=frozenset({"ana"})), "newgrp docker"),
    (facts(groups=frozenset({"ana", "docker"})), "sudo systemctl start docker"),
    (facts(), "not root and not in the docker group"),
    (facts(env={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}), "systemctl --user start docker"),
    (facts(rootless_socket=ANSWERS), "export DOCKER_HOST=unix:///run/user/1000/docker.sock"),
    (facts(uid=0, user="root", debian_like=False), "systemctl start docker"),
], ids=["git-bash", "msys", "windows-python", "wsl-kernel", "wsl-env", "macos", "no-group", "group-not-yet-active",
        "group-engine-stopped", "no-root-no-group", "rootless-stopped", "rootless-not-used", "root-not-debian"])
def test_each_case_gets_its_one_next_step(case: HostFacts, expected: str) -> None:
    message = next_step(case)
    assert message is not None and expected in message, message
    assert "Traceback" not in message and "\n" not in message  # one line, one step


@pytest.mark.parametrize("case", [
    facts(socket=ANSWERS),
    facts(socket=ANSWERS, env={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}),
    facts(uid=0, user="root"),  # root on Debian: the lab installs docker.io and starts dockerd (unchanged)
    facts(env={"DOCKER_HOST": "tcp://build-host:2375"}),  # the SDK pings it and says what it found
    facts(env={"DOCKER_HOST": "unix:///somewhere/else.sock"}),  # the lab's own message names DOCKER_HOST
], ids=["engine-answers", "rootless-answers", "root-on-debian", "remote", "chosen-socket"])
def test_nothing_to_say_when_an_engine_answers_or_the_lab_starts_one(case: HostFacts) -> None:
    assert next_step(case) is None


def test_wsl_and_macos_are_told_before_the_no_root_advice() -> None:
    """A WSL learner as root on Ubuntu must not get docker.io installed beside Docker Desktop."""
    assert "WSL integration" in (next_step(facts(uid=0, user="root", env={"WSL_DISTRO_NAME": "Ubuntu"})) or "")


def test_rootless_docker_is_a_local_engine() -> None:
    assert engine.is_local("unix:///run/user/1000/docker.sock")
    assert engine.describe_engine("unix:///run/user/1000/docker.sock").startswith("local engine")


# --- the facts, found for real ------------------------------------------------------------------------


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that answers `GET /_ping` with 200 OK, like dockerd."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(10)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    server.close()


def test_probe_socket_tells_answers_missing_and_silent(fake_engine: Path, tmp_path: Path) -> None:
    assert hostcheck.probe_socket(str(fake_engine)) == ANSWERS
    assert hostcheck.probe_socket(str(tmp_path / "nothing.sock")) == MISSING
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # bound, never listening: connection refused
    assert hostcheck.probe_socket(str(stale)) == hostcheck.SILENT


def test_probe_socket_as_a_user_outside_the_group_is_denied(fake_engine: Path) -> None:
    """The real permission check: the socket is root's (mode 660), the probe runs as nobody."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("needs root and setpriv (util-linux) to run the probe as another user")
    os.chmod(fake_engine.parent, 0o755)
    fake_engine.chmod(0o660)
    code = f"import sys; sys.path.insert(0, {str(config.REPO_ROOT / 'notebooks')!r}); " \
           f"from basecamp.hostcheck import probe_socket; print(probe_socket({str(fake_engine)!r}))"
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == DENIED, proc.stdout + proc.stderr


def test_the_command_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    """What `./lab prepare` runs first, with the host's Python: no traceback, one `error:` line."""
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT / "notebooks")}
    proc = subprocess.run([sys.executable, "-m", "basecamp.hostcheck", "--uname", "MINGW64_NT-10.0-19045"],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: This is a Windows shell") and proc.stderr.count("\n") == 1
    env["DOCKER_HOST"] = "tcp://127.0.0.1:9"  # nothing to say: the SDK checks a tcp engine later
    assert subprocess.run([sys.executable, "-m", "basecamp.hostcheck", "--uname", "Linux"], env=env,
                          capture_output=True, text=True, timeout=60, check=False).returncode == 0


def test_lab_prepare_asks_first(tmp_path: Path) -> None:
    """`./lab` runs the check before Poetry (minutes) and the engine: a Windows shell stops at once."""
    lab = (config.REPO_ROOT / "lab").read_text()
    prepare = lab[lab.index("prepare() {"):]
    assert prepare.index("host_check") < prepare.index("install_poetry")


def test_the_command_waits_for_an_engine_still_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev container's post-create step may begin before the feature's dockerd answers (ANNAPURNA_ENGINE_WAIT)."""
    seen: list[HostFacts] = [facts(groups=frozenset({"docker"})), facts(groups=frozenset({"docker"})),
                             facts(groups=frozenset({"docker"}), socket=ANSWERS)]
    calls: list[str | None] = []

    def gather(system: str | None = None) -> HostFacts:
        calls.append(system)
        return seen[min(len(calls), len(seen)) - 1]

    monkeypatch.setattr(hostcheck, "gather", gather)
    monkeypatch.setattr(hostcheck.time, "sleep", lambda s: None)
    monkeypatch.setenv("ANNAPURNA_ENGINE_WAIT", "30")
    assert hostcheck.main(["--uname", "Linux"]) == 0 and len(calls) == 3
    calls.clear()
    monkeypatch.delenv("ANNAPURNA_ENGINE_WAIT")  # by default: one look, then the next step
    assert hostcheck.main(["--uname", "Linux"]) == 1 and len(calls) == 1
