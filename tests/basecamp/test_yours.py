"""Your own Dockerfile beside the steps: the verdict read from the file, the context, the rows it lands in."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from basecamp import config, readback, results, tables
from basecamp.dockerparse import parse
from basecamp.errors import InputError
from basecamp.project import Project
from basecamp.projectlayout import Package
from basecamp.scratch import context_copy
from basecamp.yours import dockerfile_verdict, is_own_key, measure_dockerfile, own_key

ALL = {"pinned-poetry", "main-only", "cache-cleaned", "deps-before-code", "multi-stage", "cache-mount", "non-root"}
#: What each step's Dockerfile applies, lesson by lesson (the series adds them one step at a time).
EXPECTED = {
    "01-naive": set(),
    "02-warming-up": {"pinned-poetry", "main-only"},
    "03-poetry-cache": {"pinned-poetry", "main-only", "cache-cleaned"},
    "03b-cache-deleted-later": {"pinned-poetry", "main-only"},
    "04-deps-before-code": {"pinned-poetry", "main-only", "cache-cleaned", "deps-before-code"},
    "05-multi-stage": ALL - {"cache-mount"},
    "06-cache-mounts": ALL,
    "08-uv": ALL,
    "09-hardened-runtime": ALL,
}


def test_every_step_is_expected() -> None:
    assert sorted(EXPECTED) == sorted(p.stem for p in config.DOCKERFILES_DIR.glob("*.Dockerfile"))


@pytest.mark.parametrize("step", sorted(EXPECTED))
def test_the_verdict_on_each_step(step: str) -> None:
    path = config.DOCKERFILES_DIR / f"{step}.Dockerfile"
    verdict = dockerfile_verdict(path)
    assert set(verdict.applied) == EXPECTED[step], verdict.lines()
    assert len(verdict.checks) == 7 and set(verdict.applied) | set(verdict.missing) == ALL
    lines = path.read_text().splitlines()
    for check in verdict.checks:
        if check.applied:  # the line it names is the line that shows it
            assert check.line is not None and lines[check.line - 1].strip() == check.text.splitlines()[0].strip()


def test_the_verdict_names_the_lines_that_show_it() -> None:
    six = dockerfile_verdict(config.DOCKERFILES_DIR / "06-cache-mounts.Dockerfile")
    assert six.check("cache-mount").text.startswith("RUN --mount=type=cache")
    assert six.check("non-root").text == "USER 10001:10001"
    assert six.check("multi-stage").text == "FROM python:3.11-slim-bookworm AS runtime"
    later = dockerfile_verdict(config.DOCKERFILES_DIR / "03b-cache-deleted-later.Dockerfile").check("cache-cleaned")
    assert later.text == "RUN rm -rf $POETRY_CACHE_DIR" and "later RUN" in later.note
    naive = dockerfile_verdict(config.DOCKERFILES_DIR / "01-naive.Dockerfile")
    assert naive.check("deps-before-code").text == "COPY . ." and naive.check("non-root").line is None
    assert "| BuildKit cache mount | 06 | **no** | — |" in naive.markdown()
    assert naive.lines().splitlines()[0] == "01-naive.Dockerfile: 0 of 7 lessons applied"


def verdict_of(text: str, **kw: Any) -> set[str]:
    return set(dockerfile_verdict("Dockerfile", text=textwrap.dedent(text), **kw).applied)


def test_a_hand_written_single_stage_dockerfile() -> None:
    assert verdict_of("""
        from python:3.12-slim
        env POETRY_VERSION=2.1.3
        run pip install "poetry==$POETRY_VERSION"
        workdir /app
        copy pyproject.toml poetry.lock ./
        # comment lines inside a continued instruction are dropped, as Docker drops them
        run poetry install \\
        # --with dev
            --only=main --no-root --no-interaction
        copy ./src/ ./src
        user root
        cmd ["python", "-m", "app"]
        """) == {"pinned-poetry", "main-only", "deps-before-code"}


def test_hand_written_variants_of_each_lesson() -> None:
    assert verdict_of("""
        FROM python:3.12 AS build
        RUN pip install poetry
        COPY . .
        RUN poetry install --without test,dev && poetry cache clear pypi --all
        FROM python:3.12 AS run
        USER 0
        """) == {"main-only", "cache-cleaned"}, "a full runtime, USER 0 is root, the code copied first"
    assert verdict_of("""
        FROM python:3.12 AS build
        RUN ["pip", "install", "poetry==2.1.3"]
        COPY pyproject.toml poetry.lock ./
        RUN --mount=type=cache,target=/root/.cache/pypoetry poetry install --only main,dev --no-root
        COPY app app
        FROM gcr.io/distroless/python3 AS run
        COPY --from=build /app /app
        USER nonroot:nonroot
        FROM build AS tested
        """, target="run") == ALL - {"main-only"}, "--only main,dev is not main only; target picks the stage"


def test_a_dockerfile_without_poetry_or_stages_is_read_plainly() -> None:
    verdict = dockerfile_verdict("x", text="FROM scratch\nCOPY app /app\n")
    assert verdict.applied == [] and verdict.check("pinned-poetry").note == "no Poetry install found"
    with pytest.raises(InputError, match="no FROM line"):
        dockerfile_verdict("x", text="RUN true\n")
    with pytest.raises(InputError, match="no stage named 'runtime'"):
        dockerfile_verdict("x", text="FROM a\n", target="runtime")
    with pytest.raises(InputError, match="no such Dockerfile"):
        dockerfile_verdict("/nowhere/Dockerfile")


def test_the_parser_keeps_line_numbers_flags_mounts_and_sources() -> None:
    df = parse("# top\nARG V=1\nFROM --platform=linux/amd64 base:1 AS b\n\nRUN --mount=type=cache,id=x,target=/c \\\n"
               "    --mount=type=secret,id=s echo hi\nCOPY --chown=1:1 ./a/ b.txt /dst/\nCOPY --from=b /x /y\n")
    assert [(i.line, i.keyword, i.stage) for i in df.instructions] == [
        (2, "ARG", -1), (3, "FROM", 0), (5, "RUN", 0), (7, "COPY", 0), (8, "COPY", 0)]
    run = df.instructions[2]
    assert [(m.type, m.target, m.id) for m in run.mounts] == [("cache", "/c", "x"), ("secret", "", "s")]
    assert run.args == "echo hi" and run.text.count("\n") == 1
    assert df.instructions[3].sources == ["a", "b.txt"] and df.instructions[4].sources is None
    assert [(s.base, s.name, s.line) for s in df.stages] == [("base:1", "b", 3)]


@pytest.mark.parametrize(("name", "key"), [("Dockerfile", "yours"), ("Dockerfile.prod", "yours-prod"),
                                            ("api.Dockerfile", "yours-api"), ("My Build", "yours-my-build")])
def test_the_key_comes_from_the_file_name(name: str, key: str) -> None:
    assert own_key(name) == key and is_own_key(key) and not is_own_key("01-naive")


def project_at(root: Path) -> Project:
    return Project(name="hello-svc", root=root, layout=(Package(source="hello_svc", name="hello_svc"),),
                   module="hello_svc.main", readme=None, command=("python", "-m", "hello_svc.main"))


def test_the_context_is_the_project_as_docker_build_sends_it(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for rel in ("pyproject.toml", "hello_svc/main.py", "notes/a.md", "notes/keep.md", ".venv/lib/x.py", "Dockerfile"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / ".dockerignore").write_text("# not the venv, not the notes but one\n.venv\nnotes\n!notes/keep.md\nDockerfile\n")
    app = context_copy("c", project_at(root), root / "Dockerfile")
    assert app.name == "hello-svc-c" and app.path.parent == config.SCRATCH_DIR
    assert app.files() == [".dockerignore", "Dockerfile", "hello_svc/main.py", "notes/keep.md", "pyproject.toml"]
    app.edit_code()
    assert "BUILD_EDIT" in (app.path / "hello_svc/main.py").read_text()
    assert "BUILD_EDIT" not in (root / "hello_svc/main.py").read_text(), "the project is never edited"


def _own_records(project: str, measurement: str, dockerfile: str, size: int, wall: float, ok: bool) -> None:
    common = {"step": "yours", "measurement": measurement, "project": project, "dockerfile": dockerfile}
    results.record(results.Record(scenario="image", size_bytes=size, **common))
    results.record(results.Record(scenario="cold", wall_s=wall, size_bytes=size, run=1, **common))
    results.record(results.Record(scenario="smoke", ok=ok, note="200 from /health", **common))
    results.record(results.Record(scenario="done", **common))


def test_your_dockerfile_lands_beside_the_steps(tmp_path: Path) -> None:
    from basecamp.summary import summary_rows

    mine = project_at(tmp_path)
    for step, size, wall in (("01-naive", 900, 9.0), ("06-cache-mounts", 200, 8.0)):
        common = {"step": step, "measurement": f"{step}@x", "project": "hello-svc"}
        results.record(results.Record(scenario="image", size_bytes=size, **common))
        results.record(results.Record(scenario="cold", wall_s=wall, run=1, **common))
        results.record(results.Record(scenario="done", **common))
    _own_records("hello-svc", "yours@1", "/p/Dockerfile", 400, 7.0, ok=True)
    rows = summary_rows(["01", "06", "yours"], project=mine, scenarios=["cold"])  # all recorded: nothing is built
    assert [(r["step"], r["label"], r["size_bytes"], r["smoke"]) for r in rows] == [
        ("01-naive", "01-naive", 900, ""), ("06-cache-mounts", "06-cache-mounts", 200, ""),
        ("yours", "your Dockerfile (Dockerfile)", 400, "ok")]
    assert rows[2]["cold_median_s"] == 7.0 and rows[2]["dockerfile"] == "/p/Dockerfile"
    assert [r["step"] for r in readback.latest_rows(project=mine, scenarios=["cold"])] == [
        "01-naive", "06-cache-mounts", "yours"]
    table = tables.format_table(rows)
    assert table.splitlines()[-1] == "yours: your Dockerfile (Dockerfile), smoke test ok"
    assert "\nyours " in table and readback.measured("yours", project=mine, scenarios=["cold"]).image.ref == \
        "annapurna-lab/hello-svc-yours:measure"
    assert readback.latest_rows(scenarios=["cold"]) == [], "the repo app's rows hold none of it"
    with pytest.raises(InputError, match="never measured for this project: measure it first"):
        summary_rows(["01", "yours-prod"], project=mine, scenarios=["cold"])


def test_measure_dockerfile_refuses_bad_input_before_building(tmp_path: Path) -> None:
    mine = project_at(tmp_path)
    with pytest.raises(InputError, match="no such Dockerfile"):
        measure_dockerfile(tmp_path / "Dockerfile", project=mine)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\n")
    with pytest.raises(InputError, match="start it with 'yours'"):
        measure_dockerfile(tmp_path / "Dockerfile", project=mine, name="01-naive")
    with pytest.raises(InputError, match="no stage named 'runtime'"):
        measure_dockerfile(tmp_path / "Dockerfile", project=mine, target="runtime")
    with pytest.raises(InputError, match="scenarios"):
        measure_dockerfile(tmp_path / "Dockerfile", project=mine, scenarios=["warm"])


# --- the real thing: one cold build of a learner's Dockerfile, and its smoke test ------------------

LEARNER_DOCKERFILE = f"""\
# A learner's first Dockerfile for hello_svc: one stage, dependencies before the code, no cache mount.
FROM python:3.11-slim-bookworm
RUN pip install poetry=={config.poetry_version()}
ENV POETRY_VIRTUALENVS_IN_PROJECT=1
WORKDIR /app
COPY pyproject.toml poetry.lock README.md ./
RUN poetry install --only main --no-root
COPY hello_svc ./hello_svc
RUN poetry install --only main
CMD ["poetry", "run", "python", "-m", "hello_svc.main"]
"""


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_measure_a_learners_dockerfile_beside_a_step(docker_client: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from basecamp.project import example_project
    from basecamp.summary import summary_rows

    monkeypatch.setattr(config, "RESULTS_FILE", tmp_path / "results.jsonl")  # the lab's results stay as they are
    p = example_project(tmp_path / "hello")
    (p.root / "Dockerfile").write_text(LEARNER_DOCKERFILE)
    (p.root / ".dockerignore").write_text(".venv\n")
    # a step row to stand beside (recorded, not built: the engine is shared)
    common = {"step": "01-naive", "measurement": "01@t", "project": p.name}
    results.record(results.Record(scenario="image", size_bytes=10**9, **common))
    results.record(results.Record(scenario="cold", wall_s=60.0, run=1, **common))
    results.record(results.Record(scenario="done", **common))
    m = measure_dockerfile(p.root / "Dockerfile", project=p, scenarios=["cold"], repeats=1, display="none")
    assert m.step == "yours" and m.smoke_ok is True and m.label == "your Dockerfile (Dockerfile)"
    assert m.image.ref == "annapurna-lab/hello-svc-yours:measure" and m.scenarios["cold"].runs[0].cached_steps == 0
    labels = docker_client.images.get(m.image.ref).labels
    assert labels["org.annapurna.project"] == "hello-svc" and labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    rows = summary_rows(["01", "yours"], project=p, scenarios=["cold"])
    assert [r["step"] for r in rows] == ["01-naive", "yours"]
    assert rows[1]["size_bytes"] == m.image.size_bytes and rows[1]["smoke"] == "ok" and rows[1]["cold_runs"] == 1
    assert {r.scenario for r in results.load("yours", project=p.name)} == {"image", "cold", "smoke", "done"}


def test_a_pip_requirements_install_before_the_code_counts_as_dependencies_first() -> None:
    text = ("FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt ./\n"
            "RUN pip install --no-cache-dir -r requirements.txt\nCOPY app ./app\nCMD [\"python\", \"-m\", \"app\"]\n")
    check = next(c for c in dockerfile_verdict("x", text=text).checks if c.key == "deps-before-code")
    assert check.applied and check.line == 4
    late = text.replace("COPY requirements.txt ./\n", "COPY . .\n")
    check = next(c for c in dockerfile_verdict("x", text=late).checks if c.key == "deps-before-code")
    assert not check.applied and check.line == 3, "the code came first: a code edit re-runs the install"


#: A real shape: Poetry only exports the requirements, pip installs them (the fixture's own Dockerfile, unchanged).
_EXPORTED = (Path(__file__).parents[1] / "fixtures" / "projects" / "fastapi-poetry-skeleton" / "Dockerfile").read_text()


def test_requirements_exported_by_poetry_and_installed_by_pip() -> None:
    """tests/fixtures/projects/fastapi-poetry-skeleton's Dockerfile, and variants of it."""
    verdict = dockerfile_verdict("x", text=_EXPORTED)
    main = verdict.check("main-only")
    assert main.applied and main.line == 14 and "(main + docker)" in main.note
    assert verdict.check("deps-before-code").applied, "`poetry.lock*` is a dependency file, not code"
    assert verdict.check("deps-before-code").line == 26
    cache = verdict.check("cache-cleaned")
    assert cache.applied and "--no-cache-dir" in cache.note and cache.line == 26
    assert not verdict.check("pinned-poetry").applied and not verdict.check("non-root").applied
    every_group = dockerfile_verdict("x", text=_EXPORTED.replace(" --without dev,test --with docker", ""))
    assert not every_group.check("main-only").applied
    assert "`poetry export` takes every group" in every_group.check("main-only").note
    cached = dockerfile_verdict("x", text=_EXPORTED.replace("--no-cache-dir ", ""))
    assert not cached.check("cache-cleaned").applied and "add --no-cache-dir" in cached.check("cache-cleaned").note
    env = dockerfile_verdict("x", text=_EXPORTED.replace("--no-cache-dir ", "").replace(
        "WORKDIR /code\n", "WORKDIR /code\nENV PIP_NO_CACHE_DIR=1\n"))
    assert env.check("cache-cleaned").applied
    code_glob = dockerfile_verdict("x", text=_EXPORTED.replace("./poetry.lock* /tmp/", "./*.py /tmp/"))
    assert code_glob.check("deps-before-code").line == 11, "a pattern that matches code copies code"
