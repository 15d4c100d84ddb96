"""basecamp.poetry.select_groups: what `poetry show <group flags>` selects, with the pinned Poetry, offline."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from basecamp import config
from basecamp.poetry import select_groups


@pytest.fixture
def test_group_project(tmp_path: Path) -> Path:
    """The app's pyproject.toml and poetry.lock with its `dev` group renamed `test` (both files, so no relock)."""
    shutil.copy(config.REPO_ROOT / "pyproject.toml", tmp_path)
    shutil.copy(config.REPO_ROOT / "poetry.lock", tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[tool.poetry.group.dev.", "[tool.poetry.group.test."))
    lock = tmp_path / "poetry.lock"
    lock.write_text(re.sub(r'groups = \["dev"', 'groups = ["test"', lock.read_text()))
    return tmp_path


def test_without_a_missing_group_is_refused_with_poetrys_message(test_group_project: Path) -> None:
    chosen = select_groups(test_group_project, "--without", "dev")
    assert chosen.packages == ()
    assert "Group(s) not found: dev" in chosen.error
    assert chosen.summary().startswith("poetry show --without dev: refused")


def test_only_main_leaves_the_other_groups_out_and_no_flag_keeps_them(test_group_project: Path) -> None:
    main = select_groups(test_group_project, "--only", "main")
    everything = select_groups(test_group_project)
    tools = select_groups(test_group_project, "--only", "test")
    assert not main.error and not everything.error
    assert {"fastapi", "uvicorn"} <= set(main.packages)
    assert not {"black", "mypy", "ruff"} & set(main.packages)
    assert {"black", "mypy", "ruff"} <= set(tools.packages) <= set(everything.packages)
    assert set(main.packages) < set(everything.packages)
    # the optional lab group stays out unless asked for
    assert "jupyterlab" not in everything.packages
    assert main.summary() == f"poetry show --only main: {len(main.packages)} packages"


def test_no_environment_is_made(test_group_project: Path) -> None:
    select_groups(test_group_project, "--only", "main")
    assert not (test_group_project / ".venv").exists()
