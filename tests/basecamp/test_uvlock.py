"""uvlock: uv.lock derived from poetry.lock's pins, and what `uv sync` did, read from real build logs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from basecamp import config, progress, uvlock
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.installer import install_report

DATA = Path(__file__).parent / "data" / "uv"
#: The app's runtime dependencies as locked when the log was captured.
LOCKED = [
    "annotated-doc", "annotated-types", "anyio", "click", "fastapi", "h11", "idna", "opentelemetry-api",
    "pydantic", "pydantic-core", "starlette", "typing-extensions", "typing-inspection", "uvicorn",
]

POETRY_LOCK = """
[[package]]
name = "Typing_Extensions"
version = "4.16.0"
groups = ["main", "lab"]

[[package]]
name = "black"
version = "25.1.0"
groups = ["dev"]
"""

UV_LOCK = """
version = 1

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "typing-extensions"
version = "4.15.0"
source = { registry = "https://index.invalid/simple" }
"""


def captured_build(name: str) -> BuildResult:
    text = (DATA / name).read_text()
    parser = progress.parse_log(text)
    return BuildResult(tag="annapurna-lab/test:captured", image_id=parser.image_id or "", dockerfile=Path("Dockerfile"),
                       context=Path("."), builder="captured", wall_s=0.0, steps=parser.steps, log=text, started_at="")


def test_pins_come_from_the_main_group_and_the_index_only() -> None:
    assert uvlock.poetry_pins(POETRY_LOCK) == {"typing-extensions": "4.16.0"}
    assert uvlock.uv_pins(UV_LOCK) == {"typing-extensions": "4.15.0"}


def test_a_version_that_differs_is_reported() -> None:
    cmp = uvlock.LockComparison(uvlock.poetry_pins(POETRY_LOCK), uvlock.uv_pins(UV_LOCK))
    assert cmp.mismatched == {"typing-extensions": ("4.16.0", "4.15.0")}
    assert cmp.summary().startswith("0 of 1 packages")


def test_constraints_block_is_replaced_not_duplicated() -> None:
    text = '[project]\nname = "x"\n'
    once = uvlock.with_constraints(text, {"a": "1.0"})
    twice = uvlock.with_constraints(once + "# a marker\n", {"a": "2.0", "b": "1"})
    assert twice.count("[tool.uv]") == 1 and '"a==2.0"' in twice and '"a==1.0"' not in twice
    assert "# a marker" in twice
    import tomllib

    assert tomllib.loads(twice)["tool"]["uv"]["constraint-dependencies"] == ["a==2.0", "b==1"]


def test_an_existing_uv_table_is_refused() -> None:
    with pytest.raises(InputError, match=r"\[tool.uv\]"):
        uvlock.with_constraints("[tool.uv]\nx = 1\n", {"a": "1"})


def test_only_a_copy_of_uv_lock_from_the_context_needs_one() -> None:
    assert uvlock.needs_uv_lock("COPY pyproject.toml uv.lock ./\n")
    assert not uvlock.needs_uv_lock("COPY --from=builder /app/uv.lock ./\n")
    assert not uvlock.needs_uv_lock("COPY pyproject.toml poetry.lock ./\n")
    assert uvlock.needs_uv_lock((config.DOCKERFILES_DIR / "08-uv.Dockerfile").read_text())
    assert not uvlock.needs_uv_lock((config.DOCKERFILES_DIR / "06-cache-mounts.Dockerfile").read_text())


def test_a_cold_uv_sync_downloads_every_package() -> None:
    build = captured_build("buildkit_09_cold.log")
    report = install_report(build)  # the installer's entry point finds the uv step by itself
    assert sorted(report.installed) == LOCKED
    assert report.downloaded is not None and sorted(report.downloaded) == LOCKED
    assert report.from_cache == []
    assert uvlock.install_step_seconds(build) == pytest.approx(3.4)


def test_comparison_table_has_ratios() -> None:
    rows = [uvlock.ComparisonRow("cold: install step", 10.0, 4.0, "9.0–11.0", "3.5–4.5"),
            uvlock.ComparisonRow("code-change: install step", None, None)]
    text = uvlock.format_comparison(rows)
    assert "0.40" in text and "10.0 (9.0–11.0)" in text
    assert rows[1].ratio is None


def test_the_uv_pin_is_the_lab_groups_uv() -> None:
    import tomllib

    lock = tomllib.loads((config.REPO_ROOT / "poetry.lock").read_text())
    locked = next(p["version"] for p in lock["package"] if p["name"] == "uv")
    pins = re.findall(r"uv==([0-9][^\s\"']*)", (config.DOCKERFILES_DIR / "08-uv.Dockerfile").read_text())
    assert pins == [locked]


def test_lock_derives_the_same_versions_as_poetry(tmp_path) -> None:
    """Needs the package index (as every relock does): uv resolves the app against it."""
    for name in ("pyproject.toml", "poetry.lock", "README.md"):
        shutil.copy(config.REPO_ROOT / name, tmp_path / name)
    result = uvlock.lock(tmp_path)
    assert not result.mismatched
    assert sorted(result.uv) == LOCKED == sorted(result.poetry)
    assert (tmp_path / "uv.lock").is_file()
