"""The workshop bundle for real (issue 18, part 1): a room with no network.

Builds a bundle here (`python -m basecamp bundle`), then, in a network namespace with no way out and its
own dockerd (tests/offline/offline_engine.py), on a fresh clone of this checkout:
- `./lab prepare --bundle FILE` installs Poetry and the lab's environment from the bundle's wheels and
  loads its bases into that engine;
- notebooks 00, 01 and 06 pass under nbval as `./lab test` runs them (tests/conftest.py loaded);
- nothing tried to reach another machine: the REJECT rules in the namespace counted no packet (the
  package index, its proxy, a registry, DNS), and the builds installed from the bundle's index
  (the recorded measurements say `package_index = "workshop bundle"`).

The bundle's size, the time to load it and the notebooks' time are printed and written to
.lab/results/offline-bundle.json. Slow (it builds steps 01, 05 and 06 from cold, offline): minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from basecamp import config
from offline_engine import OfflineNamespace

pytestmark = pytest.mark.engine

NOTEBOOKS = ("00_setup.ipynb", "01_naive.ipynb", "06_cache_mounts.ipynb")
TIMINGS_FILE = "offline-bundle.json"


def _needs() -> None:
    missing = [p for p in ("ip", "nsenter", "unshare", "iptables", "dockerd", "docker", "git")
               if not shutil.which(p) and not shutil.which(p, path="/usr/sbin:/sbin")]
    if os.geteuid() != 0 or missing:
        pytest.fail(f"the offline test needs root and {', '.join(missing) or 'nothing else'} "
                    "(it creates a network namespace and starts a second dockerd)")


def _clean_env(clone: Path, docker_host: str) -> dict[str, str]:
    """A learner's environment: no lab variables, no pip settings of this machine (its local wheel folders
    and index), the namespace's engine."""
    drop = ("ANNAPURNA_", "PIP_", "POETRY_", "UV_", "PYTHONPATH", "VIRTUAL_ENV", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(DOCKER_HOST=docker_host, PIP_CONFIG_FILE=os.devnull, ANNAPURNA_PROGRESS="plain",
               HOME=str(clone.parent / "home"))
    if os.environ.get("ANNAPURNA_BUILD_TIMES"):  # no setting: where this run's summary counts the builds' seconds
        env["ANNAPURNA_BUILD_TIMES"] = os.environ["ANNAPURNA_BUILD_TIMES"]
    return env


def test_prepare_from_a_bundle_and_run_00_01_06_with_no_network(tmp_path: Path, request) -> None:
    _needs()
    timings: dict[str, float] = {}
    bundle_file = tmp_path / "workshop-bundle.tar"
    t0 = time.perf_counter()
    made = subprocess.run([sys.executable, "-m", "basecamp", "bundle", "--out", str(bundle_file)], cwd=config.REPO_ROOT,
                          capture_output=True, text=True, timeout=3600, check=False)
    timings["./lab bundle"] = time.perf_counter() - t0
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    size = bundle_file.stat().st_size

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(config.REPO_ROOT), str(clone)], check=True, timeout=300)
    (tmp_path / "home").mkdir()
    with OfflineNamespace(config.LAB_HOME / "offline-engine") as ns:
        env = _clean_env(clone, ns.docker_host)
        t0 = time.perf_counter()
        prep = ns.run(["./lab", "prepare", "--bundle", str(bundle_file)], env=env, cwd=clone, timeout=1800)
        timings["./lab prepare --bundle"] = time.perf_counter() - t0
        assert prep.returncode == 0, f"prepare --bundle failed:\n{prep.stdout[-4000:]}\n{prep.stderr[-4000:]}"
        assert ns.rejected() == {"OUTPUT": 0, "FORWARD": 0, "DOCKER-USER": 0}, "prepare tried to reach the network"

        env["PYTHONPATH"] = os.pathsep.join([str(clone / "notebooks"), str(clone)])
        # one run per scenario: this test checks that the notebooks work from the bundle with no network; their
        # claims are measured with the default repeats on the host, in the same `./lab test`
        env["ANNAPURNA_REPEATS"] = "1"
        argv = [str(clone / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                "-q", "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg",
                *(f"notebooks/{nb}" for nb in NOTEBOOKS)]
        t0 = time.perf_counter()
        run = ns.run(argv, env=env, cwd=clone, timeout=5400)
        timings["notebooks 00, 01, 06"] = time.perf_counter() - t0
        rejected = ns.rejected()
        assert run.returncode == 0, (f"the notebooks failed offline (packets rejected: {rejected}):\n"
                                     f"{run.stdout[-8000:]}\n{run.stderr[-3000:]}")
        assert rejected == {"OUTPUT": 0, "FORWARD": 0, "DOCKER-USER": 0}, f"something tried to reach the network: {rejected}"

    records = [json.loads(line) for line in (clone / ".lab" / "results" / "results.jsonl").read_text().splitlines() if line.strip()]
    built = [r for r in records if r.get("wall_s") is not None]
    assert built and all(r.get("package_index") == "workshop bundle" for r in built), \
        "every measured build installed from the bundle's index"
    line = (f"workshop bundle: {size / 1e9:.2f} GB; " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            + "; no packet left the namespace")
    print(line)
    artifacts = getattr(request.config, "annapurna_artifacts", None)
    if artifacts is not None:
        artifacts.append(line)
    results = config.LAB_HOME / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / TIMINGS_FILE).write_text(json.dumps({"bundle_bytes": size, "timings_s": timings, "when": time.time()}, indent=1) + "\n")
