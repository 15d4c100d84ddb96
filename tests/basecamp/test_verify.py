"""verify: what each scenario needs of a build's steps, read from fake builds (no engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from basecamp import verify as verifying
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.progress import parse_header
from basecamp.runs import SCENARIOS, Run
from basecamp.verify import copy_sources, verify

# --- helpers (test_versionbump uses them too) -----------------------------------------------------


def fake_build(*steps: tuple[str, str]) -> BuildResult:
    """A BuildResult whose steps are (name, status) pairs, e.g. ("[2/4] COPY . .", "done")."""
    parsed = []
    for vertex, (name, status) in enumerate(steps, start=1):
        step = parse_header(vertex, name)
        step.status = status  # type: ignore[assignment]
        parsed.append(step)
    return BuildResult("annapurna-lab/x:t", "sha256:abc", Path("Dockerfile"), Path("."), "fake", 1.0, parsed, "",
                       "2026-01-01T00:00:00+00:00")


def run_of(scenario: str, build: BuildResult | None = None, wall: float = 1.0, **kw: Any) -> Run:
    cached = len(build.cached_steps) if build else 0
    ran = len(build.ran_steps) if build else 0
    return Run(scenario, wall, cached, ran, kw.pop("downloads", None), "sha256:abc", build, **kw)


NAIVE = ("[1/4] FROM docker.io/library/python:3.11-bookworm", "[2/4] RUN pip install poetry",
         "[3/4] COPY . .", "[4/4] RUN poetry install")
MULTI = ("[builder 1/6] FROM docker.io/library/python:3.11-bookworm", "[builder 2/6] RUN pip install poetry==2.5.1",
         "[builder 3/6] WORKDIR /app", "[builder 4/6] COPY pyproject.toml poetry.lock ./",
         "[builder 5/6] RUN touch README.md", "[builder 6/6] RUN poetry install --without dev --no-root",
         "[runtime 1/3] FROM docker.io/library/python:3.11-slim-bookworm",
         "[runtime 2/3] COPY --from=builder /app/.venv /app/.venv", "[runtime 3/3] COPY annapurna ./annapurna")
#: A uv step whose install reads pyproject.toml through a bind mount, not a COPY.
UV_BIND = ("[1/4] FROM docker.io/library/python:3.11-slim-bookworm", "[2/4] RUN pip install uv",
           ("[3/4] RUN --mount=type=bind,source=pyproject.toml,target=pyproject.toml "
            "--mount=type=bind,source=uv.lock,target=uv.lock uv sync --no-install-project"),
           "[4/4] COPY annapurna ./annapurna")


def with_status(names: tuple[str, ...], statuses: str) -> BuildResult:
    """statuses: one letter per step, c(ached) or d(one)."""
    return fake_build(*[(n, "cached" if s == "c" else "done") for n, s in zip(names, statuses)])


# --- what the steps copy --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("[3/4] COPY . .", ["."]),
    ("[builder 4/6] COPY pyproject.toml poetry.lock ./", ["pyproject.toml", "poetry.lock"]),
    ("[runtime 3/3] COPY annapurna ./annapurna", ["annapurna"]),
    ("[2/3] COPY --chown=1000:1000 ./annapurna/ /app/annapurna", ["annapurna"]),
    ('[2/3] COPY ["pyproject.toml", "poetry.lock", "./"]', ["pyproject.toml", "poetry.lock"]),
    ("[runtime 2/3] COPY --from=builder /app/.venv /app/.venv", None),
    ("[2/4] RUN pip install poetry", None),
])
def test_copy_sources(name: str, expected: list[str] | None) -> None:
    assert copy_sources(parse_header(1, name)) == expected


def test_code_and_dependency_copies_are_found() -> None:
    multi = with_status(MULTI, "ddddddddd")
    assert [s.name for s in verifying.code_copies(multi)] == ["[runtime 3/3] COPY annapurna ./annapurna"]
    assert [s.name for s in verifying.dependency_copies(multi)] == ["[builder 4/6] COPY pyproject.toml poetry.lock ./"]
    naive = with_status(NAIVE, "dddd")
    assert verifying.code_copies(naive) == verifying.dependency_copies(naive) == [naive.steps[2]]


# --- verification ---------------------------------------------------------------------------------


def test_a_cold_run_must_run_every_step() -> None:
    assert verify(run_of("cold", with_status(NAIVE, "cddd"))) == [], "FROM steps do not count"
    (problem,) = verify(run_of("cold", with_status(NAIVE, "ccdd")))
    assert "took 1 step(s) from the layer cache" in problem and "pip install poetry" in problem
    (problem,) = verify(run_of("cold", with_status(NAIVE, "cddd"), from_cache=3))
    assert "3 package(s) from Poetry's cache" in problem
    (problem,) = verify(run_of("cold", with_status(NAIVE, "cddd"), foreign_cache_mounts=["abc: cached mount /x"]))
    assert "did not create" in problem and "abc" in problem


def test_a_code_change_must_rerun_the_code_copy_on_a_warm_cache() -> None:
    assert verify(run_of("code-change", with_status(NAIVE, "ccdd"))) == []
    (problem,) = verify(run_of("code-change", with_status(MULTI, "cccccccdd")))
    assert "not warm" in problem and "COPY --from=builder" in problem, "the venv copy comes before the code"
    assert verify(run_of("code-change", with_status(MULTI, "ccccccccd"))) == []
    (problem,) = verify(run_of("code-change", with_status(NAIVE, "cccc")))
    assert "COPY of the code did not re-run" in problem
    (problem,) = verify(run_of("code-change", with_status(NAIVE, "cddd")))
    assert "not warm" in problem and "pip install poetry" in problem
    (problem,) = verify(run_of("code-change", fake_build(("[1/2] FROM x", "cached"), ("[2/2] RUN true", "done"))))
    assert "no COPY of the app's code" in problem


def test_a_dependency_change_must_rerun_the_copy_and_the_install() -> None:
    assert verify(run_of("dependency-change", with_status(MULTI, "cccdddcdd"))) == []
    problems = verify(run_of("dependency-change", with_status(MULTI, "ccccccccd")))
    assert any("pyproject.toml / poetry.lock did not re-run" in p for p in problems)
    assert any("`poetry install` did not re-run" in p for p in problems)
    (problem,) = verify(run_of("dependency-change", with_status(MULTI, "cdcdddcdd")))
    assert "not warm" in problem and "pip install poetry" in problem


def test_a_version_bump_must_reach_the_build_through_a_copy_or_a_bind_mount() -> None:
    """The install may stay cached (that is the fix the scenario measures); the step reading pyproject.toml must run."""
    assert verify(run_of("version-bump", with_status(MULTI, "cccdcccdd"))) == [], "install cached: allowed"
    assert verify(run_of("version-bump", with_status(UV_BIND, "ccdd"))) == [], "a bind mount carries the bump"
    (problem,) = verify(run_of("version-bump", with_status(UV_BIND, "cccd")))
    assert "no step reading pyproject.toml re-ran" in problem and "uv sync" in problem
    (problem,) = verify(run_of("version-bump", with_status(UV_BIND, "cddd")))
    assert "not warm" in problem and "pip install uv" in problem
    (problem,) = verify(run_of("version-bump", with_status(NAIVE[:2], "cd")))
    assert "no COPY (or bind mount) of pyproject.toml" in problem


def test_unknown_scenarios_are_refused_and_every_protocol_scenario_is_checked() -> None:
    with pytest.raises(InputError, match="use one of cold, code-change, dependency-change, version-bump"):
        verify(run_of("warm", with_status(NAIVE, "cccc")))
    for scenario in SCENARIOS:  # none falls through to "unknown"
        verify(run_of(scenario, with_status(NAIVE, "cddd")))
    assert verify(run_of("code-change", None)) == [], "a run read back has no build to check"
