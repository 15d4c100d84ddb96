"""Remove what the lab created in Docker — only objects that carry the lab label."""

from __future__ import annotations

from dataclasses import dataclass, field

from basecamp import config


@dataclass
class CleanupReport:
    """What cleanup removed (names or short ids) and what it kept on purpose."""

    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    kept_bases: list[str] = field(default_factory=list)
    cache_mounts: list[str] = field(default_factory=list)
    reclaimed_bytes: int = 0


def label_filter() -> dict[str, str]:
    """The Docker filter that matches lab objects and nothing else."""
    return {"label": f"{config.LAB_LABEL}={config.LAB_LABEL_VALUE}"}


def cleanup(include_bases: bool = False) -> CleanupReport:
    """Remove lab containers, images and cache mounts. Stand-in bases stay unless `include_bases` (slow to rebuild).

    The user's own images, containers and build cache are never touched: every call here is
    filtered on the lab label.
    """
    from basecamp import buildcache, engine

    client = engine.client()
    report = CleanupReport()
    # BuildKit cache mounts the lab created (it keeps their ids; the cache itself has no labels).
    report.cache_mounts = [r.id for r in buildcache.remaining_lab_cache_mounts(client)]
    buildcache.prune_lab_cache_mounts(client)
    for c in client.containers.list(all=True, filters=label_filter()):
        c.remove(force=True)
        report.containers.append(c.name)
    images = client.images.list(filters=label_filter())
    # Stand-in bases: known by their tag *and* label (images built FROM them inherit the label).
    bases = [im for im in client.images.list(filters={"label": f"{config.STANDIN_LABEL}=true"})
             if set(im.tags) & {config.FULL_BASE, config.SLIM_BASE, config.DISTROLESS_BASE}]
    base_ids = {im.id for im in bases}
    if include_bases:
        images += [im for im in bases if im.id not in {i.id for i in images}]
    else:
        report.kept_bases = sorted(t for im in bases for t in im.tags)
    # Children before parents: the newest first.
    images.sort(key=lambda im: im.attrs.get("Created", ""), reverse=True)
    for im in images:
        if im.id in base_ids and not include_bases:
            continue
        name = im.tags[0] if im.tags else im.short_id
        size = int(im.attrs.get("Size", 0))
        client.images.remove(im.id, force=True)
        report.images.append(name)
        report.reclaimed_bytes += size
    return report
