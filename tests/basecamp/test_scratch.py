from pathlib import Path

import pytest

from basecamp import config
from basecamp.errors import InputError
from basecamp.scratch import scratch_copy


def test_copy_holds_only_the_app_files() -> None:
    s = scratch_copy("t1")
    files = s.files()
    assert "pyproject.toml" in files and "poetry.lock" in files and "README.md" in files
    assert "annapurna/main.py" in files
    # nothing of the lab, the notebooks or the venv goes into a build context
    assert not [f for f in files if f.startswith(("notebooks", "tests", ".venv", "dockerfiles", ".lab"))]
    assert not [f for f in files if "__pycache__" in f]
    assert s.path.is_relative_to(config.SCRATCH_DIR)


def test_edits_touch_the_copy_never_the_checkout() -> None:
    original = (config.REPO_ROOT / "annapurna" / "main.py").read_text()
    s = scratch_copy("t2")
    first = s.edit_code()
    second = s.edit_code()
    assert first != second, "each edit must be new to the build cache"
    edited = (s.path / "annapurna" / "main.py").read_text()
    assert first in edited and second in edited
    assert (config.REPO_ROOT / "annapurna" / "main.py").read_text() == original
    compile(edited, "main.py", "exec")  # still valid Python
    assert len(s.edits) == 2


def test_a_new_copy_starts_clean() -> None:
    s = scratch_copy("t3")
    s.edit_code()
    again = scratch_copy("t3")
    assert "BUILD_EDIT" not in (again.path / "annapurna" / "main.py").read_text()


def test_bad_names_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="scratch name"):
        scratch_copy("../escape")
    with pytest.raises(InputError, match="missing pyproject.toml"):
        scratch_copy("t4", source=tmp_path)


def test_another_project_folder_can_be_copied(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "poetry.lock", "README.md"):
        (tmp_path / name).write_text("")
    (tmp_path / "annapurna").mkdir()
    (tmp_path / "annapurna" / "main.py").write_text("x = 1\n")
    s = scratch_copy("t5", source=tmp_path)
    assert s.source == tmp_path.resolve()
    assert s.files() == ["README.md", "annapurna/main.py", "poetry.lock", "pyproject.toml"]
