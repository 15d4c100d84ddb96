import subprocess
import sys

from basecamp import config
from basecamp.__main__ import main


def test_poetry_env_prints_shell_exports(capsys, monkeypatch) -> None:
    from basecamp import index

    monkeypatch.setattr(index, "poetry_env", lambda settings=None: {"POETRY_PYPI_MIRROR_URL": "https://mirror.invalid/simple/", "X": "a b"})
    monkeypatch.setattr(index, "index_settings", lambda: None)
    assert main(["poetry-env"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["export POETRY_PYPI_MIRROR_URL=https://mirror.invalid/simple/", "export X='a b'"]


def test_runs_with_only_the_standard_library() -> None:
    """./lab runs `python3 -m basecamp poetry-env` with the host's bare Python, before any install."""
    code = "import sys; sys.modules['docker'] = None; sys.modules['plotly'] = None; import basecamp.__main__"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=config.NOTEBOOKS_DIR)


def test_lab_script_help_lists_the_commands() -> None:
    out = subprocess.run(["bash", str(config.REPO_ROOT / "lab"), "help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("./lab start", "./lab test", "./lab prepare", "./lab clean"):
        assert cmd in out


def test_an_interrupted_command_exits_130_with_one_line(capsys, monkeypatch) -> None:
    import basecamp.__main__ as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "bench", interrupted)
    assert main(["bench", "--steps", "01"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted:") and "Traceback" not in err


def test_clean_dry_run_removes_nothing(capsys, monkeypatch) -> None:
    import importlib

    cleanup_mod = importlib.import_module("basecamp.cleanup")

    seen = {}

    def fake(include_bases=False, dry_run=False):
        seen["dry_run"] = dry_run
        return cleanup_mod.CleanupReport(images=["annapurna-lab/01-naive:measure"], dry_run=dry_run)

    monkeypatch.setattr(cleanup_mod, "cleanup", fake)
    assert main(["clean", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert seen == {"dry_run": True} and "would remove" in out and "annapurna-lab/01-naive:measure" in out
