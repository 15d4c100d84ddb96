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
