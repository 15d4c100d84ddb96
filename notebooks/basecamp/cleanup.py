"""Remove what the lab created in Docker — only what carries the lab's label or was recorded as the lab's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from basecamp import buildcache, config, containers, engine, registry
from basecamp.disk import disk_total
from basecamp.units import fmt_bytes


@dataclass
class CleanupReport:
    """What cleanup removed (names or short ids), what it kept on purpose, and the disk that came back."""

    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    kept_bases: list[str] = field(default_factory=list)
    cache_mounts: list[str] = field(default_factory=list)
    #: Other build-cache records the lab's builds created (layers, build contexts, ...).
    build_records: list[str] = field(default_factory=list)
    #: The lab's records BuildKit kept: in use by a running build, or parents of records it did not make.
    kept_records: list[str] = field(default_factory=list)
    #: Docker's own disk accounting (layers + containers + build cache) before and after, in bytes.
    disk_before_bytes: int = 0
    disk_after_bytes: int = 0
    #: Dry run: bytes only the selected images and records hold (a lower bound of what would come back).
    would_free_bytes: int = 0
    #: True when nothing was removed: the lists say what *would* go.
    dry_run: bool = False
    #: The lab's own registry (basecamp.registry): what was done to it ("" when there was none).
    registry: str = ""

    @property
    def freed_bytes(self) -> int:
        """What the cleanup gave back, measured as Docker's disk usage before minus after."""
        return self.disk_before_bytes - self.disk_after_bytes

    def summary(self) -> str:
        """What went (or would go) and the disk it freed, in a few lines."""
        verb = "would remove" if self.dry_run else "removed"
        if self.dry_run:
            disk = f"would free at least {fmt_bytes(self.would_free_bytes)} (what only these images and records hold)"
        else:
            disk = (f"freed {fmt_bytes(self.freed_bytes)}: Docker's disk usage went from "
                    f"{fmt_bytes(self.disk_before_bytes)} to {fmt_bytes(self.disk_after_bytes)}")
        return "\n".join([
            (f"cleanup {verb}: {len(self.containers)} container(s), {len(self.images)} image(s), "
             f"{len(self.cache_mounts)} lab cache mount(s), {len(self.build_records)} lab build-cache record(s)"),
            disk,
            f"kept (stand-in bases): {', '.join(self.kept_bases) or 'none'}",
            *([f"kept {len(self.kept_records)} lab build-cache record(s): other builds build on them or use them now"]
              if self.kept_records else []),
            *([f"registry: {self.registry}"] if self.registry else []),
            "everything else in Docker is untouched: only objects with the lab's label or recorded cache ids are selected",
        ])


def label_filter(also: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The Docker filter that matches what the lab made and nothing else (not images built FROM a stand-in).

    `also`: further labels every match must carry too (Docker ANDs label filters): a narrower selection.
    """
    return {"label": [f"{config.MADE_LABEL}={config.LAB_LABEL_VALUE}",
                      *(f"{key}={value}" for key, value in (also or {}).items())]}


def remove_lab_containers(client: Any, *, dry_run: bool = False, also: Mapping[str, str] | None = None) -> list[str]:
    """Remove (forced: running too) every container with the made label, and `also`'s; their names.

    The container part of `cleanup`: what a killed kernel left behind (basecamp.containers) goes here.
    `dry_run`: only list them.
    """
    names = []
    for c in client.containers.list(all=True, filters=label_filter(also)):
        if not dry_run:
            containers.remove(c)
        names.append(c.name)
    return names


def cleanup(include_bases: bool = False, dry_run: bool = False) -> CleanupReport:
    """Remove lab containers, images and build cache. Stand-in bases stay unless `include_bases` (slow to rebuild).

    `dry_run`: remove nothing, only report what would go.

    The user's own images, containers and build cache are never touched: containers and images are
    selected by the lab's label, build-cache records by the ids the lab's builds recorded creating
    (basecamp.buildcache). Images go before the cache records, so their bytes really come back.
    The lab's own registry (basecamp.registry, recorded in LAB_HOME/registry/) is stopped and its storage removed.
    """
    client = engine.client()
    report = CleanupReport(dry_run=dry_run)
    before = _select_cache_records(client, report)
    report.containers = remove_lab_containers(client, dry_run=dry_run)
    _remove_images(client, report, before, include_bases)
    if dry_run:
        if registry.folder().exists():
            report.registry = f"would stop the lab's registry and remove {registry.folder()}"
        return report
    report.registry = registry.stop()
    _prune_cache_records(client, report)
    return report


def _select_cache_records(client: Any, report: CleanupReport) -> dict[str, Any]:
    """Docker's disk usage now (returned); the lab's cache mounts and build records in it go into `report`."""
    # records a lab build created that BuildKit listed only after the build ended (basecamp.buildcache)
    late = buildcache.late_records(client) if report.dry_run else buildcache.claim_late_records(client)
    before = buildcache.disk_usage(client)
    report.disk_before_bytes = disk_total(before)
    lab_mounts = buildcache.lab_cache_mount_ids() | {r.id for r in late if r.is_cache_mount}
    lab_records = buildcache.lab_build_record_ids() | {r.id for r in late if not r.is_cache_mount}
    cache = [buildcache.CacheRecord.from_api(r) for r in before.get("BuildCache") or []]
    report.cache_mounts = [r.id for r in cache if r.is_cache_mount and r.id in lab_mounts]
    report.build_records = [r.id for r in cache if not r.is_cache_mount and r.id in lab_records]
    report.would_free_bytes = sum(r.size_bytes for r in cache if r.id in {*report.cache_mounts, *report.build_records}
                                  and not r.shared)
    return before


def _remove_images(client: Any, report: CleanupReport, before: dict[str, Any], include_bases: bool) -> None:
    """Remove the lab's images (the stand-in bases only with `include_bases`), newest first, into `report`."""
    images = client.images.list(filters=label_filter())
    # Stand-in bases: known by their tag *and* label (images built FROM them inherit the label).
    bases = [im for im in client.images.list(filters={"label": f"{config.STANDIN_LABEL}=true"})
             if set(im.tags) & {config.FULL_BASE, config.SLIM_BASE, config.DISTROLESS_BASE}]
    base_ids = {im.id for im in bases}
    if include_bases:
        images += [im for im in bases if im.id not in {i.id for i in images}]
    else:
        report.kept_bases = sorted(t for im in bases for t in im.tags)
    unique = {im["Id"]: int(im.get("Size") or 0) - max(int(im.get("SharedSize") or 0), 0)
              for im in before.get("Images") or []}
    # Children before parents: the newest first.
    images.sort(key=lambda im: im.attrs.get("Created", ""), reverse=True)
    for im in images:
        if im.id in base_ids and not include_bases:
            continue
        if not report.dry_run:
            client.images.remove(im.id, force=True)
        report.images.append(im.tags[0] if im.tags else im.short_id)
        report.would_free_bytes += unique.get(im.id, 0)


def _prune_cache_records(client: Any, report: CleanupReport) -> None:
    """BuildKit's records, now that no lab image holds their layers: the other records, then the mounts."""
    kept = set(buildcache.prune_lab_build_records(client).kept)
    buildcache.prune_lab_cache_mounts(client)
    kept |= {r.id for r in buildcache.remaining_lab_cache_mounts(client)}  # in use by a running build
    report.build_records = [r for r in report.build_records if r not in kept]
    report.cache_mounts = [r for r in report.cache_mounts if r not in kept]
    report.kept_records = sorted(kept)
    report.disk_after_bytes = disk_total(buildcache.disk_usage(client))


def fresh_start(why: str) -> str:
    """The state a learner has right after `./lab clean`, with an empty results file: `cleanup()`, then the
    results file moved aside (kept, named `results.jsonl.before-<why>-<time>`). One line says what went.

    Used where a notebook must run as if nothing had run before it (notebooks/conftest.py, tests/isolated.py).
    """
    report = cleanup()
    results = config.RESULTS_FILE
    line = report.summary().splitlines()[0]
    if results.exists() and results.stat().st_size:
        aside = results.with_name(f"{results.name}.before-{why}-{int(time.time())}")
        results.rename(aside)
        line += f"; results moved aside to {aside.name}"
    return line
