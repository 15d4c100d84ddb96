"""Every container the lab creates carries the *made* label, so `./lab clean` can find what a killed kernel left.

A static check over the package's source: each `containers.create(...)`/`containers.run(...)` call must pass
`labels=config.made_labels(...)`. `lab_labels()` alone is the label images inherit from the stand-in bases,
which cleanup deliberately does not select on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "notebooks" / "basecamp"


def container_calls_without_made_label(source: str, name: str = "<source>") -> list[str]:
    """`file:line` of every containers.create/run call whose labels are not made_labels(...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("create", "run")
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "containers"):
            continue
        labels = next((k.value for k in node.keywords if k.arg == "labels"), None)
        func = labels.func if isinstance(labels, ast.Call) else None
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if called != "made_labels":
            found.append(f"{name}:{node.lineno}")
    return found


def test_the_checker_sees_a_missing_or_inherited_label() -> None:
    assert container_calls_without_made_label("c.containers.create(ref, labels=config.lab_labels())") == ["<source>:1"]
    assert container_calls_without_made_label("dk.containers.run(image, detach=True)") == ["<source>:1"]
    assert container_calls_without_made_label("dk.containers.run(image, labels=config.made_labels())") == []
    assert container_calls_without_made_label("dk.containers.create(image, labels=made_labels(x='1'))") == []


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")))
def test_every_container_the_lab_creates_carries_the_made_label(module: str) -> None:
    path = PACKAGE / module
    assert container_calls_without_made_label(path.read_text(), module) == []
