from basecamp.checks import Check, _guard, report
from basecamp.errors import EngineError, LabError


def test_a_failed_check_prints_its_fix(capsys) -> None:
    ok = Check("engine", True, "Docker 20.10")
    bad = Check("disk", False, "1 GB free", "free some space")
    assert report([ok, bad]) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[OK] engine: Docker 20.10"
    assert out[1] == "[FAIL] disk: 1 GB free"
    assert out[2].strip() == "fix: free some space"
    assert report([ok]) is True


def test_a_lab_error_becomes_a_failed_check_not_a_traceback() -> None:
    def probe() -> Check:
        raise EngineError("no Docker engine answers at unix:///var/run/docker.sock\nmore detail")

    c = _guard("Docker engine", "start Docker", probe)
    assert not c.ok and c.detail.startswith("none answers at ") and c.fix == "start Docker"
    c = _guard("free disk", "start the engine first", probe)
    assert c.detail.startswith("needs the Docker engine, and none answers at ")

    def other() -> Check:
        raise LabError("poetry.lock is stale\nmore detail")

    c = _guard("Poetry", "run ./lab prepare", other)
    assert not c.ok and c.detail == "poetry.lock is stale" and c.fix == "run ./lab prepare"
