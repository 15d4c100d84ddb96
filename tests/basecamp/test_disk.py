"""disk: the series' need from measurements, and the refusal before the first build."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from basecamp import disk
from basecamp.errors import InputError, LabError
from basecamp.results import Record, record


class FakeClient:
    def __init__(self, root: str, sizes: dict[str, int] | None = None) -> None:
        self.root = root
        self.images = SimpleNamespace(list=lambda: [SimpleNamespace(tags=[t], attrs={"Size": s})
                                                    for t, s in (sizes or {}).items()],
                                      get=lambda ref: SimpleNamespace(id=f"sha256:{ref}", labels={}))

    def info(self) -> dict[str, Any]:
        return {"DockerRootDir": self.root}


def test_nothing_measured_uses_the_readme_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(disk.NEED_ENV, raising=False)
    need = disk.series_need(tmp_path / "none.jsonl")
    assert need.bytes == disk.FALLBACK_NEED_BYTES == 4 * 660 * 10**6 + 25 * 10**8
    assert "README" in need.basis


def test_need_grows_with_what_was_measured_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(disk.NEED_ENV, raising=False)
    path = tmp_path / "results.jsonl"
    record(Record(step="01-naive", scenario="cold", size_bytes=5 * 10**9, base="python:3.11-bookworm (stand-in)"), path)
    record(Record(step="05-multi-stage", scenario="cold", size_bytes=2 * 10**9, base="python:3.11-slim-bookworm (stand-in)"),
           path)
    need = disk.series_need(path, {"python:3.11-bookworm": 1 * 10**9, "python:3.11-slim-bookworm": 10**9})
    # (5-1) + (2-1) GB of own layers, 3 copies, + the cache margin
    assert need.bytes == 4 * 5 * 10**9 + disk.BUILD_CACHE_MARGIN_BYTES
    assert "2 step(s)" in need.basis


def test_rows_that_are_not_a_step_image_on_its_base_do_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build context's size (07) and a forensics row (whole image, no base) once doubled the estimate."""
    monkeypatch.delenv(disk.NEED_ENV, raising=False)
    path = tmp_path / "results.jsonl"
    slim = "python:3.11-slim-bookworm"
    record(Record(step="05-multi-stage", scenario="cold", size_bytes=3 * 10**9, base=f"{slim} (stand-in)"), path)
    record(Record(step="05-multi-stage", scenario="forensics", size_bytes=3 * 10**9, image_id="sha256:1"), path)
    record(Record(step="07-build-context", scenario="context: repo root", size_bytes=9 * 10**9), path)
    need = disk.series_need(path, {slim: 10**9})
    assert need.bytes == 4 * 2 * 10**9 + disk.BUILD_CACHE_MARGIN_BYTES and "1 step(s)" in need.basis


def test_the_need_can_be_overridden_but_not_with_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk.NEED_ENV, "12345")
    assert disk.series_need().bytes == 12345
    monkeypatch.setenv(disk.NEED_ENV, "lots")
    with pytest.raises(InputError, match="ANNAPURNA_DISK_NEED='lots'"):
        disk.series_need()


def test_refuses_with_needed_and_free_bytes_and_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))  # an exabyte: more than any disk here
    with pytest.raises(LabError) as info:
        disk.ensure_disk_space(FakeClient(str(tmp_path)), force=True)
    msg = str(info.value)
    assert str(tmp_path) in msg and "free" in msg and f"({10**18} bytes" in msg and "./lab clean" in msg


def test_checked_once_per_process_after_a_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "_checked", False)
    monkeypatch.setenv(disk.NEED_ENV, "1")
    disk.ensure_disk_space(FakeClient(str(tmp_path)))
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))
    disk.ensure_disk_space(FakeClient(str(tmp_path)))  # already checked: no second statvfs
    with pytest.raises(LabError):
        disk.ensure_disk_space(FakeClient(str(tmp_path)), force=True)


def test_a_refusal_is_checked_again_next_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "_checked", False)
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))
    for _ in range(2):
        with pytest.raises(LabError):
            disk.ensure_disk_space(FakeClient(str(tmp_path)))


def test_engine_data_in_a_vm_is_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))
    space = disk.engine_space(FakeClient("/nonexistent/docker-desktop-vm"))
    assert space.free_bytes is None
    disk.ensure_disk_space(FakeClient("/nonexistent/docker-desktop-vm"), force=True)


class Reached(Exception):
    """Raised where the builder would start: the build got that far."""


def _no_builder() -> None:
    raise Reached


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An engine whose disk is far too small for the series; no builder ever starts."""
    from basecamp import engine

    monkeypatch.setattr(disk, "_checked", False)
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))
    monkeypatch.setattr(engine, "client", lambda timeout=120: FakeClient(str(tmp_path)))
    monkeypatch.setattr(engine, "buildkit_cli", _no_builder)
    return tmp_path


def test_build_step_refuses_before_running_anything(full_disk: Path) -> None:
    from basecamp.scratch import scratch_copy
    from basecamp.steps import build_step

    with pytest.raises(LabError, match="Not enough free disk"):
        build_step("02", scratch_copy("disk-test"), "disk-test", display="none")


def test_a_measurement_refuses_before_running_anything(full_disk: Path) -> None:
    from basecamp.measure import measure_step

    with pytest.raises(LabError, match="Not enough free disk"):
        measure_step("05", scenarios=["cold"], repeats=1, display="none", log=None)


def test_a_plain_build_checks_no_disk_and_reads_no_results(full_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build() is mechanics only: the free-disk check (and the results file it reads) is its callers'."""
    from basecamp import results
    from basecamp.build import build

    def fail(*_a: Any, **_k: Any) -> None:
        pytest.fail("a plain build() read the results file")

    monkeypatch.setattr(results, "load", fail)
    (full_disk / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(Reached):
        build(full_disk / "Dockerfile", full_disk, "annapurna-lab/disk-test:1", display="none")


class FakeRemoteClient(FakeClient):
    """An engine that reports its data root and its disk usage, like any engine does."""

    def df(self) -> dict[str, Any]:
        return {"LayersSize": 3 * 10**9, "Containers": [{"SizeRw": 10**6}], "BuildCache": [{"Size": 2 * 10**9}]}


def test_a_remote_engines_free_space_is_unknown_not_read_from_here(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder of the engine's root name exists here: a local read would give this machine's disk, wrongly.
    space = disk.engine_space(FakeRemoteClient(str(tmp_path)), host="tcp://10.213.13.2:2375")
    assert space.free_bytes is None and space.used_bytes == 5_001_000_000
    assert space.unknown_why.startswith("remote engine at tcp://10.213.13.2:2375: its free disk cannot be known")
    assert "5 GB" in space.unknown_why and str(tmp_path) in space.unknown_why
    monkeypatch.setenv(disk.NEED_ENV, str(10**18))
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.213.13.2:2375")
    disk.ensure_disk_space(FakeRemoteClient(str(tmp_path)), force=True)  # never refused: nothing is known


def test_a_local_engines_free_space_is_read(tmp_path: Path) -> None:
    space = disk.engine_space(FakeRemoteClient(str(tmp_path)), host="unix:///var/run/docker.sock")
    assert space.free_bytes is not None and space.free_bytes > 0 and space.unknown_why == ""
    assert space.engine == "local engine at unix:///var/run/docker.sock"


def test_check_disk_says_a_remote_engines_space_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    from basecamp import checks, engine

    monkeypatch.setenv("DOCKER_HOST", "tcp://docker:2375")
    monkeypatch.setattr(engine, "client", lambda **_: FakeRemoteClient("/var/lib/docker"))
    check = checks.check_disk()
    assert check.ok and "remote engine at tcp://docker:2375: its free disk cannot be known" in check.detail
