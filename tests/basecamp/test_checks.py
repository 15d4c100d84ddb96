from basecamp.checks import Check, _guard, report
from basecamp.errors import EngineError


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
    assert not c.ok and c.detail == "no Docker engine answers at unix:///var/run/docker.sock" and c.fix == "start Docker"
