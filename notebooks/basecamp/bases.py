"""Make sure the base images the step Dockerfiles name exist locally.

Present → kept. Else `docker pull`. Else a stand-in is built from Debian packages: debootstrap a
minimal bookworm with Python 3.11 + pip (the slim one), then add build tools and -dev libraries on
top of it (the full one). Both then run the step Dockerfiles unchanged, with one interpreter path.
The Debian mirror comes from this machine's apt sources (basecamp.aptsources), the package index from
pip's settings; the recipes are files, dockerfiles/bases/*.Dockerfile (basecamp.baserecipes). Step 9's
distroless-like runtime base is a stand-in too (`ensure_distroless`).
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from basecamp.build import build

from . import bundle, config
from .aptsources import (  # noqa: F401  (re-exported: basecamp.bases is where the lab's bases are)
    AptSource,
    DebianMirror,
    apt_sources,
    debian_mirror,
    host_apt_options,
    parse_apt_config_dump,
    parse_deb822,
    parse_one_line,
)
from .baserecipes import (
    APT_CLEAN,
    DPKG_EXCLUDES,
    IMAGE_CA_BUNDLE,
    SLIM_PACKAGES,
    HostInputs,
    apt_conf,
    distroless_dockerfile,
    distroless_packages,
    distroless_recipe_hash,
    full_dockerfile,
    full_packages,
    host_inputs,
    python_of,
    recipe_hash,
    slim_build_args,
    slim_dockerfile,
    standin_env,
    suite_of,
)
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

BASES_DIR = config.LAB_HOME / "bases"
RECIPE_LABEL = "org.annapurna.standin-recipe"
DESCRIPTION_LABEL = "org.opencontainers.image.description"
#: Every stand-in is also tagged here, so a stand-in is findable even when the real tag is not its own.
STANDIN_REPO = f"{config.IMAGE_REPO_PREFIX}/standin"


@dataclass
class BaseImage:
    """One base image as the lab found or made it."""

    tag: str
    kind: str  # "full" | "slim"
    source: str  # "present" | "pulled" | "stand-in built" | "stand-in present" (describe: also "stand-in outdated", "missing")
    is_standin: bool
    size_bytes: int
    seconds: float


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
        image_id = _stream_build(dk, standin_ref("slim"), context, standin_labels("slim", digest), progress,
                                 buildargs=slim_build_args(inputs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image_id


def _build_full(dk: docker.DockerClient, inputs: HostInputs, slim_id: str, digest: str, progress: Callable[[str], None]) -> str:
    """apt-get the build tools on top of the slim stand-in; returns the image id."""
    work = BASES_DIR / f"full-{digest[:12]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "Dockerfile").write_text(full_dockerfile())
        progress(f"  apt-get install {len(full_packages())} packages on top of the slim stand-in ...")
        return _stream_build(dk, standin_ref("full"), work, standin_labels("full", digest), progress,
                             extra_hosts=_mirror_hosts(inputs.mirror) or None, buildargs={"SLIM_IMAGE": slim_id})
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
#: The user a distroless `:nonroot` image runs as (dockerfiles/bases/distroless.Dockerfile writes its account).
NONROOT_UID = 65532


def distroless_labels(digest: str) -> dict[str, str]:
    """Labels of the distroless stand-in: the lab's, stand-in, what it stands in for, its recipe."""
    return config.lab_labels(
        **{
            config.STANDIN_LABEL: "true",
            config.STANDIN_FOR_LABEL: DISTROLESS_FOR,
            RECIPE_LABEL: digest,
            DESCRIPTION_LABEL: (
                f"Stand-in for {DISTROLESS_FOR} (no registry reachable): Debian {suite_of(config.SLIM_BASE)} "
                f"python3.11 at /usr/bin/python3.11 unpacked from {len(distroless_packages())} Debian packages, "
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
    progress(f"{tag}: {state}; unpacking {len(distroless_packages())} Debian packages in {config.SLIM_BASE} ...")
    work = BASES_DIR / f"distroless-{digest[:12]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "Dockerfile").write_text(distroless_dockerfile())  # the build's context: an empty folder
        build(work / "Dockerfile", work, tag, build_args={"SLIM_IMAGE": config.SLIM_BASE},
              labels=distroless_labels(digest), display="none")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    made = dk.images.get(tag)
    if image is not None and image.id != made.id:
        _drop_if_untagged(dk, str(image.id))
    elapsed = time.monotonic() - started
    progress(f"{tag}: stand-in built in {elapsed:.0f} s ({_size(made) / 1e6:.0f} MB)")
    return BaseImage(tag, "distroless", "stand-in built", True, _size(made), elapsed)
