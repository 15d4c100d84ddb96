"""The setup checks the first notebook runs: each says [OK] or [FAIL] and, on failure, the fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from basecamp import bases, config, disk, engine, poetry
from basecamp.errors import EngineError, LabError
from basecamp.units import fmt_bytes


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
    except EngineError:
        where = f"none answers at {engine.docker_host()}"
        return Check(name, False, where if name == "Docker engine" else f"needs the Docker engine, and {where}", fix)
    except LabError as exc:
        return Check(name, False, str(exc).splitlines()[0], fix)


def check_engine() -> Check:
    def probe() -> Check:
        info = engine.client().info()
        return Check("Docker engine", True, f"Docker {info['ServerVersion']}, storage driver {info['Driver']}, "
                     f"{engine.describe_engine()}")

    return _guard("Docker engine", "run `./lab prepare` (starts one here), or start Docker Desktop / `sudo systemctl start docker`", probe)


def check_buildkit() -> Check:
    def probe() -> Check:
        cli = engine.buildkit_cli()
        if cli is None:
            return Check("BuildKit", False, "no docker CLI here can build with BuildKit",
                         "install the docker buildx plugin (Docker Desktop has it)")
        return Check("BuildKit", True, cli.description)

    return _guard("BuildKit", "run `./lab prepare`", probe)


def check_bases() -> list[Check]:
    found: dict[str, bases.BaseImage] = {}

    def probe() -> Check:
        found.update({b.tag: b for b in bases.describe_bases()})
        return Check("base images", True, "listed")

    listed = _guard("base images", "start the engine first (see [FAIL] Docker engine), then `./lab prepare`", probe)
    if not listed.ok:
        return [listed]
    out = []
    for tag in (config.FULL_BASE, config.SLIM_BASE):
        b = found.get(tag)
        if b is None:
            out.append(Check(f"base {tag}", False, "missing", "run `./lab prepare` (pulls it, or builds a stand-in)"))
        else:
            kind = "stand-in built from Debian packages" if b.is_standin else "official image"
            out.append(Check(f"base {tag}", True, f"{kind}, {fmt_bytes(b.size_bytes)}"))
    return out


def check_disk(needed: int | None = None) -> Check:
    def probe() -> Check:
        client = engine.client()
        space = disk.engine_space(client)
        if space.free_bytes is None:
            return Check("free disk", True, space.unknown_why)
        need = disk.series_need(base_sizes=disk.base_sizes(client))
        wanted = need.bytes if needed is None else needed
        detail = f"{fmt_bytes(space.free_bytes)} free at {space.root}, the series needs {fmt_bytes(wanted)}"
        return Check("free disk", space.free_bytes >= wanted, detail,
                     "free disk space, or `./lab clean` to remove the lab's images")

    return _guard("free disk", "start the engine first (see [FAIL] Docker engine)", probe)


def check_poetry() -> Check:
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


def verdict(checks: list[Check]) -> str:
    """The closing line of the setup notebook; a LabError naming the failed checks when any failed."""
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise LabError(f"{len(failed)} check(s) failed: {', '.join(failed)}.\n"
                       "Apply the fix printed under each [FAIL] above, then Kernel > Restart Kernel and Run All Cells.")
    return f"All {len(checks)} checks passed: open 01_naive.ipynb"
