"""basecamp.registry: its config, the access log and manifest arithmetic, the record cleanup stops by (no engine)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from basecamp import config, registry
from basecamp.errors import LabError

# Lines as distribution 2.8's access log writes them (Apache combined format).
LOG = """\
127.0.0.1 - - [02/Dec/2026:14:22:56 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:56 +0000] "HEAD /v2/a/manifests/t HTTP/1.1" 200 740 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:56 +0000] "GET /v2/a/manifests/sha256:ab HTTP/1.1" 200 740 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:57 +0000] "GET /v2/a/blobs/sha256:cd HTTP/1.1" 200 5154581 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:57 +0000] "GET /v2/a/blobs/sha256:ef HTTP/1.1" 200 670 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:57 +0000] "GET /v2/a/blobs/sha256:00 HTTP/1.1" 404 157 "" "docker/20.10.24"
127.0.0.1 - - [02/Dec/2026:14:22:57 +0000] "PUT /v2/a/manifests/t HTTP/1.1" 201 0 "" "docker/20.10.24"
time="2026-12-02T14:22:57Z" level=warning msg="not an access line"
"""


def test_the_access_log_counts_what_was_sent() -> None:
    served = registry.parse_access_log(LOG)
    assert served.requests == 6  # GET and HEAD lines; the PUT and the other line are not served bytes
    assert served.blobs == 2 and served.blob_bytes == 5154581 + 670  # a 404 is no blob
    assert served.total_bytes == 2 + 740 + 5154581 + 670 + 157  # a HEAD's announced length never crossed


def test_served_since_reads_only_after_the_mark(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_text(LOG)
    reg = registry.Registry(5000, 1, tmp_path / "storage", log)
    mark = registry.log_mark(reg)
    assert registry.served_since(reg, mark).requests == 0
    with log.open("a") as fh:
        fh.write('127.0.0.1 - - [x] "GET /v2/b/blobs/sha256:12 HTTP/1.1" 200 1000 "" "docker"\n')
    assert registry.served_since(reg, mark) == registry.Served(1, 1000, 1000, 1)


def test_a_manifest_gives_the_compressed_layers_and_config() -> None:
    body = {"schemaVersion": 2, "config": {"size": 5978}, "layers": [{"size": 48229835}, {"size": 670}]}
    stored = registry.stored_image("127.0.0.1:5000/a:t", body)
    assert stored.layers == (48229835, 670) and stored.compressed_bytes == 48229835 + 670 + 5978
    with pytest.raises(LabError, match="not a single-image manifest"):
        registry.stored_image("r", {"manifests": []})


def test_stored_blobs_reads_the_content_addressed_store(tmp_path: Path) -> None:
    reg = registry.Registry(5000, 1, tmp_path, tmp_path / "log")
    for digest, size in (("ab12", 10), ("cd34", 3)):
        data = tmp_path / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
        data.parent.mkdir(parents=True)
        data.write_bytes(b"x" * size)
    assert registry.stored_blobs(reg) == {"sha256:ab12": 10, "sha256:cd34": 3}


def test_the_config_listens_on_loopback_only_with_the_storage_given(tmp_path: Path) -> None:
    text = registry.config_text(tmp_path / "storage", 41234)
    assert "  addr: 127.0.0.1:41234" in text.splitlines()
    assert f"    rootdirectory: {tmp_path / 'storage'}" in text.splitlines()
    assert "accesslog:\n    disabled: false" in text


def test_stop_kills_the_recorded_registry_and_removes_its_storage() -> None:
    root = registry.folder()  # the unit tests' own LAB_HOME (tests/conftest.py)
    (root / "storage").mkdir(parents=True)
    (root / "storage" / "blob").write_bytes(b"x" * 2000)
    # A stand-in process named like the registry program, so the pid check accepts it.
    fake = root / registry.PROGRAM
    fake.symlink_to(shutil.which("sleep") or "/bin/sleep")
    proc = subprocess.Popen([str(fake), "60"])
    deadline = time.monotonic() + 5
    while not Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(str(fake).encode()):
        assert time.monotonic() < deadline, "the stand-in registry did not start"
        time.sleep(0.01)
    registry.record_file().write_text(json.dumps({"pid": proc.pid, "port": 1, "storage": "s", "log": "l"}))
    try:
        said = registry.stop()
        assert proc.wait(timeout=15) is not None
    finally:
        proc.kill()
    assert f"stopped the lab's registry (pid {proc.pid})" in said and "removed its storage" in said
    assert not root.exists()
    assert registry.stop() == ""  # nothing left: nothing to say


def test_stop_never_kills_a_recycled_pid() -> None:
    root = registry.folder()
    root.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    registry.record_file().write_text(json.dumps({"pid": proc.pid, "port": 1, "storage": "s", "log": "l"}))
    try:
        said = registry.stop()
        assert proc.poll() is None, "a process that is not the registry was killed"
    finally:
        proc.kill()
    assert "stopped" not in said and not root.exists()


def test_a_remote_engine_gets_no_loopback_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker:2375")
    with pytest.raises(LabError, match="remote engine at tcp://docker:2375 cannot reach"):
        registry.start()
    assert not registry.folder().exists()


def test_the_folder_is_under_the_lab_home() -> None:
    assert registry.folder() == config.LAB_HOME / "registry"


def _empty_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine with nothing of the lab's in it, for cleanup() (no real engine)."""
    from types import SimpleNamespace

    from basecamp import buildcache, engine

    client = SimpleNamespace(containers=SimpleNamespace(list=lambda **_: []), images=SimpleNamespace(list=lambda **_: []))
    monkeypatch.setattr(engine, "client", lambda *a, **k: client)
    for name, value in {"claim_late_records": [], "late_records": [], "disk_usage": {},
                        "lab_cache_mount_ids": set(), "lab_build_record_ids": set(),
                        "prune_lab_build_records": SimpleNamespace(kept=[]), "prune_lab_cache_mounts": None,
                        "remaining_lab_cache_mounts": []}.items():
        monkeypatch.setattr(buildcache, name, lambda *a, _v=value, **k: _v)


def test_lab_clean_stops_the_registry_and_a_dry_run_only_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from basecamp.cleanup import cleanup

    _empty_engine(monkeypatch)
    (registry.folder() / "storage").mkdir(parents=True)
    dry = cleanup(dry_run=True)
    assert "would stop the lab's registry" in dry.summary() and registry.folder().exists()
    report = cleanup()
    assert "registry: removed its storage" in report.summary() and not registry.folder().exists()
    assert cleanup().registry == ""
