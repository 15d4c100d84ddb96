import subprocess
import sys
import uuid

import pytest
from basecamp import config
from basecamp.__main__ import main


def test_poetry_env_prints_shell_exports(capsys, monkeypatch) -> None:
    from basecamp import index

    monkeypatch.setattr(index, "poetry_env", lambda settings=None: {"POETRY_PYPI_MIRROR_URL": "https://mirror.invalid/simple/", "X": "a b"})
    monkeypatch.setattr(index, "index_settings", lambda: None)
    assert main(["poetry-env"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["export POETRY_PYPI_MIRROR_URL=https://mirror.invalid/simple/", "export X='a b'"]


#: Run before `python -m basecamp poetry-env`: any top-level import outside the standard library, pip (which the
#: host's Python has, and whose default index the command reads) and basecamp itself fails, as on a bare host.
_BARE_HOST = """
import importlib.abc, runpy, sys
class Bare(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("pip", "basecamp", "_distutils_hack"):
            return None
        raise ModuleNotFoundError(f"{name} is not on a bare host", name=name)
sys.meta_path.insert(0, Bare())
sys.argv = ["basecamp", "poetry-env"]
runpy.run_module("basecamp", run_name="__main__", alter_sys=True)
"""


def test_poetry_env_runs_with_only_the_standard_library() -> None:
    """./lab runs `python3 -m basecamp poetry-env` with the host's bare Python, before any install."""
    done = subprocess.run([sys.executable, "-c", _BARE_HOST], check=False, capture_output=True, text=True, cwd=config.NOTEBOOKS_DIR)
    assert done.returncode == 0, done.stderr
    assert all(line.startswith("export ") for line in done.stdout.splitlines()), done.stdout


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


@pytest.mark.engine
def test_clean_dry_run_lists_the_labs_container_and_removes_nothing(capsys, docker_client) -> None:
    """The real command on the real engine: a container with the made label is listed and still there after."""
    name = f"annapurna-test-dry-run-{uuid.uuid4().hex[:8]}"
    base = next(t for img in docker_client.images.list() for t in img.tags if t.startswith("python:3.11-slim"))
    container = docker_client.containers.create(base, command=["true"], name=name, labels=config.made_labels())
    try:
        assert main(["clean", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "would remove" in out and name in out, out
        assert docker_client.containers.get(container.id).name == name
    finally:
        container.remove(force=True)
