"""The first cell of every notebook: is the engine there? One clear message with the fix, no traceback wall."""

from __future__ import annotations

from .bundle import notice
from .engine import HOW_TO_START, client, docker_host
from .errors import EngineError

#: Printed when everything a notebook needs answers; stable so nbval can compare it.
READY = "Docker engine: ready."


def preflight() -> None:
    """Check that a Docker engine answers before a notebook builds anything.

    Prints one stable line when it does. When it does not, raises `EngineError`, which a notebook shows
    as its message only (see `LabError._render_traceback_`): where the lab looked and how to fix it.
    """
    try:
        client(timeout=10)
    except EngineError:
        raise EngineError(
            f"No Docker engine answers at {docker_host()}.\n"
            f"Fix: run `./lab prepare` in the repository (it starts the engine on Debian as root), or: {HOW_TO_START}"
        ) from None
    _charts()
    print(READY)

    if line := notice():  # a workshop bundle in use (./lab prepare --bundle): one line says so
        print(line)


def _charts() -> None:
    """Set the notebooks' plotly renderer (interactive chart plus a stored static image) for every chart,
    those a notebook draws with plotly directly included."""
    try:
        import basecamp.plots  # noqa: F401  (registers and selects the renderer on import)
    except ImportError:  # plotly missing: the notebooks' own cells say so when they draw
        pass
