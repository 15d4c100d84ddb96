"""basecamp.engine: finding/starting the engine and finding a BuildKit CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from basecamp import buildcache, config, engine
from basecamp.errors import EngineError

# --- fake docker CLIs, as the real ones answer (checked by hand against docker 28.2 and 20.10) ---

NEW_CLI_WITHOUT_BUILDX = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 28.2.2, build e6534b4";;
  buildx) echo "docker: 'buildx' is not a docker command." >&2; exit 1;;
  build) if [ "$DOCKER_BUILDKIT" = 1 ]; then
           echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2; exit 1
         fi
         echo "Usage:  docker build [OPTIONS] PATH | URL | -";;
esac
"""

OLD_CLI = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 20.10.24+dfsg1, build 297e128";;
  buildx) echo "docker: 'buildx' is not a docker command."; exit 1;;
  build) echo "Usage:  docker build [OPTIONS] PATH | URL | -"
         if [ "$DOCKER_BUILDKIT" = 1 ]; then echo "      --secret stringArray"; echo "      --ssh stringArray"; fi;;
esac
"""

BUILDX_CLI = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 27.1.1, build 6312585";;
  buildx) echo "github.com/docker/buildx v0.16.1 abc123";;
esac
"""


def fake_cli(folder: Path, script: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docker"
    path.write_text(script)
    path.chmod(0o755)
    return str(path)


def test_legacy_buildkit_detection(tmp_path: Path) -> None:
    assert engine.legacy_buildkit(fake_cli(tmp_path / "old", OLD_CLI))
    assert not engine.legacy_buildkit(fake_cli(tmp_path / "new", NEW_CLI_WITHOUT_BUILDX))
    assert not engine.legacy_buildkit(str(tmp_path / "absent" / "docker"))


def test_prefers_buildx_on_any_cli(tmp_path: Path) -> None:
    old = fake_cli(tmp_path / "old", OLD_CLI)
    buildx = fake_cli(tmp_path / "bx", BUILDX_CLI)
    found = engine.find_buildkit_cli([old, buildx])
    assert found is not None
    assert found.argv == [buildx, "buildx", "build", "--load"]
    assert found.env == {}
    assert "v0.16.1" in found.description


def test_falls_back_to_docker_buildkit_env(tmp_path: Path) -> None:
    new = fake_cli(tmp_path / "new", NEW_CLI_WITHOUT_BUILDX)
    old = fake_cli(tmp_path / "old", OLD_CLI)
    found = engine.find_buildkit_cli([new, old])
    assert found is not None
    assert found.argv == [old, "build"]
    assert found.env == {"DOCKER_BUILDKIT": "1"}
    assert found.description == f"BuildKit via DOCKER_BUILDKIT=1 {old} 20.10.24+dfsg1"


def test_none_when_nothing_does_buildkit(tmp_path: Path) -> None:
    assert engine.find_buildkit_cli([fake_cli(tmp_path / "new", NEW_CLI_WITHOUT_BUILDX)]) is None
    assert engine.find_buildkit_cli([]) is None


def test_docker_clis_searches_path_and_dedupes(tmp_path: Path) -> None:
    a = fake_cli(tmp_path / "a", OLD_CLI)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "docker").symlink_to(a)
    c = fake_cli(tmp_path / "c", NEW_CLI_WITHOUT_BUILDX)
    search = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "none")])
    assert engine.docker_clis(search, extra=[str(tmp_path / "c")]) == [a, c]


def test_os_release(tmp_path: Path) -> None:
    path = tmp_path / "os-release"
    path.write_text('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n# comment\nVERSION_ID="24.04"\n')
    release = engine.os_release(path)
    assert release["ID"] == "ubuntu" and release["VERSION_ID"] == "24.04"
    assert engine.is_debian_like(release)
    assert engine.is_debian_like({"ID": "debian"})
    assert engine.is_debian_like({"ID": "pop", "ID_LIKE": "ubuntu debian"})
    assert not engine.is_debian_like({"ID": "fedora"})
    assert engine.os_release(tmp_path / "missing") == {}


def test_client_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(EngineError) as err:
        engine.client()
    assert host in str(err.value) and "systemctl start docker" in str(err.value)


def test_other_docker_host_is_not_started_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(EngineError, match="DOCKER_HOST="):
        engine.ensure_engine()


def test_not_root_gets_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "_ping", lambda: None)
    monkeypatch.setattr(engine, "is_root", lambda: False)
    with pytest.raises(EngineError) as err:
        engine.ensure_engine()
    message = str(err.value)
    assert "Docker Desktop" in message and "sudo systemctl start docker" in message and "sudo dockerd" in message


@pytest.fixture
def lab_engine_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "engine"
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "ENGINE_DIR", folder)
    monkeypatch.setattr(engine, "DOCKERD_LOG", folder / "dockerd.log")
    monkeypatch.setattr(engine, "DOCKERD_PID", folder / "dockerd.pid")
    monkeypatch.setattr(engine, "is_root", lambda: True)
    monkeypatch.setattr(engine, "is_debian_like", lambda release=None: True)
    return folder


def test_missing_dockerd_without_install(monkeypatch: pytest.MonkeyPatch, lab_engine_dir: Path) -> None:
    monkeypatch.setattr(engine, "_ping", lambda: None)
    monkeypatch.setattr(engine, "find_program", lambda name: None)
    with pytest.raises(EngineError, match="dockerd is not installed"):
        engine.ensure_engine(allow_install=False)


def test_dockerd_that_dies_reports_its_log(monkeypatch: pytest.MonkeyPatch, lab_engine_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "dockerd"
    script.write_text("#!/bin/sh\necho 'failed to start daemon: boom, no overlay here'\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setattr(engine, "_ping", lambda: None)
    monkeypatch.setattr(engine, "find_program", lambda name: str(script))
    with pytest.raises(EngineError) as err:
        engine.ensure_engine()
    assert "boom, no overlay here" in str(err.value)
    assert str(script) in str(err.value)


class FakeClient:
    def info(self) -> dict[str, Any]:
        return {"ServerVersion": "99.0", "Driver": "vfs", "DockerRootDir": "/nowhere"}


def test_started_dockerd_outlives_us(monkeypatch: pytest.MonkeyPatch, lab_engine_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "dockerd"
    script.write_text("#!/bin/sh\necho started\nexec sleep 60\n")
    script.chmod(0o755)
    socket_file = tmp_path / "docker.sock"
    socket_file.touch()
    answers = iter([None, None, FakeClient()])
    monkeypatch.setattr(engine, "_ping", lambda: next(answers))
    monkeypatch.setattr(engine, "find_program", lambda name: str(script))
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", socket_file)
    status = engine.ensure_engine()
    try:
        assert status.how == "started here"
        assert status.server_version == "99.0" and status.storage_driver == "vfs"
        assert status.log == lab_engine_dir / "dockerd.log"
        assert status.pid is not None
        assert int((lab_engine_dir / "dockerd.pid").read_text()) == status.pid
        assert os.getsid(status.pid) == status.pid != os.getsid(0)  # its own session
    finally:
        if status.pid:
            os.kill(status.pid, signal.SIGTERM)
            os.waitpid(status.pid, 0)


# --- against the real engine ---------------------------------------------------------------------


@pytest.mark.engine
def test_engine_answers() -> None:
    status = engine.ensure_engine()
    assert status.how in ("already running", "started here")
    assert status.server_version and status.storage_driver and status.root_dir
    assert engine.client().ping()


@pytest.mark.engine
def test_buildkit_cli_builds_with_buildkit(tmp_path: Path) -> None:
    engine.ensure_engine()
    cli = engine.buildkit_cli()
    assert cli is not None, "no docker CLI here builds with BuildKit"
    (tmp_path / "hello.txt").write_text("hi\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    tag = f"{config.IMAGE_REPO_PREFIX}/test-engine-buildkit:{int(time.time())}"
    argv = [*cli.argv, "--progress=plain", "--label", f"{config.LAB_LABEL}={config.LAB_LABEL_VALUE}", "-t", tag, str(tmp_path)]
    with buildcache.track(note=tag):  # the lab's build: `./lab clean` removes the cache records it makes
        proc = subprocess.run(argv, env={**os.environ, **cli.env}, capture_output=True, text=True, timeout=300, check=False)
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # BuildKit's plain progress numbers its steps (#1 ...); the classic builder prints "Step 1/2".
        assert "#1 " in proc.stdout + proc.stderr
        assert "Step 1/2" not in proc.stdout + proc.stderr
    finally:
        subprocess.run([cli.argv[0], "rmi", "-f", tag], capture_output=True, check=False)


# --- local or remote (issue 13) -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["unix:///var/run/docker.sock", "unix:///run/user/1000/docker.sock",
                                  "npipe:////./pipe/docker_engine", "tcp://127.0.0.1:2375", "tcp://localhost:2376",
                                  "tcp://[::1]:2375", "ssh://me@localhost", "127.0.0.1:2375"])
def test_engines_on_this_machine_are_local(host: str) -> None:
    assert engine.is_local(host)
    assert engine.describe_engine(host) == f"local engine at {host}"


@pytest.mark.parametrize("host", ["tcp://docker:2375", "tcp://10.213.13.2:2375", "ssh://builder@build-host",
                                  "tcp://127.0.0.2.example.invalid:2375", "tcp://[2001:db8::1]:2375"])
def test_engines_elsewhere_are_remote(host: str) -> None:
    assert not engine.is_local(host)
    assert engine.describe_engine(host) == f"remote engine at {host}"


def test_is_local_reads_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine.is_local()
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker:2375")
    assert not engine.is_local() and "tcp://docker:2375" in engine.describe_engine()
