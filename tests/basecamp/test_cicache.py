import pytest
from basecamp import cicache
from basecamp.scratch import scratch_copy


def test_flags_name_the_folder(tmp_path) -> None:
    assert cicache.cache_to_flags(tmp_path) == ["--cache-to", f"type=local,dest={tmp_path}"]
    assert cicache.cache_from_flags(tmp_path) == ["--cache-from", f"type=local,src={tmp_path}"]


def test_attempt_summary_shows_the_error_lines() -> None:
    a = cicache.Attempt(["docker", "build", "--cache-to", "x"], 125, "unknown flag: --cache-to\nSee 'docker build --help'.\n")
    assert a.summary().splitlines() == ["$ docker build --cache-to x", "-> exit 125", "unknown flag: --cache-to"]
    assert cicache.Attempt(["true"], 0, "").summary().endswith("-> ok")


def test_inject_without_a_tarball_says_what_is_missing(tmp_path) -> None:
    from basecamp.errors import LabError

    with pytest.raises(LabError, match="poetry-cache.tar does not exist"):
        cicache.inject_mount(tmp_path)


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_engine_has_no_cache_to_but_an_imported_inline_cache_works(docker_client) -> None:
    t = cicache.try_build_flags(["--cache-to", "type=local,dest=/tmp/x"], cicache.EXTRAS_DIR, cicache.EXTRACT_DOCKERFILE)
    assert not t.ok and "cache-to" in t.output
    plain, imported = cicache.ci_round(scratch_copy("test-ci"))
    assert plain.cached == 0 and plain.ran > 0
    assert imported.ran == 0 and imported.cached == plain.ran


def _result(tmp_path, *steps):
    from basecamp.build import BuildResult

    return BuildResult("t", "", tmp_path, tmp_path, "b", 1.0, list(steps), "", "now")


def _install_step(status: str, lines: list[str]):
    from basecamp.progress import Step

    return Step(3, "[builder 4/4] RUN poetry install", "builder", 4, 4, "RUN poetry install", False, status, 1.0, lines)


DEBUG = "[urllib3:urllib3.connectionpool] Starting new HTTPS connection (1): index:443"


def test_cold_problem_names_a_cached_layer_or_a_filled_mount(tmp_path) -> None:
    downloaded = ['[urllib3:urllib3.connectionpool] https://f:443 "GET /p/anyio-4.0-py3-none-any.whl HTTP/1.1" 200 1',
                  "  - Installing anyio (4.0)"]
    assert cicache.cold_problem(_result(tmp_path, _install_step("done", [DEBUG, *downloaded]))) == ""
    from_mount = _result(tmp_path, _install_step("done", [DEBUG, "  - Installing anyio (4.0)"]))
    assert "not empty: 1 packages" in cicache.cold_problem(from_mount)
    assert "layer cache" in cicache.cold_problem(_result(tmp_path, _install_step("cached", [])))


def test_attempt_that_went_on_still_shows_its_errors() -> None:
    out = "#4 importing cache manifest from type=local\n#4 ERROR: invalid reference format\n#9 DONE 0.1s\n"
    lines = cicache.Attempt(["docker", "build"], 0, out).summary().splitlines()
    assert lines[1].startswith("-> exit 0: the build went on")
    assert lines[2:] == ["ERROR: invalid reference format"]


def test_record_listing_waits_out_a_concurrent_disk_usage_call(monkeypatch) -> None:
    import docker.errors
    from basecamp import buildcache

    monkeypatch.setattr("time.sleep", lambda _s: None)

    class Busy:
        calls = 0

        def df(self):
            Busy.calls += 1
            if Busy.calls == 1:
                raise docker.errors.APIError("500 Server Error: a disk usage operation is already running")
            return {"BuildCache": [{"ID": "abc", "Type": "regular"}]}

    assert [r.id for r in buildcache.records(Busy())] == ["abc"]

    class Broken:
        def df(self):
            raise docker.errors.APIError("500 Server Error: something else")

    with pytest.raises(docker.errors.APIError, match="something else"):
        buildcache.records(Broken())
