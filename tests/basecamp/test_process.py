"""process: the one way the lab runs a program to its end."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from basecamp import process
from basecamp.errors import CommandError

PY = sys.executable


def test_a_run_returns_what_the_program_printed() -> None:
    done = process.run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], timeout=30)
    assert (done.returncode, done.stdout, done.stderr, done.ok) == (0, "out\n", "err\n", True)
    merged = process.run([PY, "-c", "import sys; print('out', flush=True); print('err', file=sys.stderr)"],
                         timeout=30, merge_stderr=True)
    assert (merged.stdout, merged.stderr) == ("out\nerr\n", "")


def test_a_failure_carries_the_command_its_code_output_and_hint() -> None:
    argv = [PY, "-c", "import sys; print('half done'); sys.exit(3)"]
    with pytest.raises(CommandError) as failed:
        process.run(argv, timeout=30, hint="try again")
    assert failed.value.command == argv and failed.value.returncode == 3
    assert "half done" in failed.value.output and str(failed.value).endswith("try again")
    assert process.run(argv, timeout=30, check=False).returncode == 3


def test_a_missing_program_exits_127_and_a_slow_one_minus_1() -> None:
    with pytest.raises(CommandError) as missing:
        process.run(["/nonexistent/program"], timeout=30)
    assert missing.value.returncode == 127
    with pytest.raises(CommandError) as slow:
        process.run([PY, "-c", "import time; print('started', flush=True); time.sleep(30)"], timeout=0.5)
    assert slow.value.returncode == -1 and "timed out after" in slow.value.output


def test_the_environment_is_added_to_or_replaced() -> None:
    code = "import os; print(os.environ.get('ANNAPURNA_X'), os.environ.get('HOME') is not None)"
    assert process.run([PY, "-c", code], timeout=30, env={"ANNAPURNA_X": "1"}).stdout == "1 True\n"
    assert process.run([PY, "-c", code], timeout=30, env={"ANNAPURNA_X": "2"}, inherit_env=False).stdout == "2 False\n"


def test_an_attempt_is_none_only_when_the_program_cannot_run() -> None:
    assert process.attempt(["/nonexistent/program"], timeout=30) is None
    assert process.attempt([PY, "-c", "import time; time.sleep(30)"], timeout=0.5) is None
    failed = process.attempt([PY, "-c", "raise SystemExit(2)"], timeout=30)
    assert failed is not None and failed.returncode == 2 and not failed.ok


def test_alive_knows_a_running_a_finished_and_a_zombie_process() -> None:
    assert process.alive(os.getpid())
    child = subprocess.Popen([PY, "-c", "pass"])
    child.wait()
    assert not process.alive(child.pid), "reaped: gone"
    zombie = subprocess.Popen([PY, "-c", "pass"])
    deadline = time.monotonic() + 10
    while process.alive(zombie.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive(zombie.pid), "exited but not reaped: a zombie counts as dead"
    zombie.wait()
