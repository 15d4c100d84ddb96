"""Look inside an image by running a throwaway, labelled, network-less container."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from basecamp import config
from basecamp.errors import CommandError

#: What the workshop installs on the host and what must never reach an image of the app.
LAB_MODULES = ("basecamp", "jupyterlab", "ipywidgets", "plotly", "docker", "nbval")


@dataclass(frozen=True)
class ProbeResult:
    """A command's exit code and its combined output."""

    command: list[str]
    exit_code: int
    output: str


def run_in_image(ref: str, command: Sequence[str], *, timeout_s: float = 120) -> ProbeResult:
    """Run `command` (replacing the image's entrypoint) in a fresh container; always remove it."""
    from basecamp import engine

    client = engine.client()
    cmd = list(command)
    container = client.containers.create(
        ref, entrypoint=cmd[:1], command=cmd[1:], labels=config.made_labels(), network_disabled=True
    )
    try:
        container.start()
        status = container.wait(timeout=timeout_s)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ProbeResult(cmd, int(status.get("StatusCode", -1)), output)
    finally:
        container.remove(force=True)


def python_modules_in(ref: str, modules: Sequence[str] = LAB_MODULES, python: Sequence[str] = ("python",)) -> list[str]:
    """Which of `modules` the image's Python (`python`, e.g. ("poetry", "run", "python")) can import."""
    code = (
        "import importlib.util, json, sys; "
        f"print(json.dumps([m for m in {list(modules)!r} if importlib.util.find_spec(m)]))"
    )
    res = run_in_image(ref, [*python, "-c", code])
    if res.exit_code != 0:
        raise CommandError(res.command, res.exit_code, res.output, f"could not run Python in {ref}")
    return list(json.loads(res.output.strip().splitlines()[-1]))
