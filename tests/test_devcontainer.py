"""The dev container (issue 18, part 2) is valid against the dev container specification, and does what the lab needs.

`.devcontainer/devcontainer.json` is JSONC (comments allowed, trailing commas not: the schema's
`allowComments` / `allowTrailingCommas`). Its comments are removed here, string-aware, and the rest is
validated with the `jsonschema` package against the specification's base schema, vendored in
tests/fixtures/devcontainer/ (SOURCE.md: where from, which commit). The base schema accepts any options
for a feature, so the Docker-in-Docker feature's options are checked against that feature's own
declaration, vendored beside it. A planted typo must fail each check.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from basecamp import config

DEVCONTAINER = config.REPO_ROOT / ".devcontainer" / "devcontainer.json"
FIXTURES = Path(__file__).parent / "fixtures" / "devcontainer"
SCHEMA = FIXTURES / "devContainer.base.schema.json"
DIND_FEATURE = FIXTURES / "docker-in-docker.devcontainer-feature.json"
DIND = "ghcr.io/devcontainers/features/docker-in-docker"


def strip_comments(text: str) -> str:
    """JSONC to JSON: drop // and /* */ comments outside strings; everything else (trailing commas too) stays."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("an unterminated /* comment")
            i = end + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def problems(text: str) -> list[str]:
    """Every way `text` (a devcontainer.json) breaks the specification or the feature's options; empty: valid."""
    try:
        data = json.loads(strip_comments(text))
    except ValueError as exc:
        return [f"not JSONC: {exc}"]
    schema = json.loads(SCHEMA.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    found = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
             for e in validator_cls(schema).iter_errors(data)]
    options = json.loads(DIND_FEATURE.read_text())["options"]
    for ref, given in (data.get("features") or {}).items():
        if ref.rsplit(":", 1)[0] != DIND:
            continue
        for name, value in given.items():
            declared = options.get(name)
            if declared is None:
                found.append(f"features/{ref}: no option {name!r} (the feature has {sorted(options)})")
            elif type(value).__name__ != {"boolean": "bool", "string": "str"}[declared["type"]]:
                found.append(f"features/{ref}/{name}: {value!r} is not a {declared['type']}")
            elif "enum" in declared and value not in declared["enum"]:
                found.append(f"features/{ref}/{name}: {value!r} is not one of {declared['enum']}")
    return found


def config_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(strip_comments(DEVCONTAINER.read_text()))
    return data


def test_the_vendored_schema_is_a_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["unevaluatedProperties"] is False  # an unknown top-level key is an error
    assert json.loads(DIND_FEATURE.read_text())["id"] == "docker-in-docker"


def test_the_dev_container_is_valid() -> None:
    assert problems(DEVCONTAINER.read_text()) == []


@pytest.mark.parametrize(("good", "typo"), [
    ('"postCreateCommand": "./lab prepare"', '"postCreateComand": "./lab prepare"'),
    ('"forwardPorts": [8888]', '"forwardPorts": ["jupyter"]'),
    ('"memory": "8gb"', '"memory": "8 GB"'),
    ('"waitFor": "postCreateCommand"', '"waitFor": "postCreate"'),
    ('"installDockerBuildx": true', '"installDockerBuildX": true'),
    ('"dockerDashComposeVersion": "none"', '"dockerDashComposeVersion": "v3"'),
    ('"storage": "32gb"\n', '"storage": "32gb",\n'),
], ids=["key", "port", "memory-unit", "enum", "feature-option", "feature-value", "trailing-comma"])
def test_a_planted_typo_fails_the_check(good: str, typo: str) -> None:
    text = DEVCONTAINER.read_text()
    assert good in text, f"devcontainer.json no longer has {good!r}: update this test"
    assert problems(text.replace(good, typo, 1)), f"the typo {typo!r} passed the check"


def test_comments_are_dropped_but_strings_are_kept() -> None:
    assert json.loads(strip_comments('{"a": "//x", /* c */ "b": "/*y*/" // z\n}')) == {"a": "//x", "b": "/*y*/"}


def test_it_runs_what_the_lab_needs() -> None:
    data = config_data()
    assert data["postCreateCommand"] == "./lab prepare"
    assert any(ref.rsplit(":", 1)[0] == DIND for ref in data["features"]), "the engine runs inside (Docker-in-Docker)"
    port = int(data["containerEnv"]["ANNAPURNA_JUPYTER_PORT"])
    assert port in data["forwardPorts"] and data["portsAttributes"][str(port)]["label"].startswith("JupyterLab")
    assert data["containerEnv"]["ANNAPURNA_JUPYTER_IP"] == "0.0.0.0"
    assert float(data["containerEnv"]["ANNAPURNA_ENGINE_WAIT"]) > 0, "post-create may begin before dockerd answers"
    floor = re.search(r'requires-python = ">=(\d+\.\d+)', (config.REPO_ROOT / "pyproject.toml").read_text())
    assert floor and f"python:3-{floor.group(1)}-bookworm" in data["image"], "the image's Python is the lab's floor"
    assert data["hostRequirements"]["cpus"] >= 2


def test_it_writes_down_no_package_index() -> None:
    from urllib.parse import urlsplit

    from basecamp import index

    text = DEVCONTAINER.read_text().lower()
    for setting in ("index-url", "index_url", "pip_index", "pypi_mirror", "extra-index"):
        assert setting not in text
    host = urlsplit(index.configured_index_url()).hostname or ""
    assert not host or host.lower() not in text, "the package index's host is in devcontainer.json"


def _bind_args(env: dict[str, str]) -> list[str]:
    """`lab`'s jupyter_bind_args, run alone in bash (3.2-compatible: no mapfile)."""
    lab = (config.REPO_ROOT / "lab").read_text()
    body = re.search(r"^jupyter_bind_args\(\) \{\n.*?^\}\n", lab, re.DOTALL | re.MULTILINE)
    assert body, "lab has no jupyter_bind_args function"
    script = body.group(0) + 'args=(--no-browser); jupyter_bind_args; printf "%s\\n" "${args[@]}"'
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout.splitlines()


def test_lab_start_listens_where_the_dev_container_forwards() -> None:
    assert _bind_args({}) == ["--no-browser"]  # unchanged by default: JupyterLab's own loopback and port
    data = config_data()
    assert _bind_args(data["containerEnv"]) == [
        "--no-browser", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888", "--ServerApp.port_retries=0"]


def test_jupyterlab_there_answers_a_forwarded_address_that_loopback_refuses(tmp_path: Path) -> None:
    """JupyterLab with `./lab start`'s arguments in the dev container answers a request whose Host header is not
    localhost (a hosted environment's forwarded address); on its loopback default it refuses it (403). Run in a
    private network namespace (only its own loopback), so 0.0.0.0 and port 8888 are that namespace's alone."""
    import os
    import shlex
    import shutil
    import sys

    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("needs root, unshare and ip: the server runs in a private network namespace")
    jupyter = Path(sys.executable).parent / "jupyter"
    dev = _bind_args(config_data()["containerEnv"])
    default = _bind_args({}) + ["--ServerApp.port=8888"]
    common = ["--allow-root", "--ServerApp.token=probe", f"--ServerApp.root_dir={tmp_path}"]
    script = f"""
ip link set lo up
ask() {{ {shlex.quote(sys.executable)} -c "$ASK" "$1" 2>/dev/null || echo 000; }}
serve() {{
  {shlex.quote(str(jupyter))} lab {' '.join(map(shlex.quote, common))} "$@" >>{shlex.quote(str(tmp_path / 'jupyter.log'))} 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do [ "$(ask 127.0.0.1:8888)" = 200 ] && break; sleep 0.5; done
  echo "$(ask 127.0.0.1:8888) $(ask workshop-8888.example.test)"
  kill $pid; wait $pid 2>/dev/null
}}
serve {' '.join(map(shlex.quote, default))}
serve {' '.join(map(shlex.quote, dev))}
"""
    ask = ("import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', 8888, timeout=5); "
           "c.request('GET', '/api/status?token=probe', headers={'Host': sys.argv[1]}); print(c.getresponse().status)")
    env = {**os.environ, "ASK": ask, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run(["unshare", "--net", "bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    log = (tmp_path / "jupyter.log").read_text(errors="replace")[-3000:] if (tmp_path / "jupyter.log").exists() else ""
    assert proc.stdout.split("\n")[:2] == ["200 403", "200 200"], proc.stdout + proc.stderr + log
