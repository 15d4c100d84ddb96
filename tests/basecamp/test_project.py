"""Bring your own project: another Poetry project through the steps, kept apart from the repo's app."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from basecamp import config, measure, readback, results
from basecamp.errors import InputError
from basecamp.project import Project, default_project, example_project, use_project
from basecamp.projectlayout import Package
from basecamp.scratch import scratch_copy
from basecamp.steps import dockerfile

STEPS = sorted(p.stem for p in config.DOCKERFILES_DIR.glob("*.Dockerfile"))
#: "annapurna" as a word of an instruction; `annapurna-lab-poetry` ids and `org.annapurna.*` labels are not the app.
APP_WORD = re.compile(r"(?<![\w.-])annapurna(?![\w-])")


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated, locked example project per module (locking once with the pinned Poetry)."""
    root = tmp_path_factory.mktemp("byop") / "hello"
    example_project(root)
    return root


@pytest.fixture
def example(example_dir: Path, tmp_path: Path) -> Project:
    """A fresh copy of the example project for one test (tests may edit it)."""
    root = tmp_path / "hello"
    shutil.copytree(example_dir, root)
    return use_project(root)


def _instructions(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- reading a project ---------------------------------------------------------------------------


def test_the_example_project_is_read_from_its_pyproject(example: Project) -> None:
    assert example.name == "hello-svc"
    assert example.packages == ("hello_svc",)
    assert example.module == "hello_svc.main"
    assert example.code_file == "hello_svc/main.py"
    assert example.files == ("pyproject.toml", "poetry.lock", "README.md", "hello_svc")
    assert not example.has_dev_group and not example.is_default
    assert (example.port, example.health_path) == (8000, "/health")


def test_the_repo_itself_is_the_default_project() -> None:
    assert use_project(config.REPO_ROOT) is default_project()
    d = default_project()
    assert d.files == config.APP_FILES and d.is_default and d.name == "annapurna"
    assert d.image_tag("01", "measure") == "annapurna-lab/01-naive:measure", "the repo app's tags are unchanged"
    assert d.dockerfile("05") == dockerfile("05")


def test_a_folder_that_is_not_a_poetry_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nope'}: no such folder")):
        use_project(tmp_path / "nope")
    with pytest.raises(InputError, match=rf"{re.escape(str(tmp_path))} .*missing pyproject.toml, poetry.lock"):
        use_project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(InputError, match="missing poetry.lock .*poetry lock"):
        use_project(tmp_path)


def test_a_missing_package_or_module_is_named(example: Project) -> None:
    shutil.rmtree(example.root / "hello_svc")
    with pytest.raises(InputError, match=r"no package folder hello_svc/"):
        use_project(example.root)
    (example.root / "hello_svc").mkdir()
    (example.root / "hello_svc" / "__init__.py").write_text("")
    with pytest.raises(InputError, match=r"cannot tell how the app starts\. Tried: .*hello_svc/__main__\.py.*command="):
        use_project(example.root)
    with pytest.raises(InputError, match="module 'hello_svc.cli' not found"):
        use_project(example.root, module="hello_svc.cli")
    (example.root / "hello_svc" / "__main__.py").write_text("print('hi')\n")
    assert use_project(example.root).module == "hello_svc"
    assert use_project(example.root).code_file == "hello_svc/__main__.py"


def test_a_lock_that_does_not_match_pyproject_is_refused(example: Project) -> None:
    pyproject = example.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"six (==1.17.0)",', '"six (==1.17.0)", "idna (>=3)",'))
    with pytest.raises(InputError, match=r"cannot use this poetry.lock \(`poetry check --lock` failed.*lock --directory"):
        use_project(example.root)
    assert use_project(example.root, check_lock=False).name == "hello-svc"


def test_bad_settings_are_refused(example: Project) -> None:
    with pytest.raises(InputError, match="health_path 'health'"):
        use_project(example.root, health_path="health")
    with pytest.raises(InputError, match="port 0"):
        use_project(example.root, port=0)
    with pytest.raises(InputError, match="not both"):
        use_project(example.root, module="hello_svc.main", command=["python"])


def test_another_folder_named_like_the_app_is_kept_apart(example: Project) -> None:
    pyproject = example.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "hello-svc"', 'name = "annapurna"'))
    p = use_project(example.root, check_lock=False)
    assert p.name.startswith("annapurna-") and p.name != "annapurna"
    assert use_project(example.root, name="mine", check_lock=False).name == "mine"


# --- the step Dockerfiles, adapted -----------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_every_step_adapts_to_another_project(example: Project, step: str) -> None:
    original = dockerfile(step).read_text()
    derived = example.dockerfile(step)
    assert derived.parent == config.LAB_HOME / "projects" / "hello-svc" / "dockerfiles"
    text = derived.read_text()
    assert text.startswith("# Derived by the lab from dockerfiles/") and "'hello-svc'" in text.splitlines()[0]
    assert not [line for line in _instructions(text) if APP_WORD.search(line)], "no instruction names the app"
    assert len(_instructions(text)) == len(_instructions(original)), "same instructions, one package"
    copies = [line for line in _instructions(original) if "COPY annapurna" in line]
    assert len([line for line in _instructions(text) if "COPY hello_svc ./hello_svc" in line]) == len(copies)
    if "annapurna.main" in original:
        assert "hello_svc.main" in text
    assert "--without dev" not in "\n".join(_instructions(text)), "Poetry 2 refuses a group the project lacks"
    assert "\n".join(_instructions(original)).count("--without dev") == "\n".join(_instructions(text)).count("--only main")
    assert [line for line in original.splitlines() if line.startswith("#")] == \
        [line for line in text.splitlines()[1:] if line.startswith("#")], "comments kept verbatim"


def test_adapting_installs_main_only_and_copies_every_package(example: Project) -> None:
    from dataclasses import replace

    two = replace(example, layout=(Package("a", "a"), Package("b", "b")), extra_groups=("dev",), readme="README.rst")
    text = two.adapt("# Step 8\n# why\nCOPY annapurna ./annapurna\n# why\nRUN touch README.md && "
                     "poetry install --without dev\n# why\nENTRYPOINT [\"python\", \"-m\", \"annapurna.main\"]\n"
                     "# why\nRUN --mount=type=cache,id=annapurna-lab-poetry,target=/x true\n")
    lines = text.splitlines()
    assert "COPY a ./a" in lines and "COPY b ./b" in lines
    assert "RUN touch README.rst && poetry install --only main" in lines
    assert 'ENTRYPOINT ["python", "-m", "hello_svc.main"]' in lines
    assert "RUN --mount=type=cache,id=annapurna-lab-poetry,target=/x true" in lines, "cache ids are not the app"


def test_a_step_naming_the_app_otherwise_is_refused(example: Project) -> None:
    with pytest.raises(InputError, match=r"x.Dockerfile:3: `RUN python -m annapurna.cli` .*hello-svc"):
        example.adapt("# Step 8\n# why\nRUN python -m annapurna.cli\n", "x.Dockerfile")


# --- scratch copies, tags and results, kept apart ---------------------------------------------------


def test_a_scratch_copy_of_a_project_holds_its_files_and_edits_its_code(example: Project) -> None:
    s = scratch_copy("measure-01-naive", project=example)
    assert s.name == "hello-svc-measure-01-naive" and s.project == example
    assert s.files() == ["README.md", "hello_svc/__init__.py", "hello_svc/main.py", "poetry.lock", "pyproject.toml"]
    before = (example.root / "hello_svc" / "main.py").read_text()
    s.edit_code()
    assert (s.path / "hello_svc" / "main.py").read_text() != before
    assert (example.root / "hello_svc" / "main.py").read_text() == before, "the project itself is never edited"
    assert s.edits[0].startswith("hello_svc/main.py: BUILD_EDIT")
    with pytest.raises(InputError, match="not both"):
        scratch_copy("x", source=example.root, project=example)


def test_image_tags_carry_the_project(example: Project) -> None:
    assert example.image_tag("01", "measure") == "annapurna-lab/hello-svc-01-naive:measure"
    assert example.image_tag("6") == "annapurna-lab/hello-svc-06-cache-mounts:latest"


def _record(step: str, project: str, measurement: str, size: int, wall: float) -> None:
    results.record(results.Record(step=step, scenario="image", size_bytes=size, measurement=measurement,
                                  project=project))
    results.record(results.Record(step=step, scenario="cold", wall_s=wall, size_bytes=size, run=1,
                                  measurement=measurement, project=project))
    results.record(results.Record(step=step, scenario="done", measurement=measurement, project=project))


def test_results_summary_rows_are_kept_apart_per_project(example: Project) -> None:
    from basecamp.summary import summary_rows

    # an older record without a project is the repo app's
    results.record(results.Record(step="01-naive", scenario="image", size_bytes=1000, measurement="01@old"))
    results.record(results.Record(step="01-naive", scenario="cold", wall_s=9.0, run=1, measurement="01@old"))
    results.record(results.Record(step="01-naive", scenario="done", measurement="01@old"))
    _record("01-naive", "hello-svc", "01@hello", 500, 5.0)
    _record("06-cache-mounts", "hello-svc", "06@hello", 100, 4.0)
    mine = readback.latest_rows(project=example, scenarios=["cold"])
    assert [(r["step"], r["project"], r["size_bytes"]) for r in mine] == [
        ("01-naive", "hello-svc", 500), ("06-cache-mounts", "hello-svc", 100)]
    app = readback.latest_rows(scenarios=["cold"])
    assert [(r["step"], r["project"], r["size_bytes"]) for r in app] == [("01-naive", "annapurna", 1000)]
    assert readback.measured("06", scenarios=["cold"]) is None, "the repo app has no step 6 measurement"
    assert readback.measured("06", project=example) is None, "cold only: not step 6's whole protocol"
    assert readback.measured("06", project=example, scenarios=["cold"]) is not None
    assert readback.measured("01", project=example, scenarios=["cold"]).image.ref == "annapurna-lab/hello-svc-01-naive:measure"
    rows = summary_rows(["01", "06"], project=example, scenarios=["cold"])  # both measured: nothing is built
    assert [r["cold_median_s"] for r in rows] == [5.0, 4.0]
    assert len(results.load(project="hello-svc")) == 6 and len(results.load(project="annapurna")) == 3


def test_the_example_needs_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match="empty"):
        example_project(tmp_path)


# --- the real thing: build, measure and smoke-test the second app ----------------------------------


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_steps_measure_and_serve_a_second_project(docker_client, tmp_path: Path) -> None:
    """Steps 01 and 06 on hello_svc: cold + code change (01), cold + dependency change (06), one run each."""
    p = example_project(tmp_path / "hello")
    t0 = time.perf_counter()
    naive = measure.measure_step("01", project=p, scenarios=["cold", "code-change"], repeats=1)
    mounts = measure.measure_step("06", project=p, scenarios=["cold", "dependency-change"], repeats=1)
    print(f"measured in {time.perf_counter() - t0:.0f} s\n{naive.summary()}\n{mounts.summary()}")
    assert naive.project == mounts.project == "hello-svc"
    assert naive.image.ref == "annapurna-lab/hello-svc-01-naive:measure"
    labels = docker_client.images.get(mounts.image.ref).labels
    assert labels["org.annapurna.project"] == "hello-svc" and labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    assert not (p.root / "hello_svc" / "main.py").read_text().count("BUILD_EDIT"), "the project is never edited"

    from basecamp.summary import summary_rows

    # each step was measured in two scenarios: the summary reads those back, it builds nothing
    rows = {r["step"]: r for r in [*summary_rows(["01"], project=p, scenarios=["cold", "code-change"]),
                                   *summary_rows(["06"], project=p, scenarios=["cold", "dependency-change"])]}
    assert {r["project"] for r in rows.values()} == {"hello-svc"}
    assert rows["01-naive"]["size_bytes"] == naive.image.size_bytes
    assert rows["06-cache-mounts"]["size_bytes"] < rows["01-naive"]["size_bytes"] / 3, "slim + venv only"
    assert rows["01-naive"]["code_change_runs"] == 1 and rows["06-cache-mounts"]["dependency_change_runs"] == 1
    assert all(m != mounts.measurement for m in (r.measurement for r in results.load(project="annapurna")))

    from basecamp.steps import build_step

    again = build_step("06", scratch_copy("again", project=p), "again", target="runtime", display="none")
    assert again.tag == "annapurna-lab/hello-svc-06-cache-mounts:again" and not again.ran_steps, "all from the cache"

    for ref in (naive.image.ref, mounts.image.ref):
        smoke = p.smoke_test(ref)
        assert smoke.ok, f"{smoke.summary()}\n{smoke.logs}"
        assert '"ok"' in smoke.body


def test_measure_step_refuses_a_copy_of_another_project(example: Project) -> None:
    with pytest.raises(InputError, match="not a copy of project 'hello-svc'"):
        measure.measure_step("01", app=scratch_copy("other"), project=example)
