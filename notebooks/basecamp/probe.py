"""Look inside an image by running a throwaway, labelled, network-less container.

`run_in_image` runs an exec-form command (no shell needed: it works in a distroless image when the
command names a program the image has); `image_files` lists an image's files without running
anything, from the tar stream of a created, never started container (`docker export`).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from basecamp import engine
from basecamp.containers import throwaway
from basecamp.errors import CommandError

#: What the workshop installs on the host and what must never reach an image of the app.
LAB_MODULES = ("basecamp", "jupyterlab", "ipywidgets", "plotly", "docker", "nbval")


@dataclass(frozen=True)
class ProbeResult:
    """A command's exit code and its combined output."""

    command: list[str]
    exit_code: int
    output: str


def run_in_image(ref: str, command: Sequence[str], *, timeout_s: float = 120) -> ProbeResult:
    """Run `command` (replacing the image's entrypoint) in a fresh container; always remove it."""
    cmd = list(command)
    with throwaway(ref, start=True, entrypoint=cmd[:1], command=cmd[1:], network_disabled=True) as container:
        status = container.wait(timeout=timeout_s)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ProbeResult(cmd, int(status.get("StatusCode", -1)), output)


def python_modules_in(ref: str, modules: Sequence[str] = LAB_MODULES, python: Sequence[str] = ("python",)) -> list[str]:
    """Which of `modules` the image's Python (`python`, e.g. ("poetry", "run", "python")) can import."""
    code = (
        "import importlib.util, json, sys; "
        f"print(json.dumps([m for m in {list(modules)!r} if importlib.util.find_spec(m)]))"
    )
    res = run_in_image(ref, [*python, "-c", code])
    if res.exit_code != 0:
        raise CommandError(res.command, res.exit_code, res.output, f"could not run Python in {ref}")
    return list(json.loads(res.output.strip().splitlines()[-1]))


@dataclass(frozen=True)
class ImageFile:
    """One entry of an image's file system, as `docker export` lists it (path without a leading "/")."""

    path: str
    size: int
    mode: int
    uid: int
    gid: int
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "other"
    link: str = ""


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    return "file" if member.isfile() else "other"


class _ChunkReader:
    """A file-like object over an iterator of byte chunks (what the docker SDK streams)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buf += chunk
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


def image_files(ref: str) -> list[ImageFile]:
    """Every file, folder and link in `ref`'s file system, read from `docker export` (nothing runs).

    Works for any image, with or without a shell. The throwaway container carries the lab label
    and is removed afterwards.
    """
    with throwaway(ref, network_disabled=True) as container, \
            tarfile.open(fileobj=_ChunkReader(iter(container.export())), mode="r|") as tar:  # type: ignore[call-overload]
        return [ImageFile(m.name.removeprefix("./"), m.size, m.mode, m.uid, m.gid, _kind(m), m.linkname) for m in tar]


#: Programs that would give a shell to whoever gets code execution in the container.
SHELLS = ("sh", "bash", "dash", "ash", "zsh", "busybox")
#: Installers an app does not need at run time (pip, setuptools, wheel, Poetry).
INSTALLERS = ("pip", "setuptools", "wheel", "poetry", "pkg_resources", "_distutils_hack")
_BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin")


@dataclass
class Hardening:
    """What an image offers an attacker, and whether its Python code is compiled (see `hardening`)."""

    ref: str
    #: The image's USER ("" = root), and the uid its `python` really runs as.
    config_user: str
    running_uid: int
    #: Shell programs in the file system (paths).
    shells: list[str]
    #: pip / setuptools / wheel / Poetry in any site-packages or bin folder, and bundled wheels.
    installers: list[str]
    #: The .py files of the app and its venv, and those without a compiled .pyc beside them.
    py_files: int
    uncompiled: list[str]

    @property
    def non_root(self) -> bool:
        return self.running_uid != 0 and self.config_user not in ("", "root", "0", "0:0")


def _is_installer(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    if name.endswith(".whl"):
        return True
    if len(parts) >= 2 and parts[-2] in ("site-packages", "dist-packages"):
        top = name.split("-", 1)[0].removesuffix(".py").removesuffix(".pth")
        return top in INSTALLERS
    return "/".join(parts[:-1]).endswith(_BIN_DIRS) and name.split("-", 1)[0].rstrip("0123456789.") in INSTALLERS


def _pyc_for(path: str, tag: str) -> str:
    folder, _, name = path.rpartition("/")
    return f"{folder}/__pycache__/{name.removesuffix('.py')}.{tag}.pyc"


def hardening(ref: str, *, python: str = "/app/.venv/bin/python", code: Sequence[str] = ("app/annapurna/", "app/.venv/lib/"),
              pyc_tag: str = "cpython-311") -> Hardening:
    """Check an image without a shell: its file list (`image_files`) and one exec-form `python` run.

    `code`: the path prefixes whose .py files must be compiled (the app and its venv by default).
    """
    files = image_files(ref)
    paths = {f.path for f in files}
    shells = sorted(f.path for f in files if f.path.rpartition("/")[0] in _BIN_DIRS
                    and f.path.rpartition("/")[2] in SHELLS)
    installers = sorted(p for p in paths if _is_installer(p))
    sources = sorted(p for p in paths if p.endswith(".py") and p.startswith(tuple(code)))
    uncompiled = [p for p in sources if _pyc_for(p, pyc_tag) not in paths]
    user = str(engine.client().images.get(ref).attrs.get("Config", {}).get("User") or "")
    res = run_in_image(ref, [python, "-c", "import os; print(os.getuid())"])
    if res.exit_code != 0:
        raise CommandError(res.command, res.exit_code, res.output, f"could not run {python} in {ref}")
    return Hardening(ref, user, int(res.output.strip().splitlines()[-1]), shells, installers, len(sources), uncompiled)
