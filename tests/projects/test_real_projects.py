"""Real, public Poetry projects (tests/fixtures/projects/, see each ORIGIN.md) through the lab.

Unit tests (no engine): what `use_project` finds in each fixture (command, health candidates, groups,
layout), and which locked distributions only the project's non-main groups bring.
Engine tests: steps 01, 05 and 06 built cold once per fixture, each smoke-tested, and the runtime
images of 05 and 06 listed: none of them may hold a distribution that only a non-main group brings.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from basecamp import config, measure
from basecamp.errors import InputError
from basecamp.project import Project, use_project
from basecamp.units import fmt_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"


@dataclass(frozen=True)
class Fixture:
    """One stored project and the command a person runs it with (what the test passes as `command=`)."""

    name: str
    command: list[str] | None  # None: the lab finds it (basecamp.projectcommand)


#: Stored, and refused by the lab with a message that says what to do (see its ORIGIN.md).
REFUSED = "uvicorn-poetry-example"
REAL = [
    # src/ layout; its own script serves 127.0.0.1 with reload, so the container needs the uvicorn line
    Fixture("hypermodern-fastapi",
            command=["uvicorn", "wolt_summer_eng_assignment.__main__:app", "--host", "0.0.0.0", "--port", "8000"]),
    # an app factory in a sub-package, no script, no __main__: the command its own Dockerfile runs
    Fixture("picodi-fastapi-example",
            command=["uvicorn", "--factory", "picodi_app.api.main:create_app", "--host=0.0.0.0", "--port=8000"]),
    # groups dev, test and an optional docker group (gunicorn); code in src/app imported as `src.app`: found
    Fixture("fastapi-poetry-skeleton", command=None),
]
IDS = [f.name for f in REAL]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _main_requirements(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    """{name: [extras]} the project's main group asks for ([project].dependencies and [tool.poetry.dependencies])."""
    wanted: dict[str, list[str]] = {}
    for spec in pyproject.get("project", {}).get("dependencies", []):
        found = _REQ_NAME.match(spec)
        if found:
            extras = re.search(r"\[([^\]]*)\]", spec[found.end():].split(";")[0][:50])
            wanted[_norm(found.group(1))] = [e.strip() for e in extras.group(1).split(",")] if extras else []
    for name, spec in pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {}).items():
        if _norm(name) == "python":
            continue
        asked: list[str] = spec.get("extras", []) if isinstance(spec, dict) else []
        wanted.setdefault(_norm(name), []).extend(asked)
    return wanted


def non_main_only(root: Path) -> set[str]:
    """Locked distributions that only the non-main groups bring (normalized names).

    The main closure is walked through poetry.lock's dependency tables, extras included and markers
    ignored, so it is never smaller than what `--only main` installs: every name left out is safe to
    forbid in a runtime image.
    """
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    lock = tomllib.loads((root / "poetry.lock").read_text())
    packages = {_norm(p["name"]): p for p in lock["package"]}
    todo = list(_main_requirements(pyproject).items())
    main: set[str] = set()
    while todo:
        name, extras = todo.pop()
        entry = packages.get(name)
        if entry is None or (name in main and not extras):
            continue
        main.add(name)
        for dep, spec in entry.get("dependencies", {}).items():
            if isinstance(spec, dict) and spec.get("optional"):
                continue
            if isinstance(spec, list) and all(isinstance(s, dict) and s.get("optional") for s in spec):
                continue
            todo.append((_norm(dep), []))
        for extra in extras:
            for req in entry.get("extras", {}).get(extra, []):
                found = _REQ_NAME.match(req)
                if found:
                    todo.append((_norm(found.group(1)), []))
    return set(packages) - main


def optional_only(root: Path, groups: tuple[str, ...]) -> set[str]:
    """Locked distributions that only `groups` bring (lock-version 2.1 records each package's groups)."""
    lock = tomllib.loads((root / "poetry.lock").read_text())
    return {_norm(p["name"]) for p in lock["package"] if p.get("groups") and set(p["groups"]) <= set(groups)}


def _copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


# --- the fixtures themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [*IDS, REFUSED])
def test_each_fixture_is_stored_with_its_licence_and_origin(name: str) -> None:
    root = FIXTURES / name
    origin = (root / "ORIGIN.md").read_text()
    assert re.search(r"https://github\.com/[\w.-]+/[\w.-]+", origin), "ORIGIN.md names the repository"
    assert re.search(r"\b[0-9a-f]{40}\b", origin), "ORIGIN.md names the commit"
    assert "MIT" in (root / "LICENSE").read_text()
    assert not (root / "tests").exists(), "only what the build needs"
    if (root / "Dockerfile").exists():  # the project's own, kept as it was upstream to be read beside the steps
        assert "`Dockerfile`" in origin.split("**Removed:**")[0], "ORIGIN.md says the Dockerfile is upstream's"
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert size < 300_000, f"{name}: {size} bytes"


def test_picodi_own_dockerfile_is_read_without_building() -> None:
    """Its FROM (python:3.11-slim-bullseye) is not on the lab's engine and it copies CI-built dist/ files:
    the table shows the verdict read from the file instead of a measurement."""
    from basecamp.yours import dockerfile_verdict

    verdict = dockerfile_verdict(FIXTURES / "picodi-fastapi-example" / "Dockerfile")
    assert verdict.check("multi-stage").applied and verdict.check("non-root").applied
    assert not verdict.check("cache-mount").applied


def test_non_main_only_names_the_tools_and_never_what_main_needs() -> None:
    upe = non_main_only(FIXTURES / "uvicorn-poetry-example")
    assert {"pytest", "black", "coverage", "pytest-cov", "requests"} <= upe
    # uvicorn[standard] brings uvloop, httptools, watchfiles, websockets: main, though only through an extra
    assert not upe & {"fastapi", "uvicorn", "uvloop", "httptools", "watchfiles", "websockets", "pydantic", "anyio"}
    hyper = non_main_only(FIXTURES / "hypermodern-fastapi")
    assert {"sphinx", "flake8", "mypy", "pre-commit", "pytest", "furo"} <= hyper
    assert not hyper & {"fastapi", "uvicorn", "click", "arrow", "pydantic", "starlette", "python-dateutil", "six"}
    picodi = non_main_only(FIXTURES / "picodi-fastapi-example")
    assert {"mypy", "pre-commit", "pytest", "pytest-cov", "pytest-recording", "vcrpy"} <= picodi
    assert not picodi & {"picodi", "fastapi", "uvicorn", "httpx", "pydantic-settings", "redis", "starlette"}


# --- what detection finds (helper API: command, command_reason, health_paths, extra_groups) --------

DEFAULT_HEALTH = ("/health", "/healthz", "/", "/docs")


def test_uvicorn_example_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """Its code is in app/ but the project is named fast_api_multistage_build and declares no packages:
    Poetry itself cannot install the project (only --no-root works), so the lab refuses it and says how."""
    with pytest.raises(InputError) as refused:
        use_project(_copy(REFUSED, tmp_path))
    message = str(refused.value)
    assert "no package for project 'fast_api_multistage_build'" in message
    assert "packages = [{ include = " in message and "package-mode = false" in message


def test_hypermodern_is_a_src_layout_whose_script_is_found(tmp_path: Path) -> None:
    p = use_project(_copy(REAL[0].name, tmp_path))
    assert [(pkg.source, pkg.name) for pkg in p.layout] == [("src/wolt_summer_eng_assignment",
                                                               "wolt_summer_eng_assignment")]
    assert "src/wolt_summer_eng_assignment" in p.files, p.files
    # its app sits in __main__.py (not main.py / app.py), so the [tool.poetry.scripts] entry named like
    # the project wins; --no-root leaves no console wrapper, hence `python -c`
    script = "import sys; from wolt_summer_eng_assignment.__main__ import main; sys.exit(main())"
    assert p.command == ("python", "-c", script), p.command
    assert "[tool.poetry.scripts]" in p.command_reason and "wolt-summer-eng-assignment" in p.command_reason
    assert p.extra_groups == ("dev",)
    assert p.health_paths == DEFAULT_HEALTH
    mine = use_project(p.root, command=REAL[0].command)
    assert mine.command == tuple(REAL[0].command), "command= wins over detection"


def test_picodi_app_factory_cannot_be_guessed_and_is_given(tmp_path: Path) -> None:
    root = _copy(REAL[1].name, tmp_path)
    with pytest.raises(InputError) as unknown:
        use_project(root)
    message = str(unknown.value)
    assert "cannot tell how the app starts" in message and "picodi_app.main" in message and "command=" in message
    p = use_project(root, command=REAL[1].command)
    assert p.command == tuple(REAL[1].command) and "command=" in p.command_reason
    assert p.module == "picodi_app.api.main", "a code change edits the module the factory lives in"
    assert p.packages == ("picodi_app",) and p.extra_groups == ("dev",) and p.health_paths == DEFAULT_HEALTH


def test_skeleton_is_started_through_its_source_path_and_keeps_it(tmp_path: Path) -> None:
    """Its code imports itself as `src.app...` (upstream starts it with `uvicorn src.app.main:app` from the
    project folder), so the lab finds that command and every step keeps src/app at its path."""
    p = use_project(_copy(REAL[2].name, tmp_path))
    assert p.command == ("uvicorn", "src.app.main:app", "--host", "0.0.0.0", "--port", "8000"), p.command
    assert "src/app/main.py defines `app`" in p.command_reason and "uvicorn" in p.command_reason
    assert p.module == "src.app.main" and p.code_file == "src/app/main.py"
    assert [(pkg.source, pkg.name) for pkg in p.layout] == [("src/app", "app")]
    assert [pkg.source for pkg in p.kept_at_source] == ["src/app"]
    assert p.extra_groups == ("dev", "test", "docker") and p.optional_groups == ("docker",)
    for step in ("04", "05", "06"):
        lines = p.dockerfile(step).read_text().splitlines()
        assert "COPY src/app ./src/app" in lines, (step, lines)
        assert any("--only main" in line for line in lines if line.startswith("RUN"))
        assert "annapurna -> src/app;" in lines[0]
    naive = p.dockerfile("01").read_text().splitlines()[0]
    assert "installs every group (dev, test too; not the optional docker)" in naive, naive
    assert optional_only(p.root, p.optional_groups) == {"gunicorn"}
    skeleton = non_main_only(p.root)
    assert {"ruff", "pytest", "pytest-mock", "gunicorn", "pluggy"} <= skeleton
    assert not skeleton & {"fastapi", "uvicorn", "pydantic", "pydantic-settings", "starlette", "click", "h11"}


def test_skeleton_own_dockerfile_is_read_without_building() -> None:
    """FROM python:3.11-slim is not on the lab's engine: the verdict is read from the file."""
    from basecamp.yours import dockerfile_verdict

    verdict = dockerfile_verdict(FIXTURES / "fastapi-poetry-skeleton" / "Dockerfile")
    assert [c.key for c in verdict.checks if c.applied] == ["main-only", "cache-cleaned", "deps-before-code",
                                                             "multi-stage"]


# --- the real thing -------------------------------------------------------------------------------


def _distributions(docker_client, image: str, *, poetry_run: bool = False) -> set[str]:
    """The distribution names importable by the image's `python` (its venv), normalized. `poetry_run`: the
    app's interpreter is the venv Poetry made (step 01 runs `poetry run python ...`), not the `python` on PATH."""
    code = "import importlib.metadata as m; print('\\n'.join(sorted({d.metadata['Name'] for d in m.distributions()})))"
    out = docker_client.containers.run(image, entrypoint=[*(["poetry", "run"] if poetry_run else []), "python", "-c",
                                                          code], labels=config.made_labels(), remove=True,
                                       network_disabled=True)
    return {_norm(line) for line in out.decode().split() if line.strip()}


@pytest.mark.engine
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("fixture", REAL, ids=IDS)
def test_a_real_project_builds_serves_and_ships_main_only(docker_client, fixture: Fixture, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """Steps 01, 05, 06: one cold build each, a green smoke test, and (05, 06) no non-main distribution."""
    root = _copy(fixture.name, tmp_path)
    p: Project = use_project(root, command=fixture.command)
    forbidden = non_main_only(root)
    failures: list[str] = []
    for step in ("01", "05", "06"):
        m = measure.measure_step(step, project=p, scenarios=["cold"], repeats=1, display="none")
        smoke = p.smoke_test(m.image.ref)
        line = (f"{fixture.name} {m.step}: {fmt_bytes(m.image.size_bytes)}, cold "
                f"{m.scenarios['cold'].timing()}, smoke {'OK' if smoke.ok else 'FAILED'} ({smoke.summary()})")
        print(line)
        request.config.annapurna_artifacts.append(line)  # type: ignore[attr-defined]
        if not smoke.ok:
            failures.append(f"{step}: {smoke.summary()}\n{smoke.logs[-2000:]}")
        if step != "01":
            leaked = _distributions(docker_client, m.image.ref) & forbidden
            if leaked:
                failures.append(f"{step}: the runtime image holds non-main distributions {sorted(leaked)}")
        elif p.optional_groups:  # what its derived Dockerfile's note says: every group but the optional ones
            installed = _distributions(docker_client, m.image.ref, poetry_run=True)
            optional = optional_only(root, p.optional_groups)
            others = {_norm(n) for g, spec in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["poetry"]
                      ["group"].items() if g not in p.optional_groups for n in spec.get("dependencies", {})}
            if installed & optional or not others <= installed:
                failures.append(f"01 installs {sorted(installed & optional)} of the optional groups' own "
                                f"distributions and misses {sorted(others - installed)} of the other groups'")
    assert not failures, "\n".join(failures)
