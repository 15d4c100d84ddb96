"""The lab's own Python is checked on every `./lab test`: ruff over the code and tests, mypy over the package.

Settings live in pyproject.toml (`[tool.ruff]`, `[tool.mypy]`), so a contributor's editor, this test and CI
agree; the tools are the versions poetry.lock pins in the lab's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "notebooks")}  # where `basecamp` is importable from
    return subprocess.run(argv, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = _run(str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package() -> None:
    done = _run(str(BIN / "mypy"), "--no-error-summary")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_package_keeps_its_floors() -> None:
    """import-linter's contract in pyproject.toml: no module imports from a floor above its own."""
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The groups of modules of `package` that import each other in a loop (strongly connected, >1 module)."""
    modules = sorted(graph.find_children(package))
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for m in modules:
        if m not in index:
            visit(m)
    return found


def test_no_module_imports_itself_through_others() -> None:
    """No cycles, imports inside functions included (only `if TYPE_CHECKING:` annotations are left out)."""
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        graph = grimp.build_graph("basecamp", exclude_type_checking_imports=True, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT / "notebooks"))
    assert import_cycles(graph, "basecamp") == []
