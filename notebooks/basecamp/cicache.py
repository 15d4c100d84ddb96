"""CI caches on this engine: export/import the layer cache as a file, and move a cache mount's contents.

A fresh CI runner has no layer cache and empty cache mounts (the article's "con" of step 6).
BuildKit's answer is `--cache-to/--cache-from type=local,dest=<dir>`, which needs buildx (or
buildctl); Docker 20.10's own `docker build` has no `--cache-to` and reads every `--cache-from`
as an image name. What it has: the inline cache (`--build-arg BUILDKIT_INLINE_CACHE=1` writes the
cache metadata into the image's config) and `--cache-from <image>`, which the engine resolves from
its local image store (moby's localinlinecache) — so the image, saved with `docker save` into a
folder and loaded with `docker load` on the next runner, *is* a local-directory cache export.

One engine plays both runners. `dockerfiles/extras/12-ci-runner.Dockerfile` takes a `CI_RUNNER`
build arg: each measurement round uses a value new to the engine, so its layers are new too. To
make the engine forget a build (a fresh runner), `forget()` removes its image and prunes, one by
one with an anchored id filter, the build-cache records `buildcache.track()` saw appear during it, and
the lab's cache mounts. Nothing created outside those builds is touched.

The cache dance (reproducible-containers/buildkit-cache-dance): `extract_mount()` runs a throwaway
build that mounts the same cache id and writes its contents as a tarball to a host folder
(`-o type=local`, which this engine supports); `inject_mount()` puts such a tarball back.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors

from basecamp import buildcache, config, disk, engine, images, process, registry
from basecamp.build import BuildCounts, build
from basecamp.errors import BuildError, LabError
from basecamp.installer import install_report
from basecamp.results import Record, record
from basecamp.steps import STEP_LABEL
from basecamp.units import fmt_bytes

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.scratch import Scratch

EXTRAS_DIR = config.DOCKERFILES_DIR / "extras"
RUNNER_DOCKERFILE = EXTRAS_DIR / "12-ci-runner.Dockerfile"
EXTRACT_DOCKERFILE = EXTRAS_DIR / "12-dance-extract.Dockerfile"
INJECT_DOCKERFILE = EXTRAS_DIR / "12-dance-inject.Dockerfile"
#: The folder a CI cache action would keep between runs.
CACHE_DIR_NAME = "ci-cache"
IMAGE_TARBALL = "image.tar"
MOUNT_TARBALL = "poetry-cache.tar"
RUNNER_TAG = f"{config.IMAGE_REPO_PREFIX}/12-ci-runner"
#: Prune attempts (1 s apart) before `forget()` gives up on a cache mount still in use.
FORGET_TRIES = 10
#: Attempts at a fresh-runner build before a round gives up (a concurrent build can share a mount).
COLD_TRIES = 3


@dataclass
class Attempt:
    """One command tried as-is: its argv, exit status and what it printed."""

    argv: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> str:
        """The command and the lines that say why it failed (or "ok")."""
        shown = " ".join(self.argv)
        wanted = list(dict.fromkeys(ln.split(" ", 1)[-1] if ln.startswith("#") else ln
                                    for ln in self.output.splitlines() if "error" in ln.lower() or "unknown flag" in ln))
        if self.ok:
            head = "-> exit 0: the build went on" + (", after these errors:" if wanted else "")
            return "\n".join([f"$ {shown}", head, *wanted]) if wanted else f"$ {shown}\n-> ok"
        return f"$ {shown}\n-> exit {self.returncode}\n" + "\n".join(wanted or self.output.splitlines()[-5:])


@dataclass
class CiRun(BuildCounts):
    """One simulated fresh-runner build: with or without an imported cache."""

    mode: str  # "plain" or "import" or "dance"
    runner: str
    #: Seconds for `docker load` of the cache tarball (0 without an import).
    load_s: float
    build: BuildResult
    downloads: int | None
    #: Seconds the cache dance's injection took (0 without).
    inject_s: float = 0.0

    @property
    def build_s(self) -> float:
        return self.build.wall_s

    @property
    def total_s(self) -> float:
        """What the runner waits for: loading or injecting the cache, then the build."""
        return self.load_s + self.inject_s + self.build.wall_s

    def line(self) -> str:
        extra = f" (load {self.load_s:.1f} s + build {self.build_s:.1f} s)" if self.load_s else ""
        extra += f" (inject {self.inject_s:.1f} s + build {self.build_s:.1f} s)" if self.inject_s else ""
        return (f"{self.mode:6s} {self.total_s:6.1f} s{extra}: {self.cached} cached, {self.ran} ran, "
                f"downloads {self.downloads}")


def cache_dir() -> Path:
    """The host folder standing for the CI cache (LAB_HOME/ci-cache)."""
    return config.LAB_HOME / CACHE_DIR_NAME


def _docker() -> tuple[list[str], dict[str, str]]:
    """The BuildKit docker CLI: its argv and what it adds to this process's environment."""
    cli = engine.buildkit_cli()
    if cli is None:
        raise LabError("no docker CLI builds with BuildKit here: the CI cache needs BuildKit")
    return list(cli.argv), dict(cli.env)


def try_build_flags(flags: list[str], context: Path, dockerfile: Path) -> Attempt:
    """Run `docker build <flags>` once, as this engine's BuildKit CLI, and keep what it said."""
    argv, env = _docker()
    full = [*argv, "--progress=plain", *flags, "-f", str(dockerfile), str(context)]
    with buildcache.track(note="ci-cache probe"):  # a cache mount it makes is the lab's to prune
        proc = process.run(full, env=env, timeout=600, check=False)
    shown = [Path(a).name if a.startswith("/") else a for a in full]
    return Attempt(shown, proc.returncode, proc.output)


def cache_to_flags(dest: Path) -> list[str]:
    """What buildx would take to export the layer cache to a folder."""
    return ["--cache-to", f"type=local,dest={dest}"]


def cache_from_flags(src: Path) -> list[str]:
    """What buildx would take to import the layer cache from a folder."""
    return ["--cache-from", f"type=local,src={src}"]


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    process.run(argv, env=env, timeout=900, hint=what)
    return time.perf_counter() - t0


def _output_build(dockerfile: Path, context: Path, dest: Path, note: str) -> float:
    """A build whose result goes to a host folder (`-o type=local`), cache mounts tracked as the lab's."""
    argv, env = _docker()
    full = [*argv, "--progress=plain", "--build-arg", f"DANCE_ID={uuid.uuid4().hex}", "-f", str(dockerfile),
            "-o", f"type=local,dest={dest}", str(context)]
    with buildcache.track(note=note):
        t0 = time.perf_counter()
        proc = process.run(full, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        raise BuildError(full, proc.returncode, proc.output[-3000:], None)
    return time.perf_counter() - t0


def extract_mount(dest: Path | None = None) -> Path:
    """The cache dance, out: the ci cache mount's contents as DEST/poetry-cache.tar; return that file."""
    folder = dest or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _output_build(EXTRACT_DOCKERFILE, EXTRAS_DIR, folder, "cache-dance extract")
    tarball = folder / MOUNT_TARBALL
    if not tarball.is_file():
        raise LabError(f"the extraction build wrote no {tarball}")
    return tarball


def inject_mount(src: Path | None = None) -> float:
    """The cache dance, in: unpack SRC/poetry-cache.tar into the ci cache mount; return seconds taken."""
    folder = src or cache_dir()
    if not (folder / MOUNT_TARBALL).is_file():
        raise LabError(f"nothing to inject: {folder / MOUNT_TARBALL} does not exist (run extract_mount first)")
    out = config.LAB_HOME / "ci-inject-out"
    return _output_build(INJECT_DOCKERFILE, folder, out, "cache-dance inject")


def save_image(tag: str, dest: Path | None = None) -> Path:
    """`docker save` the image (with its inline cache) into the cache folder; return the tarball."""
    folder = dest or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / IMAGE_TARBALL
    argv, env = _docker()
    _run([argv[0], "save", "-o", str(tarball), tag], "saving the cache image", env)
    return tarball


def load_image(tarball: Path) -> float:
    """`docker load` a saved cache image; return seconds taken."""
    argv, env = _docker()
    return _run([argv[0], "load", "-i", str(tarball)], "loading the cache image", env)


def forget(client: Any, tag: str, record_ids: list[str]) -> None:
    """Make the engine a fresh runner again for this build: its image, its records, the lab's mounts."""
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass
    buildcache.prune_records(record_ids, client)
    for _ in range(FORGET_TRIES):  # a mount BuildKit has not released yet is skipped: try again
        buildcache.prune_lab_cache_mounts(client)
        if not buildcache.remaining_lab_cache_mounts(client):
            return
        time.sleep(1)
    left = ", ".join(r.id for r in buildcache.remaining_lab_cache_mounts(client))
    raise LabError(f"could not empty the lab's cache mounts (in use by another build?): {left}")


def runner_build(app: Scratch, runner: str, *, cache_from: list[str] | None = None,
                 display: Any = "none") -> tuple[BuildResult, list[str]]:
    """Build the CI-runner Dockerfile (target runtime) with inline cache; return it and its new records."""
    disk.ensure_disk_space()  # build() leaves the free-disk check to its callers
    result = build(RUNNER_DOCKERFILE, app.path, f"{RUNNER_TAG}:{runner}", target="runtime",
                   build_args={"CI_RUNNER": runner, "BUILDKIT_INLINE_CACHE": "1"},
                   labels={STEP_LABEL: "12-ci-runner"}, cache_from=cache_from, display=display)
    tracked = result.tracking  # build() tracked the records it made (None: the classic builder, untracked)
    return result, sorted(r.id for r in [*tracked.created, *tracked.created_records]) if tracked else []


def _downloads(result: BuildResult) -> int | None:
    report = install_report(result)
    return None if report.downloaded is None else len(report.downloaded)


def cold_problem(result: BuildResult) -> str:
    """Why a fresh-runner build was not cold ("" when it was): a cached layer, or packages from the mount."""
    if result.cached_steps:
        return f"{len(result.cached_steps)} steps came from the layer cache"
    report = install_report(result)
    if report.from_cache:
        return f"the cache mount was not empty: {len(report.from_cache)} packages came from it"
    return ""


def fresh_build(app: Scratch, *, display: Any = "none") -> tuple[BuildResult, list[str], str]:
    """A cold build on a fresh runner (new runner id, lab mounts emptied), checked; retried when not cold.

    Another build sharing the engine can leave the mount non-empty; such a run is thrown away
    (its image and records forgotten) and the build repeated, up to COLD_TRIES times.
    """
    client = engine.client()
    problem = ""
    for _ in range(COLD_TRIES):
        buildcache.prune_lab_cache_mounts(client)
        runner = uuid.uuid4().hex[:12]
        result, ids = runner_build(app, runner, display=display)
        problem = cold_problem(result)
        if not problem:
            return result, ids, runner
        forget(client, f"{RUNNER_TAG}:{runner}", ids)
    raise LabError(f"no cold build in {COLD_TRIES} tries: {problem}; re-run when the engine is quieter")


def ci_round(app: Scratch, *, display: Any = "none") -> tuple[CiRun, CiRun]:
    """One round on a fresh runner: a plain cold build, then (engine forgotten) a cold build importing its cache.

    The plain build's image is saved into the cache folder; the engine then forgets that build and
    the import build loads the tarball and builds with `--cache-from`. Both runs use the same new
    runner id, so the import build's only source of cached layers is the loaded image.
    """
    client = engine.client()
    plain, ids, runner = fresh_build(app, display=display)
    tag = f"{RUNNER_TAG}:{runner}"
    plain_run = CiRun("plain", runner, 0.0, plain, _downloads(plain))
    tarball = save_image(tag)
    forget(client, tag, ids)
    load_s = load_image(tarball)
    imported, ids2 = runner_build(app, runner, cache_from=[tag], display=display)
    import_run = CiRun("import", runner, load_s, imported, _downloads(imported))
    forget(client, tag, ids2)
    return plain_run, import_run


def dance_round(app: Scratch, *, display: Any = "none") -> tuple[CiRun, CiRun, Path]:
    """Cache-mount contents between runners: a cold build fills the mount, the dance carries it to the next.

    Run 1 ("plain"): fresh runner, empty mount, cold build; then `extract_mount()` saves the mount.
    Run 2 ("dance"): fresh runner again (build and mounts forgotten), `inject_mount()` restores the
    contents, then a cold build with a new runner id (no layer cache): only the mount differs.
    """
    client = engine.client()
    plain, ids, first = fresh_build(app, display=display)
    plain_run = CiRun("plain", first, 0.0, plain, _downloads(plain))
    tarball = extract_mount()
    forget(client, f"{RUNNER_TAG}:{first}", ids)
    inject_s = inject_mount(tarball.parent)
    second = uuid.uuid4().hex[:12]
    danced, ids2 = runner_build(app, second, display=display)
    dance_run = CiRun("dance", second, 0.0, danced, _downloads(danced), inject_s=inject_s)
    forget(client, f"{RUNNER_TAG}:{second}", ids2)
    return plain_run, dance_run, tarball


def record_ci(runs: list[CiRun]) -> None:
    """Write notebook 12's runs to the results file (step "12-ci-cache", scenario "ci-<mode>"), for the summary."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.mode] = counts.get(r.mode, 0) + 1
        record(Record(step="12-ci-cache", scenario=f"ci-{r.mode}", wall_s=round(r.total_s, 3),
                      cached_steps=r.cached, ran_steps=r.ran, builder=r.build.builder,
                      image_id=r.build.image_id, downloads=r.downloads, run=counts[r.mode]))


# --- the registry route (issue 13): how CI does it ------------------------------------------------


@dataclass
class RegistryRound:
    """One round of the registry route: runner 1 builds cold and pushes; runner 2 builds from the registry.

    `plain`: runner 1's cold build. `push`: its `docker push` (seconds, bytes the registry stored new).
    `stored`: the image as the registry stores it (compressed layers, from the manifest). `fresh`:
    runner 2's build with `--cache-from <registry>/<image>` (its local image and build cache gone).
    `served`: what the registry sent during that build (the bytes runner 2 pulled).
    """

    plain: CiRun
    push: Any  # registry.Push
    stored: Any  # registry.StoredImage
    fresh: CiRun
    served: Any  # registry.Served
    #: The lab's gzip estimate of runner 1's image (`docker save | gzip`), to set beside `stored`.
    gzip_estimate: int = 0

    def line(self) -> str:
        return (f"{self.fresh.mode:8s} {self.fresh.total_s:6.1f} s: {self.fresh.cached} cached, {self.fresh.ran} ran, "
                f"downloads {self.fresh.downloads}; pulled {fmt_bytes(self.served.blob_bytes)} in "
                f"{self.served.blobs} blob(s) of the {fmt_bytes(self.stored.compressed_bytes)} the registry stores "
                f"(runner 1 pushed {fmt_bytes(self.push.new_bytes)} new in {self.push.seconds:.1f} s)")


def registry_round(app: Scratch, reg: Any, *, display: Any = "none") -> RegistryRound:
    """Runner 1: a cold build with inline cache, pushed to `reg`. The engine then forgets it (image, records,
    mounts: a fresh runner 2), which builds with `--cache-from <registry>/<image>`; its image is forgotten too.

    Both builds use the same new runner id, so runner 2's only source of cached layers is the registry.
    """
    client = engine.client()
    plain, ids, runner = fresh_build(app, display=display)
    tag = f"{RUNNER_TAG}:{runner}"
    plain_run = CiRun("plain", runner, 0.0, plain, _downloads(plain))
    try:
        pushed = registry.push(reg, tag)
        stored = registry.manifest(reg, tag)
        estimate = compressed_size(tag)
    finally:
        forget(client, tag, ids)
    mark = registry.log_mark(reg)
    built, ids2 = runner_build(app, runner, cache_from=[reg.ref(tag)], display=display)
    served = registry.served_since(reg, mark)
    forget(client, tag, ids2)
    return RegistryRound(plain_run, pushed, stored, CiRun("registry", runner, 0.0, built, _downloads(built)), served,
                         estimate)


@dataclass(frozen=True)
class PushedSize:
    """An image's size as the registry stores it beside the lab's gzip estimate of it."""

    ref: str
    stored_bytes: int
    layers: int
    gzip_estimate: int

    @property
    def estimate_off(self) -> float:
        """(estimate − stored) / stored: + when the estimate is high."""
        return (self.gzip_estimate - self.stored_bytes) / self.stored_bytes

    def line(self) -> str:
        return (f"{self.ref}: the registry stores {fmt_bytes(self.stored_bytes)} in {self.layers} compressed layers "
                f"+ config; `docker save | gzip` estimated {fmt_bytes(self.gzip_estimate)} "
                f"({self.estimate_off:+.1%})")


def pushed_size(reg: Any, ref: str) -> PushedSize:
    """Push `ref` to `reg` and set the manifest's compressed size beside the gzip estimate."""
    registry.push(reg, ref)
    stored = registry.manifest(reg, ref)
    return PushedSize(ref, stored.compressed_bytes, len(stored.layers), compressed_size(ref))


def compressed_size(ref: str) -> int:
    """The lab's gzip estimate of an image (basecamp.images.compressed_size, cached per image id)."""
    return images.compressed_size(ref)


def pushed_sizes(reg: Any, refs: list[str]) -> tuple[list[PushedSize], list[str]]:
    """`pushed_size` of each of `refs` the engine has; the refs it does not have (not built yet), apart."""
    client = engine.client()
    sizes, missing = [], []
    for ref in refs:
        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
            continue
        sizes.append(pushed_size(reg, ref))
    return sizes, missing
