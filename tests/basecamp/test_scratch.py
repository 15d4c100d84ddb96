import tomllib
from pathlib import Path

import pytest
from basecamp import config
from basecamp import scratch as scratch_mod
from basecamp.errors import CommandError, InputError
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


# --- dependency changes ---------------------------------------------------------------------------


def _fake_relock(calls: list[Path]):
    """A stand-in for `poetry lock`: appends the new package to the lock, as Poetry would add it."""
    def relock(project: Path) -> None:
        calls.append(project)
        lock = project / "poetry.lock"
        lock.write_text(lock.read_text() + '\n[[package]]\nname = "inflection"\nversion = "0.5.1"\n')
    return relock


def _dependencies(s) -> list[str]:
    return tomllib.loads((s.path / "pyproject.toml").read_text())["project"]["dependencies"]


def test_a_dependency_change_edits_the_copy_and_is_new_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(scratch_mod, "relock", _fake_relock(calls))
    checkout = {f: (config.REPO_ROOT / f).read_text() for f in ("pyproject.toml", "poetry.lock")}
    s = scratch_copy("dep1")
    digests = {s.state_digest()}
    first = s.change_dependency()
    assert "added inflection (==0.5.1), relocked" in first
    assert scratch_mod.DEPENDENCY in _dependencies(s) and len(calls) == 1
    assert 'name = "inflection"' in (s.path / "poetry.lock").read_text()
    digests.add(s.state_digest())
    pyprojects = {(s.path / "pyproject.toml").read_text()}
    second = s.change_dependency()
    assert "already added" in second and len(calls) == 1, "the package is there: no relock"
    assert _dependencies(s).count(scratch_mod.DEPENDENCY) == 1
    text = (s.path / "pyproject.toml").read_text()
    assert text not in pyprojects, "each call is new content for the layer cache"
    assert text.count(scratch_mod.DEPENDENCY_MARKER) == 1, "the previous marker is replaced, not piled up"
    digests.add(s.state_digest())
    assert len(digests) == 3
    assert {f: (config.REPO_ROOT / f).read_text() for f in checkout} == checkout, "the checkout is never edited"
    assert s.files() == scratch_copy("dep1-check").files(), "no new files (no venv) in the build context"
    assert len(s.edits) == 2


def test_the_relocked_lock_is_reused_by_the_next_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(scratch_mod, "relock", _fake_relock(calls))
    a = scratch_copy("dep2")
    a.change_dependency()
    b = scratch_copy("dep2")
    b.change_dependency()
    assert len(calls) == 1, "the second copy gets the cached lock"
    assert (a.path / "poetry.lock").read_text() == (b.path / "poetry.lock").read_text()
    assert list(scratch_mod.lock_cache_dir().glob("*.lock"))


def test_a_failed_relock_leaves_the_copy_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(project: Path) -> None:
        raise CommandError(["poetry", "lock"], 1, "no index")

    monkeypatch.setattr(scratch_mod, "relock", broken)
    s = scratch_copy("dep3")
    before = (s.path / "pyproject.toml").read_text()
    with pytest.raises(CommandError):
        s.change_dependency()
    assert (s.path / "pyproject.toml").read_text() == before and s.edits == []


def test_a_package_already_locked_is_refused() -> None:
    s = scratch_copy("dep4")
    with pytest.raises(InputError, match="already in poetry.lock"):
        s.change_dependency("idna (>=3)")
    with pytest.raises(InputError, match="PEP 508"):
        s.change_dependency('x"; rm -rf /')


def test_the_dependency_is_added_whatever_the_array_layout() -> None:
    one_line = '[project]\nname = "a"\ndependencies = ["fastapi"]\n\n[tool.x]\ndependencies = ["no"]\n'
    assert tomllib.loads(scratch_mod._add_dependency(one_line, "inflection (==0.5.1)"))["project"]["dependencies"] == \
        ["inflection (==0.5.1)", "fastapi"]
    empty = '[project]\nname = "a"\ndependencies = []\n'
    assert tomllib.loads(scratch_mod._add_dependency(empty, "x"))["project"]["dependencies"] == ["x"]
    with pytest.raises(InputError, match="dependencies"):
        scratch_mod._add_dependency('[tool.poetry.dependencies]\npython = "^3.11"\n', "x")


def test_a_real_relock_with_the_pinned_poetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing: the host's pinned Poetry relocks the copy (a few seconds with a warm Poetry cache)."""
    import os

    # the lab folder is a temporary one in unit tests: point at the real lab's Poetry, as ./lab does
    pinned = Path(os.environ.get("ANNAPURNA_HOME", config.REPO_ROOT / ".lab")) / "tools" / "poetry" / "bin" / "poetry"
    if not os.environ.get("ANNAPURNA_POETRY") and pinned.exists():
        monkeypatch.setenv("ANNAPURNA_POETRY", str(pinned))
    s = scratch_copy("dep5")
    old_hash = tomllib.loads((s.path / "poetry.lock").read_text())["metadata"]["content-hash"]
    s.change_dependency()
    lock = tomllib.loads((s.path / "poetry.lock").read_text())
    (pkg,) = [p for p in lock["package"] if p["name"] == "inflection"]
    assert pkg["version"] == "0.5.1" and pkg["groups"] == ["main"]
    assert all(f["file"].endswith((".whl", ".tar.gz")) for f in pkg["files"])
    assert lock["metadata"]["content-hash"] != old_hash
    original = {p["name"]: p["version"] for p in tomllib.loads((config.REPO_ROOT / "poetry.lock").read_text())["package"]}
    relocked = {p["name"]: p["version"] for p in lock["package"] if p["name"] != "inflection"}
    assert relocked == original, "relocking keeps every existing pin"
    assert s.files() == scratch_copy("dep5-check").files()
