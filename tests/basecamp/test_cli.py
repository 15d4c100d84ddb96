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
