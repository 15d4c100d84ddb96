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
    #: True when nothing was removed: the lists say what *would* go.
    dry_run: bool = False

    def summary(self) -> str:
        """What went (or would go), in a few lines."""
        verb = "would remove" if self.dry_run else "removed"
        return "\n".join([
            (f"cleanup {verb}: {len(self.containers)} container(s), {len(self.images)} image(s), "
             f"{len(self.cache_mounts)} lab cache mount(s)"),
            f"kept (stand-in bases): {', '.join(self.kept_bases) or 'none'}",
            "everything else in Docker is untouched: only objects with the lab's label or cache id are selected",
        ])


def label_filter() -> dict[str, str]:
    """The Docker filter that matches what the lab made and nothing else (not images built FROM a stand-in)."""
    return {"label": f"{config.MADE_LABEL}={config.LAB_LABEL_VALUE}"}


def cleanup(include_bases: bool = False, dry_run: bool = False) -> CleanupReport:
    """Remove lab containers, images and cache mounts. Stand-in bases stay unless `include_bases` (slow to rebuild).

    `dry_run`: remove nothing, only report what would go.

    The user's own images, containers and build cache are never touched: every call here is
    filtered on the lab label.
    """
    from basecamp import buildcache, engine

    client = engine.client()
    report = CleanupReport(dry_run=dry_run)
    # BuildKit cache mounts the lab created (it keeps their ids; the cache itself has no labels).
    report.cache_mounts = [r.id for r in buildcache.remaining_lab_cache_mounts(client)]
    if not dry_run:
        buildcache.prune_lab_cache_mounts(client)
    for c in client.containers.list(all=True, filters=label_filter()):
        if not dry_run:
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
        if not dry_run:
            client.images.remove(im.id, force=True)
        report.images.append(name)
        report.reclaimed_bytes += size
    return report
