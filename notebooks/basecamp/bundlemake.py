"""Making the workshop bundle (`./lab bundle`): what the step builds install, downloaded; the bases saved; one tar.

The bundle's layout, and how a learner's machine uses it, are basecamp.bundle's; this module only writes it,
on a prepared machine with the network (`make_bundle`). Downloads go through this machine's own pip settings
and stay in bundle.work_dir(), so a second bundle downloads nothing again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from basecamp import config, process
from basecamp.bundle import (
    BASE_TAGS,
    IMAGES,
    MANIFEST,
    Manifest,
    assert_no_index_host,
    default_out,
    image_configs,
    manifest_for,
    normalize,
    rewrite_image_tar,
    run_docker,
    work_dir,
    write_simple_index,
)
from basecamp.errors import InputError, LabError
from basecamp.units import fmt_bytes

#: glibc of the bases' Debian (bookworm): the newest manylinux tag their wheels may carry.
GLIBC = (2, 36)
_PIP_PIN = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)")


# --- what the step builds install (engine-free) --------------------------------------------------------


def container_environment(python_version: str, arch: str) -> dict[str, str]:
    """PEP 508 marker values of the step builds' containers (Debian's CPython on Linux)."""
    return {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": arch,
            "python_version": python_version, "python_full_version": f"{python_version}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def _applies(markers: object, environment: dict[str, str] | None) -> bool:
    """A lock entry's `markers` (a string, or one per group) allow `environment` (None: every entry applies)."""
    if environment is None or not markers:
        return True
    from packaging.markers import Marker

    texts = list(markers.values()) if isinstance(markers, dict) else [markers]
    return any(Marker(str(t)).evaluate(environment) for t in texts)


def lock_pins(lock_text: str, environment: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(name, version) of every package a poetry.lock or uv.lock pins (all groups, a name twice when the lock
    pins two versions for different markers; the project itself, which has no index source in uv.lock, left
    out), only those whose markers allow `environment`."""
    import tomllib

    pins: list[tuple[str, str]] = []
    for pkg in tomllib.loads(lock_text).get("package", []):
        source = pkg.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source or "directory" in source):
            continue
        if "version" in pkg and _applies(pkg.get("markers"), environment):
            pins.append((normalize(str(pkg["name"])), str(pkg["version"])))
    return pins


def dockerfile_pins(texts: Iterable[str]) -> dict[str, str]:
    """{name: version} of the `name==version` arguments of every `pip install` in these Dockerfiles."""
    pins: dict[str, str] = {}
    for text in texts:
        joined = re.sub(r"\\\n", " ", text)
        for line in joined.splitlines():
            if line.lstrip().startswith("#") or "pip install" not in line:
                continue
            for name, version in _PIP_PIN.findall(line.split("pip install", 1)[1]):
                pins[normalize(name)] = version
    return pins


def spec_pin(spec: str) -> tuple[str, str]:
    """("inflection", "0.5.1") from Poetry's "inflection (==0.5.1)"."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*\(?\s*==\s*([^)\s]+)\s*\)?\s*", spec)
    if not match:
        raise InputError(f"{spec!r} is not an exact pin")
    return normalize(match.group(1)), match.group(2)


def manylinux_platforms(arch: str, glibc: tuple[int, int] = GLIBC) -> list[str]:
    """pip `--platform` values for a glibc Linux of this architecture, newest first (with the legacy aliases)."""
    tags = [f"manylinux_{glibc[0]}_{minor}_{arch}" for minor in range(glibc[1], 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{alias}_{arch}" for minor, alias in legacy.items() if minor <= glibc[1]]
    return tags


# --- making a bundle ---------------------------------------------------------------------------------


#: Platforms for the packages the containers never install but Poetry reads when it locks (pywin32,
#: colorama, appnope: markers of other systems): any one wheel of theirs gives Poetry their metadata.
FOREIGN_PLATFORMS = ("win_amd64", "macosx_11_0_arm64", "macosx_10_9_x86_64", "macosx_10_9_universal2")


def _pip_download(python: str | Path, dest: Path, requirements: list[str], *, deps: bool,
                  platform: tuple[str, str] | None = None, foreign: bool = False,
                  say: Callable[[str], None] = print) -> None:
    """`pip download` of exact pins into `dest` (wheels only), through the machine's own pip settings."""

    dest.mkdir(parents=True, exist_ok=True)
    argv = [str(python), "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
            "--dest", str(dest)]
    if not deps:
        argv.append("--no-deps")
    if foreign:  # metadata for Poetry's resolver only: other systems' wheels, other Pythons' releases
        argv.append("--ignore-requires-python")
    if platform is not None:
        version, arch = platform
        argv += ["--python-version", version, "--implementation", "cp",
                 "--abi", f"cp{version.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
        for tag in [*manylinux_platforms(arch), *(FOREIGN_PLATFORMS if foreign else ())]:
            argv += ["--platform", tag]
        argv += ["--platform", "any"]
    say(f"  pip download {len(requirements)} requirement(s) into {dest.relative_to(config.LAB_HOME.parent) if dest.is_relative_to(config.LAB_HOME.parent) else dest}")
    process.run([*argv, *requirements], timeout=3600, hint="the bundle downloads wheels through this machine's pip settings")


def installed_pins(python: str | Path, skip: Iterable[str] = ()) -> list[str]:
    """`name==version` of every distribution in that interpreter's environment (the ones in `skip` left out)."""

    code = ("import importlib.metadata as m, json; "
            "print(json.dumps(sorted({d.metadata['Name']: d.version for d in m.distributions()}.items())))")
    pairs = json.loads(process.run([str(python), "-c", code], timeout=120).stdout)
    skipped = {normalize(s) for s in skip}
    return [f"{n}=={v}" for n, v in pairs if normalize(n) not in skipped]


def notebook_dependencies(folder: Path | None = None) -> dict[str, str]:
    """{name: version} of the packages the notebooks add in a dependency change (`change_dependency("x (==1)")`)."""
    pins: dict[str, str] = {}
    for nb in sorted((folder or config.NOTEBOOKS_DIR).glob("*.ipynb")):
        for spec in re.findall(r'change_dependency\(\s*\\?"([^"\\]+)\\?"', nb.read_text()):
            with contextlib.suppress(InputError):
                name, version = spec_pin(spec)
                pins[name] = version
    return pins


def container_packages(dependency: str, environment: dict[str, str], scratch: Path | None = None) -> dict[str, str]:
    """{name: version} every step build may install in containers of `environment`: poetry.lock (all groups),
    the Dockerfiles' pins, the dependency change (`dependency`, scratch.DEPENDENCY), uv.lock pins of
    scratch copies, the mirror plugin."""
    pins = dict(lock_pins((config.REPO_ROOT / "poetry.lock").read_text(), environment))
    pins.update(dockerfile_pins(p.read_text() for p in sorted(config.DOCKERFILES_DIR.rglob("*Dockerfile*"))))
    name, version = spec_pin(dependency)
    pins[name] = version
    pins.update(notebook_dependencies())
    pins["poetry"] = config.poetry_version()
    pins["poetry-plugin-pypi-mirror"] = config.project_settings()["poetry-mirror-plugin"]
    for lock in sorted((scratch or config.SCRATCH_DIR).glob("*/uv.lock")):
        for n, v in lock_pins(lock.read_text(), environment):
            pins.setdefault(n, v)
    return pins


@dataclass
class BundleReport:
    path: Path
    manifest: Manifest
    seconds: dict[str, float]

    def lines(self) -> list[str]:

        m = self.manifest
        parts = {k: sum(e.size for e in m.entries if e.path.startswith(k)) for k in ("images/", "wheels/poetry/", "wheels/lab/", "index/")}
        out = [f"wrote {self.path}: {fmt_bytes(self.path.stat().st_size)} in {sum(self.seconds.values()):.0f} s",
               *(f"  {k:15} {fmt_bytes(v)}" for k, v in parts.items()),
               "  " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())]
        return out


def make_bundle(out: Path | None, *, dependency: str, python_version: str, index_url: str,
                say: Callable[[str], None] = print) -> BundleReport:
    """Write the workshop bundle (basecamp.bundle's docstring); returns where, what, and how long each part took.

    `dependency`: the package a dependency change adds (scratch.DEPENDENCY); `python_version`: the bases'
    Python ("3.11"), whose wheels the step builds' index holds; `index_url`: this machine's package index,
    scrubbed from the bases and never written into the bundle.
    """
    from basecamp import engine  # here, not above: it loads the docker SDK

    out = Path(out or default_out())
    seconds: dict[str, float] = {}
    stage = work_dir() / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    dk = engine.client()
    arch = str(dk.info().get("Architecture") or os.uname().machine)

    t0 = time.perf_counter()
    images = _save_bases(dk, stage, index_url.rstrip("/"), say)
    seconds["docker save"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _host_wheels(stage, say)
    seconds["host wheels"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _step_index(stage, dependency, python_version, arch, say)
    seconds["index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = manifest_for(stage, lab_commit=_commit(), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            host_platform=f"cp{sys.version_info[0]}{sys.version_info[1]} {sys.platform} {os.uname().machine}",
                            container_platform=f"cp{python_version.replace('.', '')} linux {arch}", images=images)
    _write_tar(stage, manifest, out, urlsplit(index_url).hostname)
    seconds["tar"] = time.perf_counter() - t0
    return BundleReport(out, manifest, seconds)


def _save_bases(dk: Any, stage: Path, url: str, say: Callable[[str], None]) -> list[str]:
    """`docker save` of the bases (and their stand-in aliases) into the stage, `url` scrubbed from their configs."""
    tags = [t for t in BASE_TAGS if _image_exists(dk, t)]
    missing = sorted(set(BASE_TAGS) - set(tags))
    if missing:
        raise LabError(f"the bases {', '.join(missing)} are not in the engine: run `./lab prepare` first")
    aliases = sorted({t for im in (dk.images.get(t) for t in tags) for t in im.tags
                      if t.startswith(f"{config.IMAGE_REPO_PREFIX}/standin:")} - set(tags))
    say(f"saving the bases: {', '.join(tags + aliases)}")
    raw = work_dir() / "bases-raw.tar"
    run_docker("save", "-o", str(raw), *tags, *aliases)
    (stage / "images").mkdir()
    rewrite_image_tar(raw, stage / IMAGES, drop_url=url)
    raw.unlink()
    return tags + aliases


def _host_wheels(stage: Path, say: Callable[[str], None]) -> None:
    """Wheels of Poetry's tools venv and of the lab's .venv, as installed (hard links from the download cache)."""
    poetry_bin = Path(os.environ.get("ANNAPURNA_POETRY") or config.LAB_HOME / "tools/poetry/bin/poetry")
    tools_python = poetry_bin.parent / "python"
    lab_python = config.REPO_ROOT / ".venv" / "bin" / "python"
    for name, python, skip in (("poetry", tools_python, ("pip", "setuptools", "wheel")),
                               ("lab", lab_python, ("annapurna", "pip", "setuptools", "wheel"))):
        say(f"wheels of the {name} environment ({python})")
        cache = work_dir() / "wheels" / name
        _pip_download(sys.executable, cache, installed_pins(python, skip), deps=False, say=say)
        dest = stage / "wheels" / name
        dest.mkdir(parents=True)
        for whl in cache.glob("*.whl"):
            os.link(whl, dest / whl.name)


def _step_index(stage: Path, dependency: str, py: str, arch: str, say: Callable[[str], None]) -> None:
    """The step builds' simple index: every pin for the containers' Python and architecture, Poetry's and uv's
    dependencies, and one wheel of each lock package of other systems (Poetry reads them when it relocks)."""
    pins = container_packages(dependency, container_environment(py, arch))
    cache = work_dir() / "index-files"
    say(f"the step builds' index: {len(pins)} pinned packages for cp{py.replace('.', '')} {arch}, with Poetry's and uv's dependencies")
    exact = [f"{n}=={v}" for n, v in sorted(pins.items()) if n not in ("poetry", "uv", "poetry-plugin-pypi-mirror")]
    tools = [f"{n}=={pins[n]}" for n in ("poetry", "poetry-plugin-pypi-mirror", "uv") if n in pins]
    _pip_download(sys.executable, cache, exact, deps=False, platform=(py, arch), say=say)
    _pip_download(sys.executable, cache, tools, deps=True, platform=(py, arch), say=say)
    every = lock_pins((config.REPO_ROOT / "poetry.lock").read_text())
    foreign = [f"{n}=={v}" for n, v in sorted(every) if pins.get(n) != v]
    if foreign:
        say(f"  and one wheel of each of {len(foreign)} packages other systems install (Poetry reads them when it locks)")
        _pip_download(sys.executable, cache, foreign, deps=False, platform=(py, arch), foreign=True, say=say)
    write_simple_index(sorted(cache.glob("*.whl")), stage / "index")


def _write_tar(stage: Path, manifest: Manifest, out: Path, host: str | None) -> None:
    """The stage as one tar, manifest first, after checking that nothing written names the index `host`."""
    (stage / MANIFEST).write_text(manifest.to_json())
    written = [(MANIFEST, (stage / MANIFEST).read_bytes())]
    written += [(str(p.relative_to(stage)), p.read_bytes()) for p in (stage / "index" / "simple").rglob("*.html")]
    written += [(f"{IMAGES}:{n}", d) for n, d in image_configs(stage / IMAGES)]
    assert_no_index_host(written, host)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        tar.add(stage / MANIFEST, MANIFEST)  # first: `unpack` reads it before anything else
        for entry in manifest.entries:
            tar.add(stage / entry.path, entry.path)
    partial.replace(out)
    shutil.rmtree(stage, ignore_errors=True)


def _image_exists(dk: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        dk.images.get(tag)
        return True
    except ImageNotFound:
        return False


def _commit() -> str:
    done = process.attempt(["git", "-C", str(config.REPO_ROOT), "rev-parse", "HEAD"], timeout=30)
    return done.stdout.strip() if done is not None and done.returncode == 0 else "unknown"
