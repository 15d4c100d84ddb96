"""The `bc` facade the notebooks call: names stay what the notebooks expect, whatever was imported."""

from __future__ import annotations

import subprocess
import sys

from basecamp import config


def test_bc_build_and_cleanup_stay_functions_after_their_submodules_are_imported() -> None:
    """Importing basecamp.build (the plots do, via preflight) once turned `bc.build(...)` into
    "'module' object is not callable" in notebooks 07 and 11."""
    code = (
        "import basecamp as bc\n"
        "import basecamp.build, basecamp.cleanup, basecamp.plots\n"
        "assert callable(bc.build) and bc.build.__name__ == 'build', bc.build\n"
        "assert callable(bc.cleanup) and bc.cleanup.__name__ == 'cleanup', bc.cleanup\n"
        "import sys; assert sys.modules['basecamp.build'].__name__ == 'basecamp.build'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          env={"PYTHONPATH": str(config.NOTEBOOKS_DIR), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_exported_name_resolves() -> None:
    import basecamp

    missing = [name for name in basecamp.__all__ if not hasattr(basecamp, name)]
    assert missing == []


def test_tab_completion_lists_every_helper_and_no_machinery() -> None:
    """`dir(bc)` is what JupyterLab offers after `bc.`: every exported helper, and not `_EXPORTS` or `Any`."""
    import basecamp

    names = dir(basecamp)
    assert set(basecamp.__all__) <= set(names)
    assert {"measure_step", "plot_running", "build", "LabError"} <= set(names)
    assert not [name for name in names if name.startswith("_") or name in {"Any", "importlib", "sys", "types"}]
