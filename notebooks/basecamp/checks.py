"""The setup checks the first notebook runs: each says [OK] or [FAIL] and, on failure, the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from basecamp import config
from basecamp.errors import LabError
from basecamp.units import fmt_bytes

#: Free space the series needs where the engine keeps its data: two base images (~1.3 GB),
#: the naive image (~1.3 GB), the later steps' images and BuildKit's cache, with room to spare.
DISK_NEEDED_BYTES = 8 * 10**9


@dataclass(frozen=True)
class Check:
    """One check: what was checked, whether it passed, what was found, and how to fix a failure."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"
        return text if self.ok else f"{text}\n       fix: {self.fix}"


def _guard(name: str, fix: str, probe: Callable[[], Check]) -> Check:
    """Run one probe; a LabError becomes a failed check instead of a traceback."""
    try:
        return probe()
    except LabError as exc:
        return Check(name, False, str(exc).splitlines()[0], fix)


def check_engine() -> Check:
    from basecamp import engine

    def probe() -> Check:
        info = engine.client().info()
        return Check("Docker engine", True, f"Docker {info['ServerVersion']}, storage driver {info['Driver']}")

    return _guard("Docker engine", "run `./lab prepare` (starts one here), or start Docker Desktop / `sudo systemctl start docker`", probe)


def check_buildkit() -> Check:
    from basecamp import engine

    def probe() -> Check:
        cli = engine.buildkit_cli()
        if cli is None:
            return Check("BuildKit", False, "no docker CLI here can build with BuildKit",
                         "install the docker buildx plugin (Docker Desktop has it)")
        return Check("BuildKit", True, cli.description)

    return _guard("BuildKit", "run `./lab prepare`", probe)


def check_bases() -> list[Check]:
    from basecamp import bases

    try:
        found = {b.tag: b for b in bases.describe_bases()}
    except LabError as exc:
        return [Check("base images", False, str(exc).splitlines()[0], "run `./lab prepare`")]
    out = []
    for tag in (config.FULL_BASE, config.SLIM_BASE):
        b = found.get(tag)
        if b is None:
            out.append(Check(f"base {tag}", False, "missing", "run `./lab prepare` (pulls it, or builds a stand-in)"))
        else:
            kind = "stand-in built from Debian packages" if b.is_standin else "official image"
            out.append(Check(f"base {tag}", True, f"{kind}, {fmt_bytes(b.size_bytes)}"))
    return out


def check_disk(needed: int = DISK_NEEDED_BYTES) -> Check:
    from basecamp import engine

    def probe() -> Check:
        root = Path(engine.client().info()["DockerRootDir"])
        if not root.exists():
            return Check("free disk", True, f"engine data is in a VM ({root}); check its disk in Docker Desktop")
        free = shutil.disk_usage(root).free
        detail = f"{fmt_bytes(free)} free at {root}, the series needs {fmt_bytes(needed)}"
        return Check("free disk", free >= needed, detail, "free disk space, or `./lab clean` to remove the lab's images")

    return _guard("free disk", "start the engine first", probe)


def check_poetry() -> Check:
    from basecamp import poetry

    def probe() -> Check:
        info = poetry.poetry_info()
        if not info.is_pinned:
            return Check("Poetry", False, f"{info.path} is {info.version}, the lab pins {info.pinned}", "run `./lab prepare`")
        poetry.check_lock()
        return Check("Poetry", True, f"{info.version} (pinned), poetry.lock matches pyproject.toml")

    return _guard("Poetry", "run `./lab prepare`", probe)


def run_checks() -> list[Check]:
    """Every setup check, in the order a fix is best applied."""
    return [check_engine(), check_buildkit(), *check_bases(), check_disk(), check_poetry()]


def report(checks: list[Check]) -> bool:
    """Print one line per check (with the fix for failures) and return whether all passed."""
    for c in checks:
        print(c.line())
    return all(c.ok for c in checks)
