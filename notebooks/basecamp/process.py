"""One way to run a program: `run` (fails loudly) and `attempt` (a probe that may not work here).

Every external command the lab runs to completion goes through here (the docker CLI's builds, which
stream their log while they run, are the one exception: basecamp.build). A failure is one `CommandError`
that carries the command, its exit code and its output, with a hint of what to do; a program that is
missing exits 127 and one that runs past its timeout -1, like a shell would report them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from basecamp.errors import CommandError


@dataclass(frozen=True)
class Completed:
    """A program that ran to its end: what was run, its exit code and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    #: Empty when the run merged stderr into stdout.
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, as a terminal would have shown them (roughly)."""
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: Path | str | None = None,
    merge_stderr: bool = False,
    check: bool = True,
    hint: str = "",
) -> Completed:
    """Run `argv` to its end, no stdin; raise CommandError when it cannot start, times out, or (`check`) fails.

    `env` is added to this process's environment (`inherit_env=False`: it is the whole environment).
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})} if inherit_env else dict(env or {}),
            cwd=cwd,
            check=False,
        )
    except OSError as exc:  # not found, not executable
        raise CommandError(argv, 127, str(exc), hint) from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else (exc.output or "")
        raise CommandError(argv, -1, out + f"\n(timed out after {timeout:.0f} s)", hint) from exc
    done = Completed(tuple(argv), proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not done.ok:
        raise CommandError(argv, done.returncode, done.output, hint)
    return done


def attempt(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> Completed | None:
    """Run a probe (`docker --version`, `apt-config dump`): its result whatever the exit code, or None when
    the program is missing or runs past `timeout`."""
    try:
        return run(argv, timeout=timeout, env=env, check=False)
    except CommandError:
        return None


def alive(pid: int) -> bool:
    """Whether process `pid` runs (one of another user's counts; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True
