"""Make sure the two base images the step Dockerfiles name exist locally.

Present → kept. Else `docker pull`. Else a stand-in is built from Debian packages: debootstrap a
minimal bookworm with Python 3.11 + pip (the slim one), then add build tools and -dev libraries on
top of it (the full one). Both then run the step Dockerfiles unchanged, with one interpreter path.
The Debian mirror comes from this machine's apt sources, the package index from pip's settings.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from . import bundle, config, process
from .engine import (
    apt_install,
    client,
    find_program,
    is_debian_like,
    is_root,
    locked,
    run,
)
from .errors import BuildError, CommandError, EngineError, InputError, LabError
from .index import IndexSettings, has_credentials, index_settings, redact

BASES_DIR = config.LAB_HOME / "bases"
#: Bump when the recipe changes in a way the hashed texts below do not show.
RECIPE_VERSION = 1
RECIPE_LABEL = "org.annapurna.standin-recipe"
DESCRIPTION_LABEL = "org.opencontainers.image.description"
#: Every stand-in is also tagged here, so a stand-in is findable even when the real tag is not its own.
STANDIN_REPO = f"{config.IMAGE_REPO_PREFIX}/standin"

#: Where the image keeps the trust store (Debian's system bundle path).
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

SLIM_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
#: Roughly buildpack-deps (curl + scm + the usual -dev libraries), without the heavy imaging stack.
FULL_PACKAGES = (
    "build-essential", "python3-dev", "pkg-config", "autoconf", "automake", "libtool",
    "git", "curl", "wget", "gnupg", "openssh-client", "netbase", "procps", "unzip", "xz-utils", "bzip2", "file",
    "libffi-dev", "libssl-dev", "zlib1g-dev", "libbz2-dev", "libreadline-dev", "libsqlite3-dev",
    "liblzma-dev", "libncurses-dev", "libgdbm-dev", "libdb-dev", "libexpat1-dev", "uuid-dev",
    "libxml2-dev", "libxslt1-dev", "libyaml-dev", "libpq-dev", "libjpeg-dev", "libpng-dev",
    "libcurl4-openssl-dev", "libgmp-dev", "libkrb5-dev",
)  # fmt: skip

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
#: Host apt options a stand-in inherits (a snapshot mirror needs the date checks off, for instance).
INHERITED_APT_OPTIONS = ("Acquire::Check-Valid-Until", "Acquire::Check-Date")


@dataclass
class BaseImage:
    """One base image as the lab found or made it."""

    tag: str
    kind: str  # "full" | "slim"
    source: str  # "present" | "pulled" | "stand-in built" | "stand-in present" (describe: also "stand-in outdated", "missing")
    is_standin: bool
    size_bytes: int
    seconds: float


# --- apt sources ----------------------------------------------------------------------------------


@dataclass
class AptSource:
    """One apt source entry (either file format)."""

    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    options: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 `.sources` file (stanzas separated by blank lines, `#` comments)."""
    entries: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and last:
                fields[last] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip().lower()
                fields[last] = value.strip()
        if not fields.get("uris"):
            continue
        known = {"types", "uris", "suites", "components", "enabled"}
        entries.append(
            AptSource(
                types=fields.get("types", "").split(),
                uris=fields.get("uris", "").split(),
                suites=fields.get("suites", "").split(),
                components=fields.get("components", "").split(),
                options={k: v for k, v in fields.items() if k not in known},
                enabled=fields.get("enabled", "yes").lower() not in ("no", "false", "0"),
            )
        )
    return entries


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line `sources.list` (`deb [opts] uri suite comp...`)."""
    entries: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options: dict[str, str] = {}
        match = re.match(r"^(\S+)\s+\[([^\]]*)\]\s+(.*)$", line)
        if match:
            kind, opts, rest = match.groups()
            for opt in opts.split():
                key, _, value = opt.partition("=")
                options[key.lower()] = value
        else:
            kind, _, rest = line.partition(" ")
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        entries.append(AptSource(types=[kind], uris=[words[0]], suites=[words[1]], components=words[2:], options=options))
    return entries


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every enabled apt source of this machine, from both file formats."""
    entries: list[AptSource] = []
    files = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            entries += parse_one_line(path.read_text(errors="replace"))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        entries += parse_deb822(path.read_text(errors="replace"))
    return [e for e in entries if e.enabled]


DEBIAN_SUITES = {
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable",
}  # fmt: skip


@dataclass(frozen=True)
class DebianMirror:
    """A Debian archive URL and the suite to bootstrap from it."""

    url: str
    suite: str


def debian_mirror(sources: Iterable[AptSource], suite: str) -> DebianMirror:
    """The host's Debian archive (an entry with a plain Debian release suite), to bootstrap `suite` from."""
    ranked: list[tuple[int, str]] = []
    for entry in sources:
        if "deb" not in entry.types or "main" not in entry.components:
            continue
        for uri in entry.uris:
            if not uri.startswith(("http://", "https://")):
                continue
            if suite in entry.suites:
                ranked.append((0, uri))
            elif set(entry.suites) & DEBIAN_SUITES:
                ranked.append((1, uri))
    if not ranked:
        raise LabError(
            f"No Debian archive in this machine's apt sources (/etc/apt/sources.list, "
            f"/etc/apt/sources.list.d/): cannot bootstrap Debian {suite} for a stand-in base. "
            "Pull the real images instead (`docker pull " + config.SLIM_BASE + "`)."
        )
    return DebianMirror(url=min(ranked)[1].rstrip("/"), suite=suite)


def parse_apt_config_dump(text: str, names: Iterable[str] = INHERITED_APT_OPTIONS) -> dict[str, str]:
    """The given options from `apt-config dump` output (`Name "value";` lines)."""
    wanted = set(names)
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r'^(\S+)\s+"(.*)";$', line.strip())
        if match and match.group(1) in wanted:
            options[match.group(1)] = match.group(2)
    return options


def host_apt_options(names: Iterable[str] = INHERITED_APT_OPTIONS) -> dict[str, str]:
    """The given apt options as `apt-config dump` reports them on this machine (empty without apt)."""
    proc = process.attempt(["apt-config", "dump"], timeout=30)
    if proc is None:
        return {}
    return parse_apt_config_dump(proc.stdout, names)


# --- the recipe -----------------------------------------------------------------------------------


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
    """The Dockerfile that turns the bootstrapped root file system (rootfs.tar) into the slim stand-in."""
    env = standin_env(inputs.index, inputs.ca_bundle_sha256 is not None)
    env_lines = " \\\n    ".join(f"{k}={json.dumps(v)}" for k, v in env.items())
    plugin = ""
    if inputs.index.needs_mirror:
        plugin = f" \\\n    && pip install --no-cache-dir --no-deps poetry-plugin-pypi-mirror=={inputs.plugin_version}"
    return (
        "# The slim stand-in: Debian's own root file system (debootstrap minbase with python3 and venv),\n"
        "# made on this machine because no registry answers.\n"
        "FROM scratch\n"
        "# The bootstrapped and trimmed root file system, unpacked as the image's one layer of files.\n"
        "ADD rootfs.tar /\n"
        "# This machine's package index and trust store (never credentials), and a UTF-8 locale.\n"
        f"ENV {env_lines}\n"
        "# pip from the wheel Debian ships for venv, installed into /usr/local like the official images\n"
        "RUN set -- /usr/share/python-wheels/pip-*.whl \\\n"
        '    && python3 "$1/pip" install --no-cache-dir --no-index /usr/share/python-wheels/pip-*.whl'
        " /usr/share/python-wheels/setuptools-*.whl"
        f"{plugin} \\\n"
        "    && python --version && pip --version \\\n"
        "    && rm -rf /root/.cache\n"
        "# Like the official python images: a bare `docker run` starts the interpreter.\n"
        'CMD ["python3"]\n'
    )


def full_dockerfile(slim_ref: str) -> str:
    """The Dockerfile that adds build tools and -dev libraries on top of the slim stand-in."""
    packages = " \\\n        ".join(FULL_PACKAGES)
    return (
        "# The full stand-in: the slim one plus the compilers, git, curl and -dev libraries of the full image.\n"
        f"FROM {slim_ref}\n"
        "# Build tools and headers from Debian; apt's lists and caches go in the same RUN, so no layer keeps them.\n"
        "# The versions are the suite's on the day the stand-in is built; the recipe hash records mirror and suite.\n"
        "# DL3008: a pin per package would break with every Debian point release.\n"
        "# hadolint ignore=DL3008\n"
        "RUN export DEBIAN_FRONTEND=noninteractive \\\n"
        "    && apt-get update \\\n"
        f"    && apt-get install -y --no-install-recommends \\\n        {packages} \\\n"
        "    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log\n"
        "# Like the official python images: a bare `docker run` starts the interpreter.\n"
        'CMD ["python3"]\n'
    )


def _digest(payload: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recipe_hash(kind: str, inputs: HostInputs) -> str:
    """A stable hash of everything a stand-in of this kind is made from."""
    slim = _digest(
        {
            "version": RECIPE_VERSION,
            "tag": config.SLIM_BASE,
            "mirror": inputs.mirror.url,
            "suite": inputs.mirror.suite,
            "packages": list(SLIM_PACKAGES),
            "dockerfile": slim_dockerfile(inputs),
            "dpkg": DPKG_EXCLUDES,
            "apt": APT_CLEAN + apt_conf(inputs.apt_options),
            "ca": inputs.ca_bundle_sha256,
        }
    )
    if kind == "slim":
        return slim
    if kind == "full":
        return _digest({"slim": slim, "tag": config.FULL_BASE, "dockerfile": full_dockerfile("{slim}")})
    raise InputError(f"kind must be 'full' or 'slim', not {kind!r}")


# --- images ---------------------------------------------------------------------------------------

TAGS = {"full": config.FULL_BASE, "slim": config.SLIM_BASE}


def _image(dk: docker.DockerClient, ref: str) -> docker.models.images.Image | None:
    try:
        return dk.images.get(ref)
    except ImageNotFound:
        return None


def _labels(image: docker.models.images.Image) -> dict[str, str]:
    return dict(image.labels or {})


def _is_standin(image: docker.models.images.Image) -> bool:
    return _labels(image).get(config.STANDIN_LABEL) == "true"


def _size(image: docker.models.images.Image) -> int:
    return int(image.attrs.get("Size", 0))


def standin_ref(kind: str) -> str:
    """The lab's own tag for the stand-in of this kind (annapurna-lab/standin:3.11-slim-bookworm)."""
    return f"{STANDIN_REPO}:{TAGS[kind].split(':', 1)[1]}"


def _find_standin(dk: docker.DockerClient, kind: str, digest: str) -> docker.models.images.Image | None:
    """The stand-in under the lab's own tag, if it was built from exactly this recipe.

    Not a label search: images built FROM a stand-in inherit its labels.
    """
    image = _image(dk, standin_ref(kind))
    return image if image is not None and _labels(image).get(RECIPE_LABEL) == digest else None


def standin_labels(kind: str, digest: str) -> dict[str, str]:
    tag = TAGS[kind]
    what = "build tools and -dev libraries on top of the slim stand-in" if kind == "full" else "pip and venv"
    return config.lab_labels(
        **{
            config.STANDIN_LABEL: "true",
            config.STANDIN_FOR_LABEL: tag,
            RECIPE_LABEL: digest,
            DESCRIPTION_LABEL: (
                f"Stand-in for {tag} (no registry reachable): Debian {suite_of(tag)} python{python_of(tag)} "
                f"from Debian packages + {what}, at /usr/bin/python3; built by annapurna's basecamp.bases."
            ),
        }
    )


def try_pull(tag: str, timeout: int = 30) -> str | None:
    """`docker pull tag`; None on success, else why it failed."""
    repository, _, name = tag.partition(":")
    try:
        dk = docker.from_env(timeout=timeout)
        for event in dk.api.pull(repository, tag=name or "latest", stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                return str(event["error"])
    except APIError as exc:
        return str(exc.explanation or exc)
    except DockerException as exc:
        return str(exc)
    return None


def _stream_build(dk: docker.DockerClient, tag: str, context: Path, labels: dict[str, str], progress: Callable[[str], None], **kwargs: object) -> str:
    """Build with the SDK's classic builder; return the image id; BuildError with the log on failure."""
    command = ["docker", "build", "-t", tag, str(context)]
    log: list[str] = []
    step = None
    image_id = None
    try:
        for event in dk.api.build(path=str(context), tag=tag, labels=labels, rm=True, forcerm=True, decode=True, **kwargs):
            if "stream" in event:
                text = str(event["stream"])
                log.append(text)
                if text.startswith("Step "):
                    step = text.strip()
                    progress(f"  {step.splitlines()[0][:110]}")
            elif "error" in event:
                log.append(str(event["error"]))
                raise BuildError(command, 1, "".join(log), step)
            elif "aux" in event and isinstance(event["aux"], dict):
                image_id = event["aux"].get("ID", image_id)
    except DockerException as exc:
        raise BuildError(command, 1, "".join(log) + f"\n{exc}", step) from exc
    if image_id is None:
        image = _image(dk, tag)
        if image is None:
            raise BuildError(command, 1, "".join(log), step)
        image_id = str(image.id)
    return str(image_id)


def _mirror_hosts(mirror: DebianMirror) -> dict[str, str]:
    """The mirror's address as this machine resolves it (containers may not see the host's /etc/hosts)."""
    host = urlsplit(mirror.url).hostname
    if not host:
        return {}
    try:
        return {host: socket.gethostbyname(host)}
    except OSError:
        return {}


def _ensure_debootstrap() -> str:
    path = find_program("debootstrap")
    if path:
        return path
    if not (is_root() and is_debian_like()):
        raise LabError("debootstrap is missing and can only be installed here as root on Debian/Ubuntu.")
    apt_install(["debootstrap"], "debootstrap (to build stand-in base images)")
    path = find_program("debootstrap")
    if not path:
        raise LabError("apt-get installed debootstrap but it is not on PATH or in /usr/sbin.")
    return path


def _clear(path: Path) -> None:
    """Empty a folder of the root file system, keeping the folder."""
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _prepare_rootfs(rootfs: Path, inputs: HostInputs) -> None:
    """Trim the bootstrapped tree like an official slim image and give it the host's trust store."""
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # pip may install into the system site-packages, as in the official images
    (rootfs / "etc/dpkg/dpkg.cfg.d/annapurna-slim").write_text(DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    if inputs.apt_options:
        (rootfs / "etc/apt/apt.conf.d/99annapurna-host").write_text(apt_conf(inputs.apt_options))
    if inputs.index.ca_bundle is not None:
        bundle = inputs.index.ca_bundle.read_bytes()
        target = rootfs / IMAGE_CA_BUNDLE.lstrip("/")
        target.unlink(missing_ok=True)  # a symlink in some layouts; write a real file
        target.write_bytes(bundle)
        # update-ca-certificates rebuilds the bundle from here, so a later run keeps the host's CAs.
        (rootfs / "usr/local/share/ca-certificates/annapurna-host-bundle.crt").write_bytes(bundle)
    for folder in ("var/lib/apt/lists", "var/cache/apt", "var/cache/debconf", "var/log", "dev", "tmp", "run",
                   "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/groff", "usr/share/lintian"):  # fmt: skip
        _clear(rootfs / folder)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    locale = rootfs / "usr/share/locale"
    if locale.is_dir():
        for child in locale.iterdir():
            if child.name != "locale.alias":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    for name in ("etc/hostname", "etc/resolv.conf"):
        (rootfs / name).unlink(missing_ok=True)
    (rootfs / "etc/hostname").write_text("localhost\n")
    shutil.rmtree(rootfs / "debootstrap", ignore_errors=True)


def _build_slim(dk: docker.DockerClient, inputs: HostInputs, digest: str, progress: Callable[[str], None]) -> str:
    """debootstrap + trim + import: the slim stand-in; returns its image id."""
    if not is_root():
        raise LabError("Building a stand-in base needs root (debootstrap). Run the lab as root, or `docker pull` the bases.")
    debootstrap = _ensure_debootstrap()
    standin_env(inputs.index, inputs.ca_bundle_sha256 is not None)  # refuse credentials before any work
    work = BASES_DIR / f"slim-{digest[:12]}"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    context = work / "context"
    context.mkdir(parents=True)
    try:
        started = time.monotonic()
        progress(f"  debootstrap {inputs.mirror.suite} (minbase + {', '.join(SLIM_PACKAGES)}) ...")
        argv = [debootstrap, "--variant=minbase", f"--include={','.join(SLIM_PACKAGES)}",
                inputs.mirror.suite, str(rootfs), inputs.mirror.url]  # fmt: skip
        try:
            run(argv, hint="debootstrap builds the stand-in's root file system from the host's Debian mirror", timeout=1200)
        except CommandError as exc:
            log = rootfs / "debootstrap/debootstrap.log"
            if not log.is_file():
                raise
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise CommandError(argv, exc.returncode, f"{exc.output}\n--- {log} ---\n{tail}", exc.hint) from exc
        progress(f"  debootstrap done in {time.monotonic() - started:.0f} s; trimming and importing ...")
        _prepare_rootfs(rootfs, inputs)
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(context / "rootfs.tar"), "."])
        shutil.rmtree(rootfs)
        (context / "Dockerfile").write_text(slim_dockerfile(inputs))
        image_id = _stream_build(dk, standin_ref("slim"), context,
                                 standin_labels("slim", digest), progress)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image_id


def _build_full(dk: docker.DockerClient, inputs: HostInputs, slim_id: str, digest: str, progress: Callable[[str], None]) -> str:
    """apt-get the build tools on top of the slim stand-in; returns the image id."""
    work = BASES_DIR / f"full-{digest[:12]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "Dockerfile").write_text(full_dockerfile(slim_id))
        progress(f"  apt-get install {len(FULL_PACKAGES)} packages on top of the slim stand-in ...")
        return _stream_build(dk, standin_ref("full"), work,
                             standin_labels("full", digest), progress, extra_hosts=_mirror_hosts(inputs.mirror) or None)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Standin:
    image_id: str
    built: bool


def _standin(dk: docker.DockerClient, kind: str, inputs: HostInputs, progress: Callable[[str], None], force: bool) -> _Standin:
    """A current stand-in of this kind, building it (and the slim one under it) if needed."""
    digest = recipe_hash(kind, inputs)
    existing = None if force else _find_standin(dk, kind, digest)
    if existing is not None:
        return _Standin(str(existing.id), built=False)
    if kind == "slim":
        return _Standin(_build_slim(dk, inputs, digest, progress), built=True)
    slim = _standin(dk, "slim", inputs, progress, force=False)
    return _Standin(_build_full(dk, inputs, slim.image_id, digest, progress), built=True)


def _drop_if_untagged(dk: docker.DockerClient, image_id: str) -> None:
    """Remove an outdated stand-in that no tag names any more (best effort: it may still have children)."""
    image = _image(dk, image_id)
    if image is not None and not image.tags:
        try:
            dk.images.remove(image_id)
        except DockerException:
            pass


def _describe(dk: docker.DockerClient, kind: str, digests: dict[str, str] | None) -> BaseImage:
    tag = TAGS[kind]
    image = _image(dk, tag)
    if image is None:
        return BaseImage(tag, kind, "missing", False, 0, 0.0)
    if not _is_standin(image):
        return BaseImage(tag, kind, "present", False, _size(image), 0.0)
    current = digests is None or _labels(image).get(RECIPE_LABEL) == digests[kind] or bundle.from_bundle(_labels(image))
    return BaseImage(tag, kind, "stand-in present" if current else "stand-in outdated", True, _size(image), 0.0)


def _digests() -> dict[str, str] | None:
    """The current recipe hashes, or None when they cannot be worked out here."""
    try:
        inputs = host_inputs()
        return {kind: recipe_hash(kind, inputs) for kind in TAGS}
    except LabError:
        return None


def describe_bases() -> list[BaseImage]:
    """What the engine holds for both bases now (builds nothing, pulls nothing)."""
    dk = client()
    digests = _digests()
    return [_describe(dk, kind, digests) for kind in ("full", "slim")]


def ensure_bases(force: bool = False, progress: Callable[[str], None] = print) -> list[BaseImage]:
    """Make sure the full and the slim base exist locally: keep, pull, or build a stand-in.

    A real image is always kept; a stand-in is kept while its recipe is current (`force` rebuilds it).
    Returns [full, slim].
    """
    with locked(BASES_DIR / ".lock"):
        return _ensure_bases(force, progress)


def _ensure_bases(force: bool, progress: Callable[[str], None]) -> list[BaseImage]:
    dk = client()
    inputs: HostInputs | None = None
    results: dict[str, BaseImage] = {}
    replaced: list[str] = []
    for kind in ("slim", "full"):  # slim first: the full stand-in is built on top of it
        tag = TAGS[kind]
        started = time.monotonic()
        image = _image(dk, tag)
        if image is not None and not _is_standin(image):  # a real image: kept, even with force
            results[kind] = BaseImage(tag, kind, "present", False, _size(image), time.monotonic() - started)
            progress(f"{tag}: present")
            continue
        if image is not None and not force and bundle.from_bundle(_labels(image)):  # ./lab prepare --bundle
            results[kind] = BaseImage(tag, kind, "stand-in present", True, _size(image), time.monotonic() - started)
            progress(f"{tag}: loaded from the workshop bundle")
            continue
        if inputs is None:
            inputs = host_inputs()
        try:
            digest = recipe_hash(kind, inputs)
        except InputError:
            digest = ""  # not buildable here (see standin_env); a pull may still work
        if image is not None and not force and digest and _labels(image).get(RECIPE_LABEL) == digest:
            results[kind] = BaseImage(tag, kind, "stand-in present", True, _size(image), time.monotonic() - started)
            progress(f"{tag}: stand-in present (recipe {digest[:12]})")
            continue
        state = "not present" if image is None else "stand-in rebuild forced" if force else "outdated stand-in"
        progress(f"{tag}: {state}; trying docker pull ...")
        why = try_pull(tag)
        if why is None:
            image = dk.images.get(tag)
            results[kind] = BaseImage(tag, kind, "pulled", False, _size(image), time.monotonic() - started)
            progress(f"{tag}: pulled")
            continue
        progress(f"{tag}: pull failed ({why.splitlines()[0][:160]}); building a stand-in from Debian packages")
        made = _standin(dk, kind, inputs, progress, force)
        standin = dk.images.get(made.image_id)
        repository, _, name = tag.partition(":")
        if not standin.tag(repository, name):
            raise EngineError(f"`docker tag {made.image_id} {tag}` failed")
        if image is not None and image.id != standin.id:
            replaced.append(str(image.id))
        elapsed = time.monotonic() - started
        source = "stand-in built" if made.built else "stand-in present"
        results[kind] = BaseImage(tag, kind, source, True, _size(standin), elapsed)
        progress(f"{tag}: {source} in {elapsed:.0f} s ({_size(standin) / 1e6:.0f} MB)")
    for image_id in reversed(replaced):  # the old full first: it is a child of the old slim
        _drop_if_untagged(dk, image_id)
    return [results["full"], results["slim"]]




# --- the distroless-like runtime base (step 9) ---------------------------------------------------

#: What the distroless stand-in stands in for (named without its registry host, which the lab never writes).
DISTROLESS_FOR = "distroless/python3-debian12"
#: The user a distroless `:nonroot` image runs as, and its home.
NONROOT_UID = 65532
#: Bump when the distroless recipe changes in a way its Dockerfile text does not show.
DISTROLESS_RECIPE_VERSION = 1
#: The Debian packages the interpreter needs (libpython3.11-stdlib's Depends, minus the NIS module's
#: libnsl2/libtirpc3), the C/C++ runtime of compiled wheels, and a few data packages. No shell,
#: no coreutils, no apt or dpkg: only `dpkg-deb -x` of these, nothing from their maintainer scripts.
DISTROLESS_PACKAGES = (
    "base-files", "netbase", "tzdata", "media-types",
    "libc6", "libgcc-s1", "libstdc++6", "libssl3", "zlib1g", "libexpat1", "libffi8", "libbz2-1.0", "liblzma5",
    "libcrypt1", "libdb5.3", "libncursesw6", "libtinfo6", "libreadline8", "libsqlite3-0", "libuuid1",
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
)  # fmt: skip
#: The accounts of a distroless image: root, nonroot and nobody, none with a login shell.
DISTROLESS_PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
)
DISTROLESS_GROUP = f"root:x:0:\nnonroot:x:{NONROOT_UID}:\nnobody:x:65534:\n"


def _printf(text: str) -> str:
    """A shell `printf` argument that writes `text` exactly (newlines as \\n)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "'\\''").replace("\n", "\\n") + "'"


def distroless_dockerfile(slim_ref: str) -> str:
    """The Dockerfile of the distroless stand-in: unpack Debian packages in the slim image, keep only them."""
    packages = " \\\n        ".join(DISTROLESS_PACKAGES)
    return (
        "# The distroless stand-in, stage 1: the interpreter's Debian packages unpacked into /rootfs, files only\n"
        "# (`dpkg-deb -x`: none of their maintainer scripts runs).\n"
        f"FROM {slim_ref} AS unpack\n"
        "# Download and unpack; trim docs, man pages and locales; write the accounts, nsswitch and the CA bundle.\n"
        "# DL3003: `cd` inside this one RUN keeps the paths relative to /rootfs; a WORKDIR would outlive it.\n"
        "# hadolint ignore=DL3003\n"
        "RUN export DEBIAN_FRONTEND=noninteractive \\\n"
        "    && apt-get update \\\n"
        "    && mkdir -p /rootfs /tmp/debs && cd /tmp/debs \\\n"
        f"    && apt-get download \\\n        {packages} \\\n"
        '    && for deb in *.deb; do dpkg-deb -x "$deb" /rootfs; done \\\n'
        "    && cd /rootfs \\\n"
        "    && find usr/share/doc -type f ! -name copyright -delete \\\n"
        "    && rm -rf usr/share/man usr/share/info usr/share/lintian usr/share/locale usr/share/gcc usr/share/gdb \\\n"
        "        usr/lib/*/gconv etc/profile.d etc/update-motd.d \\\n"
        "    && mkdir -p etc/ssl/certs tmp root home/nonroot \\\n"
        f"    && cp {IMAGE_CA_BUNDLE} etc/ssl/certs/ \\\n"
        f"    && printf {_printf(DISTROLESS_PASSWD)} > etc/passwd \\\n"
        f"    && printf {_printf(DISTROLESS_GROUP)} > etc/group \\\n"
        "    && printf 'hosts: files dns\\n' > etc/nsswitch.conf \\\n"
        "    && printf 'include /etc/ld.so.conf.d/*.conf\\n' > etc/ld.so.conf \\\n"
        "    && ln -s python3.11 usr/bin/python3 \\\n"
        "    && chmod 1777 tmp && chmod 700 root home/nonroot \\\n"
        f"    && chown {NONROOT_UID}:{NONROOT_UID} home/nonroot \\\n"
        "    && ldconfig -r /rootfs \\\n"
        "    && rm -rf /tmp/debs /var/lib/apt/lists/*\n"
        "# Stage 2: only the unpacked files, nothing of the slim image they were unpacked in.\n"
        "FROM scratch\n"
        "# The packages' files, the accounts and the trust store.\n"
        "COPY --from=unpack /rootfs/ /\n"
        "# The distroless image's PATH and locale, and where Python's ssl finds the CA bundle.\n"
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
        "    LANG=C.UTF-8 \\\n"
        f"    SSL_CERT_FILE={IMAGE_CA_BUNDLE}\n"
        "# Like the distroless python image: the interpreter itself, no shell to parse a command.\n"
        'ENTRYPOINT ["/usr/bin/python3.11"]\n'
    )


def distroless_recipe_hash(slim_id: str) -> str:
    """A stable hash of the distroless stand-in's recipe: its Dockerfile and the slim image it unpacks in."""
    return _digest({"version": DISTROLESS_RECIPE_VERSION, "slim": slim_id,
                    "dockerfile": distroless_dockerfile("{slim}")})


def distroless_labels(digest: str) -> dict[str, str]:
    """Labels of the distroless stand-in: the lab's, stand-in, what it stands in for, its recipe."""
    return config.lab_labels(
        **{
            config.STANDIN_LABEL: "true",
            config.STANDIN_FOR_LABEL: DISTROLESS_FOR,
            RECIPE_LABEL: digest,
            DESCRIPTION_LABEL: (
                f"Stand-in for {DISTROLESS_FOR} (no registry reachable): Debian {suite_of(config.SLIM_BASE)} "
                f"python3.11 at /usr/bin/python3.11 unpacked from {len(DISTROLESS_PACKAGES)} Debian packages, "
                f"no shell, no pip, user nonroot ({NONROOT_UID}); built by annapurna's basecamp.bases."
            ),
        }
    )


def ensure_distroless(force: bool = False, progress: Callable[[str], None] = print) -> BaseImage:
    """Make sure the distroless stand-in (config.DISTROLESS_BASE) exists and is current; build it if not.

    Built on the slim base (`ensure_bases` first): its apt unpacks the packages, nothing of it stays.
    """
    with locked(BASES_DIR / ".lock"):
        return _ensure_distroless(force, progress)


def _ensure_distroless(force: bool, progress: Callable[[str], None]) -> BaseImage:
    from basecamp.build import build

    dk = client()
    tag = config.DISTROLESS_BASE
    started = time.monotonic()
    slim = _image(dk, config.SLIM_BASE)
    if slim is None:
        raise LabError(f"{tag} is unpacked in {config.SLIM_BASE}, which is not in the engine: run `./lab prepare`.")
    digest = distroless_recipe_hash(str(slim.id))
    image = _image(dk, tag)
    if image is not None and not force and bundle.from_bundle(_labels(image)):  # ./lab prepare --bundle
        progress(f"{tag}: loaded from the workshop bundle")
        return BaseImage(tag, "distroless", "stand-in present", True, _size(image), time.monotonic() - started)
    if image is not None and not force and _labels(image).get(RECIPE_LABEL) == digest:
        progress(f"{tag}: stand-in present (recipe {digest[:12]})")
        return BaseImage(tag, "distroless", "stand-in present", True, _size(image), time.monotonic() - started)
    state = "not present" if image is None else "stand-in rebuild forced" if force else "outdated stand-in"
    progress(f"{tag}: {state}; unpacking {len(DISTROLESS_PACKAGES)} Debian packages in {config.SLIM_BASE} ...")
    work = BASES_DIR / f"distroless-{digest[:12]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "Dockerfile").write_text(distroless_dockerfile(config.SLIM_BASE))  # BuildKit wants a name
        build(work / "Dockerfile", work, tag, labels=distroless_labels(digest), display="none")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    made = dk.images.get(tag)
    if image is not None and image.id != made.id:
        _drop_if_untagged(dk, str(image.id))
    elapsed = time.monotonic() - started
    progress(f"{tag}: stand-in built in {elapsed:.0f} s ({_size(made) / 1e6:.0f} MB)")
    return BaseImage(tag, "distroless", "stand-in built", True, _size(made), elapsed)
