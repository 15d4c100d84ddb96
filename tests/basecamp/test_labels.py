"""Every container the lab creates carries the *made* label, so `./lab clean` can find what a killed kernel left.

A static check over the package's source: a container is created in one place only, `basecamp.containers`
(`throwaway`, which also removes it), and there each `containers.create(...)`/`containers.run(...)` call must
pass `labels=config.made_labels(...)`. Any other module that calls the SDK's `containers.create/run` itself is
flagged. `lab_labels()` alone is the label images inherit from the stand-in bases, which cleanup deliberately
does not select on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "notebooks" / "basecamp"
#: The one module allowed to create containers.
HELPER = "containers.py"


def _container_calls(source: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("create", "run")
            and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "containers"]


def container_calls_without_made_label(source: str, name: str = "<source>") -> list[str]:
    """`file:line` of every containers.create/run call whose labels are not made_labels(...)."""
    found = []
    for node in _container_calls(source):
        labels = next((k.value for k in node.keywords if k.arg == "labels"), None)
        func = labels.func if isinstance(labels, ast.Call) else None
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if called != "made_labels":
            found.append(f"{name}:{node.lineno}")
    return found


def container_calls_outside_the_helper(source: str, name: str) -> list[str]:
    """`file:line` of every containers.create/run call in a module other than basecamp.containers."""
    return [] if name == HELPER else [f"{name}:{node.lineno}" for node in _container_calls(source)]


def test_the_checker_sees_a_missing_or_inherited_label() -> None:
    assert container_calls_without_made_label("c.containers.create(ref, labels=config.lab_labels())") == ["<source>:1"]
    assert container_calls_without_made_label("dk.containers.run(image, detach=True)") == ["<source>:1"]
    assert container_calls_without_made_label("dk.containers.run(image, labels=config.made_labels())") == []
    assert container_calls_without_made_label("dk.containers.create(image, labels=made_labels(x='1'))") == []


def test_the_checker_sees_a_container_made_beside_the_helper() -> None:
    made = "dk.containers.create(image, labels=config.made_labels())"
    assert container_calls_outside_the_helper(made, "probe.py") == ["probe.py:1"]
    assert container_calls_outside_the_helper(made, HELPER) == []
    assert container_calls_outside_the_helper("with throwaway(image) as c: c.start()", "probe.py") == []


def test_the_helper_creates_containers() -> None:
    """The checks below would pass vacuously if the helper stopped calling the SDK (or were renamed)."""
    assert _container_calls((PACKAGE / HELPER).read_text())


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")))
def test_every_container_the_lab_creates_carries_the_made_label(module: str) -> None:
    source = (PACKAGE / module).read_text()
    assert container_calls_outside_the_helper(source, module) == [], "create containers with basecamp.containers"
    assert container_calls_without_made_label(source, module) == []
