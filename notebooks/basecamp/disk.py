"""Free disk where the engine keeps its data: checked before the first build, refused with numbers.

The engine says where its data lives (`docker info`: DockerRootDir) and how much its images, containers
and build cache take (`docker system df`), but not how much room is left there. On a local engine the
lab reads the free space of that folder itself. On a remote engine (DOCKER_HOST names another host,
`engine.is_local`) a folder of that name here would be the wrong disk, so the lab does not look: it says
that the free space cannot be known from here, reports what Docker uses there, and never refuses.

The series' need is estimated from what this machine measured (the results file's image sizes),
or from the sizes measured for the README when nothing is measured yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basecamp import results
from basecamp.errors import EngineError, InputError, LabError
from basecamp.units import fmt_bytes

#: Layers a step's image adds over its base, from the README's measured sizes (stand-in bases,
#: 2-core Debian machine): 01 ≈ 222 MB, 02-04 ≈ 100 MB each, 05 and 06 ≈ 18 MB each → ≈ 0.66 GB.
MEASURED_STEP_LAYERS_BYTES = 660 * 10**6
#: A measurement keeps up to this many images of a step (cold, code change, dependency change and,
#: from step 4 on, version bump; a `--no-cache` build makes its own layers), so the layers above count
#: this many times.
COPIES_PER_STEP = 4
#: Room for BuildKit's cache (layers of replaced images, cache mounts, build-context snapshots).
#: Measured: a whole series run (`./lab report`, 14 notebooks, stand-in bases) left 2.34 GB of
#: build cache that no image shares, beside 1.93 GB of image layers (peak 4.27 GB over the bases).
BUILD_CACHE_MARGIN_BYTES = 25 * 10**8
#: The need when nothing is measured yet: 4 × 0.66 GB + 2.5 GB ≈ 5.1 GB.
FALLBACK_NEED_BYTES = COPIES_PER_STEP * MEASURED_STEP_LAYERS_BYTES + BUILD_CACHE_MARGIN_BYTES
#: Set to a number of bytes to override the estimate (e.g. a known-small exercise).
NEED_ENV = "ANNAPURNA_DISK_NEED"


@dataclass(frozen=True)
class DiskNeed:
    """How many bytes the series needs and where that number comes from."""

    bytes: int
    basis: str


@dataclass(frozen=True)
class DiskSpace:
    """Free bytes at the engine's data root (None when the root is not on this machine, e.g. a VM)."""

    root: str
    free_bytes: int | None
    #: The engine the numbers are about (engine.describe_engine()).
    engine: str = ""
    #: What Docker's images, containers and build cache take there (`docker system df`), when asked.
    used_bytes: int | None = None

    @property
    def unknown_why(self) -> str:
        """Why free_bytes is None, in one line (empty when it is known)."""
        if self.free_bytes is not None:
            return ""
        used = f"; Docker's images, containers and build cache take {fmt_bytes(self.used_bytes)} there" \
            if self.used_bytes is not None else ""
        if self.engine.startswith("remote"):
            return (f"{self.engine}: its free disk cannot be known from here (the engine does not report it){used}; "
                    f"check the disk holding {self.root or 'its data root'} on that host")
        return f"engine data is in a VM ({self.root}); check its disk in Docker Desktop{used}"


def series_need(results_path: Path | None = None, base_sizes: dict[str, int] | None = None) -> DiskNeed:
    """Need = COPIES_PER_STEP × (each measured step's image size − its base's size) + the cache margin.

    `base_sizes`: tag -> bytes of the bases already on disk (they are shared, so not counted again).
    With nothing measured yet the result is FALLBACK_NEED_BYTES, and never less than that.
    $ANNAPURNA_DISK_NEED (bytes) overrides everything.
    """
    raw = os.environ.get(NEED_ENV, "").strip()
    if raw:
        if not raw.isdigit():
            raise InputError(f"${NEED_ENV}={raw!r}: use a whole number of bytes")
        return DiskNeed(int(raw), f"${NEED_ENV}")
    layers: dict[str, int] = {}
    for rec in results.load(path=results_path):
        # A step's image on a known base. Not: a build context's size (07) or a forensics row, which
        # carries the whole image with no base to subtract.
        if rec.size_bytes and rec.base:
            base = rec.base.split(" ")[0]
            layers[rec.step] = max(rec.size_bytes - (base_sizes or {}).get(base, 0), 0)
    if not layers:
        return DiskNeed(FALLBACK_NEED_BYTES, "the README's measured sizes (nothing measured here yet)")
    need = COPIES_PER_STEP * sum(layers.values()) + BUILD_CACHE_MARGIN_BYTES
    return DiskNeed(max(need, FALLBACK_NEED_BYTES), f"the image sizes of {len(layers)} step(s) measured here")


def base_sizes(client: Any) -> dict[str, int]:
    """Bytes of every tagged image in the engine, by tag (the bases are among them)."""
    return {tag: int(im.attrs.get("Size", 0)) for im in client.images.list() for tag in im.tags}


def engine_space(client: Any, host: str | None = None) -> DiskSpace:
    """Free bytes at the engine's DockerRootDir (`docker info`), when that folder is on this machine.

    `host`: the engine's address (default DOCKER_HOST). A remote engine's free space is never read
    from this machine's folders; its `docker system df` total is reported instead (module doc).
    """
    from basecamp import engine  # here, not above: it loads the docker SDK

    where = engine.describe_engine(host)
    root = str(client.info().get("DockerRootDir", ""))
    if not engine.is_local(host):
        return DiskSpace(root, None, where, _used(client))
    if not root or not Path(root).is_dir():
        return DiskSpace(root, None, where, _used(client))
    st = os.statvfs(root)
    return DiskSpace(root, st.f_bavail * st.f_frsize, where)


def disk_total(df: dict[str, Any]) -> int:
    """Docker's disk use as `docker system df` adds it up: layers, containers' writable layers, build cache."""
    containers = sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or [])
    cache = sum(int(r.get("Size") or 0) for r in df.get("BuildCache") or [] if not r.get("Shared"))
    return int(df.get("LayersSize") or 0) + containers + cache


def _used(client: Any) -> int | None:
    """Docker's own total (layers, containers, build cache) from `docker system df`; None when not asked."""
    df = getattr(client, "df", None)
    if df is None:
        return None
    try:
        return disk_total(df())
    except Exception:  # noqa: BLE001  (a courtesy number: an engine that cannot say leaves it out)
        return None


_checked = False


def ensure_disk_space(client: Any | None = None, *, results_path: Path | None = None, force: bool = False) -> None:
    """Refuse (LabError, with needed vs free bytes and the path) when the engine's disk is too full.

    Runs once per process (before the first build); a refusal is re-checked at the next build. The
    builds a learner starts call it (`build_step`, `measure_step`, the topics' demos); `build.build()`
    itself does not: it does the build's mechanics only.
    """
    global _checked
    if _checked and not force:
        return
    if client is None:
        from basecamp import engine  # here, not above: it loads the docker SDK

        try:
            client = engine.client(timeout=10)
        except EngineError:
            return  # the build itself reports the missing engine, with its fix
    space = engine_space(client)
    need = series_need(results_path, base_sizes(client))
    if space.free_bytes is not None and space.free_bytes < need.bytes:
        raise LabError(
            f"Not enough free disk where Docker keeps its data ({space.root}): {fmt_bytes(space.free_bytes)} free "
            f"({space.free_bytes} bytes), the series needs {fmt_bytes(need.bytes)} ({need.bytes} bytes; "
            f"estimated from {need.basis}).\n"
            "Fix: free disk space there, or remove the lab's images with `./lab clean` "
            f"(set {NEED_ENV}=<bytes> to override the estimate)."
        )
    _checked = True
