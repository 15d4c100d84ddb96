"""One lab build or measurement at a time on an engine, across notebooks, kernels and checkouts.

Two notebooks that build at the same time would measure each other: the engine's two cores are
shared, so both timings are wrong. On Debian's docker.io 20.10 it can be worse: two BuildKit
builds that share steps have crashed the engine here ("panic: failed to get edge" in BuildKit's
scheduler, dockerd gone, every later call refused). So every lab build (`basecamp.build.build`)
and every measurement (`measure_step`, which holds it across its whole protocol) takes this lock
first. The second notebook says in one line what it waits for, then waits; interrupting the
kernel stops the wait.

The lock is a file in the temporary folder, one per engine (`DOCKER_HOST`), so two checkouts of
the series on one engine queue too. It is re-entrant within a process (a measurement's builds do
not wait for their own measurement), and child processes started while it is held inherit it
through ANNAPURNA_ENGINE_LOCK (a `python -m basecamp` run by a holder must not wait for it).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Set, to the holder's pid, in the environment of everything a holder starts.
HELD_ENV = "ANNAPURNA_ENGINE_LOCK"

_depth = 0


def lock_path() -> Path:
    """The lock file of the engine DOCKER_HOST names (the local socket when unset)."""
    engine = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    key = hashlib.sha256(engine.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"annapurna-engine-{os.getuid()}-{key}.lock"


def holder() -> str:
    """What holds the lock now, as its holder wrote it ("" when free or unknown)."""
    try:
        return lock_path().read_text().strip()
    except OSError:
        return ""


@contextmanager
def exclusive(what: str, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the engine for `what` (e.g. "measuring 06-cache-mounts in 06_cache_mounts.ipynb").

    When another process holds it, `say` one line naming it, then wait for it.
    """
    global _depth
    if _depth or os.environ.get(HELD_ENV):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    path = lock_path()
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            busy = fh.read().strip() or "another process"
            say(f"The Docker engine is busy: {busy}. Waiting until it is done, so neither measures the other "
                "(interrupt the kernel to stop waiting).")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{what} (pid {os.getpid()})\n")
        fh.flush()
        _depth += 1
        os.environ[HELD_ENV] = str(os.getpid())
        try:
            yield
        finally:
            _depth -= 1
            os.environ.pop(HELD_ENV, None)
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def describe(what: str) -> str:
    """`what`, with the notebook or command it runs in when known (for the busy line others see)."""
    where = os.environ.get("JPY_SESSION_NAME") or ""
    return f"{what} in {Path(where).name}" if where else what
