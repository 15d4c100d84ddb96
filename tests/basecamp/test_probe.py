"""basecamp.probe: looking inside images without a shell."""

from __future__ import annotations

import pytest
from basecamp import config, probe


@pytest.mark.parametrize(("path", "expected"), [
    ("app/.venv/lib/python3.11/site-packages/pip", True),
    ("app/.venv/lib/python3.11/site-packages/pip-26.3.dist-info", True),
    ("usr/local/lib/python3.11/dist-packages/_distutils_hack", True),
    ("usr/local/lib/python3.11/site-packages/setuptools", True),
    ("app/.venv/lib/python3.11/site-packages/distutils-precedence.pth", False),
    ("app/.venv/bin/pip3.11", True),
    ("usr/local/bin/poetry", True),
    ("usr/share/python-wheels/pip-23.0.1-py3-none-any.whl", True),
    ("app/.venv/lib/python3.11/site-packages/pydantic", False),
    ("app/.venv/lib/python3.11/site-packages/pip/_internal/cli", False),
    ("app/.venv/bin/python", False),
])  # fmt: skip
def test_installers_are_recognised(path: str, expected: bool) -> None:
    assert probe._is_installer(path) is expected


def test_pyc_path_is_the_one_python_writes() -> None:
    import importlib.util

    assert probe._pyc_for("app/annapurna/main.py", "cpython-311") == "app/annapurna/__pycache__/main.cpython-311.pyc"
    assert importlib.util.cache_from_source("/x/main.py").endswith(f"__pycache__/main.{__import__('sys').implementation.cache_tag}.pyc")


@pytest.mark.engine
def test_image_files_lists_a_shell_less_image(docker_client) -> None:
    from basecamp import bases

    bases.ensure_distroless(progress=lambda msg: None)
    files = {f.path: f for f in probe.image_files(config.DISTROLESS_BASE)}
    assert files["usr/bin/python3.11"].kind == "file" and files["usr/bin/python3.11"].mode & 0o111
    assert files["usr/bin/python3"].kind == "symlink" and files["usr/bin/python3"].link == "python3.11"
    assert files["home/nonroot"].uid == 65532
    assert not any(p.endswith(("bin/sh", "bin/bash", "bin/dash")) for p in files)
