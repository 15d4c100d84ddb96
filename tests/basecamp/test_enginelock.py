"""enginelock: one lab build or measurement at a time per engine; the second says so and waits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from basecamp import config, enginelock


@pytest.fixture(autouse=True)
def _own_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A lock file of its own: these tests never queue behind (or block) a real build."""
    monkeypatch.setenv("DOCKER_HOST", f"tcp://test-{tmp_path.name}:2375")
    monkeypatch.delenv(enginelock.HELD_ENV, raising=False)


def _holder(seconds: float, ready: Path) -> subprocess.Popen[str]:
    """Another process that holds the lock for `seconds`, as a notebook measuring would."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from basecamp import enginelock
        with enginelock.exclusive("measuring 06-cache-mounts in 06_cache_mounts.ipynb"):
            Path({str(ready)!r}).write_text("held")
            time.sleep({seconds})
    """)
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT / "notebooks")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the holder never took the lock"
        time.sleep(0.05)
    return proc


def test_a_second_process_says_what_it_waits_for_then_waits(tmp_path: Path) -> None:
    proc = _holder(2.0, tmp_path / "ready")
    said: list[str] = []
    t0 = time.monotonic()
    with enginelock.exclusive("building annapurna-lab/05-multi-stage:x", say=said.append):
        waited = time.monotonic() - t0
        assert enginelock.holder().startswith("building annapurna-lab/05-multi-stage:x")
    proc.wait(timeout=30)
    assert waited > 1.0, f"it did not wait for the holder ({waited:.2f} s)"
    assert len(said) == 1 and "busy: measuring 06-cache-mounts in 06_cache_mounts.ipynb" in said[0], said
    assert enginelock.holder() == "", "the lock says nothing once released"


def test_free_lock_takes_no_time_and_says_nothing() -> None:
    said: list[str] = []
    with enginelock.exclusive("building x", say=said.append):
        pass
    assert said == []


def test_re_entrant_within_a_process_and_inherited_by_children() -> None:
    said: list[str] = []
    with enginelock.exclusive("measuring x", say=said.append):
        with enginelock.exclusive("building x", say=said.append):  # a measurement's own build
            assert enginelock.holder().startswith("measuring x")
        child = subprocess.run(
            [sys.executable, "-c", ("from basecamp import enginelock\n"
                                    "with enginelock.exclusive('child', say=lambda m: print('WAITED', m)): print('ran')")],
            env={**os.environ, "PYTHONPATH": str(config.REPO_ROOT / "notebooks")},
            check=False, capture_output=True, text=True, timeout=30)
        assert child.stdout.strip() == "ran", child.stdout + child.stderr
    assert said == []
    assert enginelock.HELD_ENV not in os.environ
