"""The version bump: the scratch copy's bump, its verification, the bump rows (no engine); a real bump (engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from basecamp import measure
from basecamp.errors import InputError
from basecamp.measure import protocol
from basecamp.scratch import Scratch, new_version, with_version
from basecamp.verify import dependency_binds, dependency_install_reran, verify
from basecamp.versionbump import bump_row, format_bump_table
from test_verify import MULTI, run_of, with_status  # tests/basecamp is on sys.path (pytest imports test files by name)

PYPROJECT = textwrap.dedent('''\
    [project]
    name = "app"
    version = "1.4.2"  # bumped by the release script
    dependencies = ["fastapi"]

    [tool.poetry.group.dev.dependencies]
    version = "*"
    ''')


def test_with_version_changes_the_project_version_and_nothing_else() -> None:
    text, old = with_version(PYPROJECT, "1.4.3")
    assert old == "1.4.2"
    assert text == PYPROJECT.replace('version = "1.4.2"', 'version = "1.4.3"')
    assert 'version = "*"' in text, "a dependency named version in another table is left alone"
    first = '[tool.bumpversion]\nversion = "5"\n\n[project]\nname = "x"\nversion = "1.0"\n'
    assert with_version(first, "2.0") == (first.replace('"1.0"', '"2.0"'), "1.0"), "only [project]'s version"


def test_with_version_reads_poetry_1_layout_and_refuses_a_dynamic_version() -> None:
    text, old = with_version('[tool.poetry]\nname = "x"\nversion = \'0.3.0\'\n', "0.4.0")
    assert old == "0.3.0" and text.endswith("version = '0.4.0'\n")
    with pytest.raises(InputError, match="no static"):
        with_version('[project]\nname = "x"\ndynamic = ["version"]\n', "1.0")


def test_new_versions_keep_major_minor_and_never_repeat() -> None:
    seen = {new_version("2.7.1") for _ in range(50)}
    assert len(seen) == 50 and all(v.startswith("2.7.") for v in seen)
    assert new_version("3").startswith("3.0.")


def test_bump_version_edits_only_the_version_of_the_copy(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "poetry.lock").write_text("# lock\n")
    app = Scratch("t", tmp_path, tmp_path)
    said = app.bump_version("9.9.9")
    assert said == "1.4.2 -> 9.9.9"
    assert (tmp_path / "pyproject.toml").read_text() == PYPROJECT.replace("1.4.2", "9.9.9")
    assert (tmp_path / "poetry.lock").read_text() == "# lock\n"
    assert app.edits == ["pyproject.toml: version 1.4.2 -> 9.9.9"]


def test_steps_before_the_split_have_no_version_bump() -> None:
    for step in ("01-naive", "02-warming-up", "03-poetry-cache"):
        assert "version-bump" not in protocol(step)
    for step in ("04-deps-before-code", "05-multi-stage", "06-cache-mounts", "08-uv", "09-hardened-runtime"):
        assert protocol(step)[-1] == "version-bump"
    assert protocol("03b-cache-deleted-later") == ("cold",)


def test_measure_step_refuses_a_scenario_outside_the_steps_protocol() -> None:
    with pytest.raises(InputError, match="measured with cold, code-change, dependency-change only"):
        measure.measure_step("01", scenarios=["version-bump"])


BIND = ("[builder 1/4] FROM docker.io/library/python:3.11-bookworm", "[builder 2/4] RUN pip install poetry==2.5.1",
        "[builder 3/4] WORKDIR /app",
        ("[builder 4/4] RUN --mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml "
         "--mount=type=cache,id=x,target=/tmp/c poetry install --no-root"))


def test_a_version_bump_must_reach_the_build_and_find_the_cache_warm() -> None:
    # step 6: the COPY of pyproject.toml re-ran, and the install with it: valid (that is the finding)
    assert verify(run_of("version-bump", with_status(MULTI, "cccdddccd"))) == []
    # the install stayed cached but the COPY re-ran: also valid (a fix)
    assert verify(run_of("version-bump", with_status(MULTI, "cccdcccdd"))) == []
    problems = verify(run_of("version-bump", with_status(MULTI, "ccccccccd")))
    assert problems and "did not reach the build" in problems[0]
    problems = verify(run_of("version-bump", with_status(MULTI, "cdcdddccd")))
    assert any("not warm" in p for p in problems), problems
    # a bind mount of pyproject.toml counts as the step that reads it
    assert verify(run_of("version-bump", with_status(BIND, "cccd"))) == []
    assert "did not reach" in verify(run_of("version-bump", with_status(BIND, "cccc")))[0]
    no_meta = with_status(("[1/2] FROM docker.io/library/python:3.11", "[2/2] COPY annapurna ./annapurna"), "cd")
    assert "cannot reach" in verify(run_of("version-bump", no_meta))[0]


def test_binds_and_dependency_installs_are_told_apart() -> None:
    build = with_status(BIND, "cccd")
    assert [s.name for s in dependency_binds(build)] == [BIND[3]]
    from_stage = with_status(("[a 1/2] FROM docker.io/library/python:3.11",
                              "[a 2/2] RUN --mount=type=bind,from=meta,source=pyproject.toml,target=/p true"), "cd")
    assert dependency_binds(from_stage) == []
    assert dependency_install_reran(build)
    assert not dependency_install_reran(with_status(BIND, "cccc"))
    only_root = with_status(("[b 1/2] FROM docker.io/library/python:3.11", "[b 2/2] RUN poetry install --only-root"), "cd")
    assert not dependency_install_reran(only_root)


def test_bump_rows_say_whether_the_install_reran() -> None:
    reran = [run_of("version-bump", with_status(MULTI, "cccdddccd"), wall=w, downloads=d) for w, d in ((3.0, 14), (2.0, 0))]
    row = bump_row("06-cache-mounts", reran)
    assert (row.median_s, row.min_s, row.max_s, row.install_reran, row.runs) == (2.5, 2.0, 3.0, 2, 2)
    assert row.rebuilds_dependencies and row.max_downloads == 14
    kept = bump_row("fix", [run_of("version-bump", with_status(MULTI, "cccdcccdd"), downloads=0)])
    assert not kept.rebuilds_dependencies and kept.install_reran == 0 and kept.max_downloads == 0
    table = format_bump_table([row, kept])
    assert "2 of 2" in table and "0 of 1" in table and "0-14" in table
    with pytest.raises(InputError, match="no build"):
        bump_row("read back", [run_of("version-bump", None)])


@pytest.mark.engine
def test_a_version_bump_reinstalls_step_4s_dependencies(docker_client: Any, tmp_path: Path) -> None:
    """Step 4 copies pyproject.toml before the install: a bump re-runs `poetry install`, and is verified."""
    m = measure.measure_step("04", scenarios=["version-bump"], repeats=1, results_path=tmp_path / "r.jsonl",
                             log=None, display="none")
    (run,) = m.scenarios["version-bump"].runs
    assert run.build is not None and dependency_install_reran(run.build)
    assert verify(run) == []
    assert m.row()["version_bump_runs"] == 1 and m.row()["cold_runs"] == 0


def test_a_stage_of_ten_steps_or_more_is_read() -> None:
    """BuildKit pads the index ("[builder  1/10]"): those steps are steps, not internal vertices."""
    from basecamp.progress import parse_header

    step = parse_header(1, "[builder  9/10] COPY annapurna ./annapurna")
    assert (step.internal, step.stage, step.index, step.total, step.keyword) == (False, "builder", 9, 10, "COPY")
    alone = parse_header(2, "[ 3/12] RUN true")
    assert (alone.internal, alone.stage, alone.index) == (False, None, 3)


def test_kept_lines_drop_colour_and_blank_lines_and_keep_what_is_asked() -> None:
    from basecamp.versionbump import kept_lines

    out = "\x1b[2mResolved\x1b[0m 3\n\n  --no-root   Do not install\n  --no-directory  skip dirs\nother\n"
    assert kept_lines(out) == ("Resolved 3", "  --no-root   Do not install", "  --no-directory  skip dirs", "other")
    assert kept_lines(out, ("--no-directory",)) == ("  --no-directory  skip dirs",)
