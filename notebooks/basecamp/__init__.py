"""basecamp: the lab's helpers, one namespace for the notebooks (`import basecamp as bc`).

Notebooks call `bc.build(...)`, `bc.inspect_image(...)`, `bc.smoke_test(...)`, `bc.plot_layers(...)`
so their prose stays prose. Names are imported on first use, so `python -m basecamp` and the
pure-Python parts work before the Docker SDK or plotly are installed.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from basecamp.errors import BuildError, CommandError, EngineError, InputError, LabError

_EXPORTS = {
    "REPO_ROOT": "config", "DOCKERFILES_DIR": "config", "FULL_BASE": "config", "SLIM_BASE": "config",
    "preflight": "preflight", "client": "engine", "ensure_engine": "engine", "buildkit_cli": "engine",
    "ensure_bases": "bases", "describe_bases": "bases", "ensure_distroless": "bases",
    "scratch_copy": "scratch", "Scratch": "scratch",
    "build": "build", "BuildResult": "build",
    "inspect_image": "images", "image_contains": "images", "ImageInfo": "images",
    "smoke_test": "smoke", "SmokeResult": "smoke",
    "record": "results", "load_results": "results", "Record": "results",
    "run_checks": "checks", "report": "checks", "verdict": "checks",
    "cleanup": "cleanup", "secret_demo": "buildsecrets",
    "plot_layers": "plots", "plot_rebuild": "plots", "plot_compare": "plots",
    "measure_step": "measure", "measured": "readback", "measure_or_reuse": "readback", "latest_rows": "readback", "format_table": "tables",
    "install_report": "installer", "claim": "article", "article_figure": "article",
    "say": "lesson", "command": "lesson", "check_prediction": "lesson", "show_code": "lesson",
    "ensure_measured": "summary", "summary_rows": "summary", "scratch_dependency": "summary",
    "article_table": "summary", "ratios_table": "summary", "beyond_table": "summary", "compare_widget": "summary",
    "fmt_bytes": "units", "fmt_seconds": "units",
    "dockerfile": "steps", "show_dockerfile": "steps", "base_of": "steps", "build_step": "steps",
    "image_tag": "steps", "describe_base": "steps", "show_diff": "steps", "previous_step": "steps",
    "run_in_image": "probe", "python_modules_in": "probe", "image_files": "probe", "hardening": "probe",
    "context_size": "context", "read_dockerignore": "context", "is_ignored": "context",
    "context_demo": "context", "record_context": "context", "show_dockerfile_path": "context",
    "ci_round": "cicache", "dance_round": "cicache", "try_build_flags": "cicache", "record_ci": "cicache",
    "image_forensics": "forensics", "step_forensics": "forensics", "latest_forensics": "forensics",
    "plot_forensics": "forensics", "ImageForensics": "forensics", "LayerReport": "forensics",
    "hadolint": "lint", "lint_dockerfiles": "lint", "Finding": "lint", "explain_rule": "lint",
    "uv_lock": "uvlock", "compare_locks": "uvlock", "install_step_seconds": "uvlock",
    "compare_steps": "uvlock", "format_comparison": "uvlock", "plot_comparison": "uvlock",
    "select_groups": "poetry", "relock": "scratch",
    "use_project": "project", "example_project": "project", "Project": "project",
    "measure_dockerfile": "yours", "dockerfile_verdict": "yours", "show_verdict": "yours",
    "DockerfileVerdict": "yours",
    "RunSpec": "running", "shipped": "running", "shell_form": "running", "measure_stop": "running", "measure_start": "running",
    "measure_health": "running", "least_privilege": "running", "reproducibility": "reproducible",
    "compare_images": "reproducible", "record_running": "running", "plot_running": "running", "engine_held": "running", "running_table": "summary",
}
_RENAMED = {"article_figure": "figure", "load_results": "load", "uv_lock": "lock", "compare_locks": "compare"}

# The facade's names: the errors, then every lazily imported helper of _EXPORTS.
__all__ = ["BuildError", "CommandError", "EngineError", "InputError", "LabError", *_EXPORTS]  # noqa: PLE0604


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'basecamp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"basecamp.{module}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """What tab completion offers after `bc.`: the facade's names, not the package's machinery."""
    return sorted(__all__)


class _Facade(types.ModuleType):
    """The package as the notebooks see it: `bc.build` and `bc.cleanup` stay the functions.

    Importing a submodule sets it as an attribute of its package, so once anything imported
    `basecamp.build` (the plots do), `bc.build(...)` would call the module and fail with
    "'module' object is not callable". An exported function wins over its own submodule here;
    `from basecamp.build import ...` and `sys.modules` still find the module.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade
