"""The stand-in bases' recipes: their Dockerfiles (dockerfiles/bases/), build ARGs and recipe hashes.

Each Dockerfile is a file, commented like the step Dockerfiles and linted with them by the tests. What
varies from machine to machine comes in as build ARGs (the slim image under the full and distroless
ones, the Poetry mirror plugin's version). One thing an ARG cannot do is leave an ENV out: the slim
recipe's `ENV LANG="C.UTF-8"` line is the one substitution (`slim_dockerfile`), which writes this
machine's index and trust-store variables into it.

A recipe hash covers everything a stand-in is made from, the Dockerfile's text included: a stand-in
whose hash differs from its image's label is rebuilt by the next `./lab prepare`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from basecamp import config
from basecamp.aptsources import DebianMirror, apt_sources, debian_mirror, host_apt_options
from basecamp.errors import InputError, LabError
from basecamp.index import IndexSettings, has_credentials, index_settings, redact

#: Bump when the recipe changes in a way the hashed texts below do not show.
RECIPE_VERSION = 1
#: Bump when the distroless recipe changes in a way its Dockerfile text does not show.
DISTROLESS_RECIPE_VERSION = 1
#: Where the image keeps the trust store (Debian's system bundle path).
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: The slim recipe's line that `slim_dockerfile` fills with this machine's ENV variables.
ENV_LINE = 'ENV LANG="C.UTF-8"'

SLIM_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")

#: dpkg keeps these out of the image on every later `apt-get install` too (as Debian's slim images do).
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/lib/python3*/EXTERNALLY-MANAGED
"""
#: No package caches left behind by apt (the docker-clean file of Debian's images).
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
"""


def recipe_path(kind: str) -> Path:
    """dockerfiles/bases/<kind>.Dockerfile ("slim", "full", "distroless")."""
    if kind not in ("slim", "full", "distroless"):
        raise InputError(f"kind must be 'full', 'slim' or 'distroless', not {kind!r}")
    return config.STANDIN_DOCKERFILES_DIR / f"{kind}.Dockerfile"


def recipe_text(kind: str) -> str:
    """The stand-in's Dockerfile, as the file says it."""
    try:
        return recipe_path(kind).read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"the stand-in recipe {recipe_path(kind)} cannot be read: {exc}") from exc


def listed_packages(text: str, command: str) -> tuple[str, ...]:
    """The packages a recipe lists after `command` (e.g. "apt-get download"): its continuation lines of names."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"&& {command} \\"), None)
    if start is None:
        raise LabError(f"no `{command} \\` line in the recipe")
    names: list[str] = []
    for line in lines[start + 1:]:
        words = line.strip().removesuffix("\\").split()
        if not words or words[0] == "&&" or not all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", w) for w in words):
            break
        names += words
    return tuple(names)


@dataclass(frozen=True)
class HostInputs:
    """Everything a stand-in takes from this machine; part of its recipe hash."""

    mirror: DebianMirror
    index: IndexSettings
    ca_bundle_sha256: str | None
    apt_options: dict[str, str]
    plugin_version: str


def suite_of(tag: str) -> str:
    """The Debian suite a python tag names: python:3.11-slim-bookworm → bookworm."""
    return tag.rsplit("-", 1)[-1]


def python_of(tag: str) -> str:
    """The Python version a python tag names: python:3.11-bookworm → 3.11."""
    return tag.split(":", 1)[1].split("-", 1)[0]


def host_inputs() -> HostInputs:
    """Read the mirror, index, trust store and apt options of this machine."""
    settings = index_settings()
    bundle = settings.ca_bundle
    return HostInputs(
        mirror=debian_mirror(apt_sources(), suite_of(config.SLIM_BASE)),
        index=settings,
        ca_bundle_sha256=hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle else None,
        apt_options=host_apt_options(),
        plugin_version=config.project_settings()["poetry-mirror-plugin"],
    )


def standin_env(settings: IndexSettings, ca_bundle: bool) -> dict[str, str]:
    """ENV a stand-in bakes in for the index and trust store; refuses an index URL with credentials."""
    if has_credentials(settings.url):
        raise InputError(
            f"The package index URL {redact(settings.url)} carries credentials; baking it into an image "
            "would publish them in its layers. Give the stand-in a URL without credentials "
            "(PIP_INDEX_URL), and pass secrets to builds as build secrets (`RUN --mount=type=secret`)."
        )
    env = {"LANG": "C.UTF-8"}
    if ca_bundle:
        env["SSL_CERT_FILE"] = IMAGE_CA_BUNDLE
        env["REQUESTS_CA_BUNDLE"] = IMAGE_CA_BUNDLE
    if not settings.is_default:
        env["PIP_INDEX_URL"] = settings.url
    if settings.needs_mirror:
        env["POETRY_PYPI_MIRROR_URL"] = settings.url
    return env


def apt_conf(options: dict[str, str]) -> str:
    """apt.conf lines for the inherited host options."""
    return "".join(f'{key} "{value}";\n' for key, value in sorted(options.items()))


def slim_dockerfile(inputs: HostInputs) -> str:
    """dockerfiles/bases/slim.Dockerfile with its one substitution: ENV_LINE becomes this machine's ENV."""
    env = standin_env(inputs.index, inputs.ca_bundle_sha256 is not None)
    text = recipe_text("slim")
    if text.splitlines().count(ENV_LINE) != 1:
        raise LabError(f"{recipe_path('slim')} must hold the line {ENV_LINE!r} exactly once (this machine's ENV)")
    env_lines = " \\\n    ".join(f"{k}={json.dumps(v)}" for k, v in env.items())
    return text.replace(f"\n{ENV_LINE}\n", f"\nENV {env_lines}\n", 1)


def slim_build_args(inputs: HostInputs) -> dict[str, str]:
    """The slim recipe's build ARGs: the mirror plugin's version ("" when the index needs no plugin)."""
    return {"MIRROR_PLUGIN_VERSION": inputs.plugin_version if inputs.index.needs_mirror else ""}


def full_dockerfile() -> str:
    """dockerfiles/bases/full.Dockerfile (build ARG SLIM_IMAGE: the slim stand-in's id)."""
    return recipe_text("full")


def full_packages() -> tuple[str, ...]:
    """What the full recipe installs on top of the slim one."""
    return listed_packages(full_dockerfile(), "apt-get install -y --no-install-recommends")


def distroless_dockerfile() -> str:
    """dockerfiles/bases/distroless.Dockerfile (build ARG SLIM_IMAGE: the slim base its apt downloads in)."""
    return recipe_text("distroless")


def distroless_packages() -> tuple[str, ...]:
    """The Debian packages the distroless recipe unpacks (and nothing else ends up in the image)."""
    return listed_packages(distroless_dockerfile(), "apt-get download")


def _digest(payload: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recipe_hash(kind: str, inputs: HostInputs) -> str:
    """A stable hash of everything a stand-in of this kind is made from (its Dockerfile's text included)."""
    if kind not in ("slim", "full"):
        raise InputError(f"kind must be 'full' or 'slim', not {kind!r}")
    slim = _digest({
        "version": RECIPE_VERSION, "tag": config.SLIM_BASE, "mirror": inputs.mirror.url, "suite": inputs.mirror.suite,
        "packages": list(SLIM_PACKAGES), "dockerfile": slim_dockerfile(inputs), "args": slim_build_args(inputs),
        "dpkg": DPKG_EXCLUDES, "apt": APT_CLEAN + apt_conf(inputs.apt_options), "ca": inputs.ca_bundle_sha256,
    })
    if kind == "slim":
        return slim
    return _digest({"slim": slim, "tag": config.FULL_BASE, "dockerfile": full_dockerfile()})


def distroless_recipe_hash(slim_id: str) -> str:
    """A stable hash of the distroless stand-in's recipe: its Dockerfile and the slim image it unpacks in."""
    return _digest({"version": DISTROLESS_RECIPE_VERSION, "slim": slim_id, "dockerfile": distroless_dockerfile()})
