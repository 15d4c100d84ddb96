"""installer: downloads vs cache hits, read from Poetry's own output in real captured build logs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from basecamp import installer, progress
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.installer import (
    InstallReport,
    archive_name,
    install_report,
    parse_install,
)

DATA = Path(__file__).parent / "data" / "installer"
#: The app's runtime dependencies as locked when the logs were captured (fastapi, uvicorn and theirs).
LOCKED = [
    "annotated-doc", "annotated-types", "anyio", "click", "fastapi", "h11", "idna", "opentelemetry-api",
    "pydantic", "pydantic-core", "starlette", "typing-extensions", "typing-inspection", "uvicorn",
]


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def captured_build(name: str, tag: str = "annapurna-lab/test:captured") -> BuildResult:
    """A BuildResult around a captured BuildKit plain log, as `build()` would return it."""
    text = (DATA / name).read_text()
    parser = progress.parse_log(text)
    return BuildResult(tag=tag, image_id=parser.image_id or "", dockerfile=Path("Dockerfile"), context=Path("."),
                       builder="captured", wall_s=0.0, steps=parser.steps, log=text, started_at="")


@pytest.mark.parametrize("verbosity", ["default", "v", "vv"])
def test_below_vvv_a_download_and_a_cache_hit_print_the_same(verbosity) -> None:
    cold = parse_install(lines(f"poetry_install_{verbosity}_cold.txt"))  # empty cache: 14 downloads
    warm = parse_install(lines(f"poetry_install_{verbosity}_warm.txt"))  # full cache: none
    assert sorted(cold.installed) == sorted(warm.installed) == LOCKED
    assert cold.downloaded is cold.from_cache is warm.downloaded is None
    assert not cold.known and "-vvv" in cold.reason
    assert "downloads unknown" in cold.summary()


def test_at_vvv_downloads_are_the_archive_requests() -> None:
    cold = parse_install(lines("poetry_install_vvv_cold.txt"))
    assert sorted(cold.installed) == LOCKED
    assert sorted(cold.downloaded or []) == LOCKED and cold.from_cache == []
    assert "anyio-4.16.0-py3-none-any.whl" in cold.files and all(f.endswith(".whl") for f in cold.files)


def test_at_vvv_a_full_cache_downloads_nothing() -> None:
    warm = parse_install(lines("poetry_install_vvv_warm.txt"))
    assert warm.downloaded == [] and warm.files == []
    assert sorted(warm.from_cache or []) == LOCKED
    assert warm.summary() == "14 installed: 0 downloaded, 14 from Poetry's cache"


def test_index_pages_are_not_downloads() -> None:
    text = lines("poetry_install_vvv_warm.txt")
    assert any('"GET /simple/anyio/ HTTP/1.1" 200' in line for line in text), "pages are fetched even from cache"
    assert parse_install(text).downloaded == []


def test_step_5_cold_downloads_everything() -> None:
    report = install_report(captured_build("buildkit_05_cold.log"))
    assert sorted(report.installed) == LOCKED and sorted(report.downloaded or []) == LOCKED


def test_after_a_dependency_change_step_6_downloads_only_what_is_new() -> None:
    """The notebooks' claim, on real logs: same change (tabulate added), step 5 vs step 6."""
    five = install_report(captured_build("buildkit_05_dep_change.log"))
    six = install_report(captured_build("buildkit_06_dep_change.log"))
    assert sorted(five.installed) == sorted(six.installed) == sorted([*LOCKED, "tabulate"])
    assert sorted(five.downloaded or []) == sorted(five.installed) and five.from_cache == []
    assert six.downloaded == ["tabulate"] and six.files == ["tabulate-0.10.0-py3-none-any.whl"]
    assert sorted(six.from_cache or []) == LOCKED
    assert six.summary() == "15 installed: 1 downloaded (tabulate), 14 from Poetry's cache"


def test_two_install_steps_combine_and_cached_steps_add_nothing() -> None:
    cold = install_report(captured_build("buildkit_04_cold.log"))  # default verbosity, two installs
    assert sorted(cold.installed) == LOCKED and cold.downloaded is None
    code = captured_build("buildkit_04_code_change.log")  # the --no-root install came from the cache
    assert code.step_matching("--no-root").status == "cached"
    assert install_report(code) == InstallReport([], [], [], [])  # the project alone downloads nothing


def test_no_matching_step_names_the_steps() -> None:
    with pytest.raises(InputError, match=r"no step of annapurna-lab/test:captured contains 'pip wheel'.*WORKDIR /app"):
        install_report(captured_build("buildkit_04_cold.log"), "pip wheel")
    assert install_report(captured_build("buildkit_05_cold.log"), "POETRY INSTALL").known


def test_operation_lines() -> None:
    report = parse_install([
        "  - Installing Typing_Extensions (4.16.0)",
        "  - Updating anyio (4.15.0 -> 4.16.0)",
        "  - Downgrading idna (3.20 -> 3.19)",
        "  - Removing six (1.17.0)",
        "  - Installing h11 (0.16.0): Skipped for the following reason: Already installed",
        "\x1b[34;1m-\x1b[39;22m Installing click (8.5.1)",
        "Installing the current project: annapurna (0.1.0)",
        '[urllib3:urllib3.connectionpool] https://files.example:443 "GET /p/anyio-4.16.0-py3-none-any.whl HTTP/1.1" 200 1',
        '[urllib3:urllib3.connectionpool] https://files.example:443 "GET /p/idna-3.19.tar.gz?x=1 HTTP/1.1" 200 1',
        '[urllib3:urllib3.connectionpool] https://files.example:443 "GET /p/click-8.5.1-py3-none-any.whl HTTP/1.1" 404 1',
    ])
    assert report.installed == ["typing-extensions", "anyio", "idna", "click"]
    assert report.downloaded == ["anyio", "idna"] and report.files == ["anyio-4.16.0-py3-none-any.whl", "idna-3.19.tar.gz"]
    assert report.from_cache == ["typing-extensions", "click"]


def test_a_clipped_log_cannot_tell() -> None:
    text = lines("poetry_install_vvv_cold.txt")
    clipped = [*text[:150], "", "[output clipped, log limit 100KiB/s reached]"]
    report = parse_install(clipped)
    assert report.downloaded is None and report.from_cache is None and "clipped" in report.reason


@pytest.mark.parametrize(("filename", "name"), [
    ("pydantic_core-2.50.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "pydantic-core"),
    ("typing_extensions-4.16.0-py3-none-any.whl", "typing-extensions"),
    ("foo-1.0-1-py3-none-any.whl", "foo"),
    ("zope.interface-7.0.tar.gz", "zope-interface"),
    ("python-dateutil-2.9.0.post0.tar.gz", "python-dateutil"),
    ("Foo_Bar-2.0.zip", "foo-bar"),
    ("simple", None),
    ("foo-1.0.egg", None),
])
def test_archive_names(filename, name) -> None:
    assert archive_name(filename) == name


def test_combine_is_unknown_when_a_part_is() -> None:
    known = InstallReport(["a"], ["a"], [], ["a-1-py3-none-any.whl"])
    unknown = InstallReport(["b"], None, None, [], "why")
    assert installer.combine([known, unknown]) == InstallReport(["a", "b"], None, None, ["a-1-py3-none-any.whl"], "why")
    assert installer.combine([]) == InstallReport([], [], [], [])


@pytest.mark.engine
def test_step_6_cache_mount_persists_between_builds(docker_client) -> None:
    """Two builds of step 6's builder whose install re-runs (pyproject.toml gets a new comment):
    the second finds every archive in the cache mount and downloads nothing."""
    from basecamp.scratch import scratch_copy
    from basecamp.steps import build_step

    app = scratch_copy("test-installer")
    reports = []
    for _ in range(2):
        pyproject = app.path / "pyproject.toml"
        pyproject.write_text(pyproject.read_text() + f"# test_installer {uuid.uuid4().hex}\n")
        build = build_step("06", app, "test-installer", target="builder")
        assert build.step_matching("poetry install").status == "done"
        reports.append(install_report(build))
    first, second = reports
    assert first.known and second.known, "step 6 must install at -vvv so downloads can be counted"
    assert {"fastapi", "uvicorn"} <= set(second.installed)
    assert second.downloaded == [] and sorted(second.from_cache or []) == sorted(second.installed)


# --- uv sync (step 8)


def test_a_warm_uv_sync_downloads_only_what_is_new() -> None:
    lines = [
        "DEBUG Identified uncached distribution: inflection==0.5.1",
        "DEBUG Sending fresh GET request for: https://files.index.invalid/packages/aa/inflection-0.5.1-py2.py3-none-any.whl",
        "Prepared 1 package in 40ms",
        " + anyio==4.16.0",
        " + inflection==0.5.1",
    ]
    report = installer.parse_sync(lines)
    assert report.downloaded == ["inflection"] and report.from_cache == ["anyio"]


def test_without_v_downloads_are_unknown() -> None:
    report = installer.parse_sync(["Prepared 1 package in 40ms", " + anyio==4.16.0"])
    assert report.downloaded is None and "-v" in report.reason


def test_a_clipped_log_makes_downloads_unknown() -> None:
    report = installer.parse_sync(["DEBUG x", "[output clipped, log limit 2MiB reached]", " + anyio==4.16.0"])
    assert report.downloaded is None and "clipped" in report.reason
