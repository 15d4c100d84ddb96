"""BuildKit cache mounts the lab created: found, remembered, and pruned. Nothing else is touched.

A `RUN --mount=type=cache,target=...` keeps its files in a BuildKit cache record of type
"exec.cachemount", outside every image. `--no-cache` does not empty it, so a *cold* measurement
of a step that uses one must remove it first. BuildKit's cache records carry no labels, so the
lab cannot find its own by a label filter the way `./lab clean` finds its images. Instead:

- `track()` wraps a lab build. It lists the engine's build-cache records before and after the
  build (the docker SDK's `client.df()["BuildCache"]`) and remembers the IDs of the cache-mount
  records that appeared during it, in LAB_HOME/buildcache/cache-mounts.json. It also reports the
  cache-mount records the build *used* that the lab did not create (their `UsageCount` or
  `LastUsedAt` moved): a cold measurement that used one is not cold.
- `prune_lab_cache_mounts()` removes the remembered records and only those, one at a time, with
  the engine API's build-cache prune and an `id` filter. Docker 20.10 hands that filter to
  BuildKit as a regular expression (`id~=<value>`), so the ID is anchored: `^<id>$` matches that
  record alone. A record in use by a running build is not removed (BuildKit skips it) and stays
  remembered; one that no longer exists is forgotten.

BuildKit shares a cache mount between *all* builds that use the same mount id (by default its
target path), yours and the lab's. Two consequences the lab guards against:

- A lab build that reuses a record your own builds created does not create one, so the lab never
  remembers, and never prunes, it; `track()` reports it in `used_foreign`.
- `--no-cache` makes BuildKit itself release *every* cache mount with the ids the build uses
  before it starts (moby/buildkit#1092, since Docker 19.03; checked on this engine, 20.10): a
  cold build therefore starts with empty cache mounts on its own, and would also discard a
  cache mount of yours with the same id. `cache_mounts_at_risk()` finds those (records the lab
  did not create whose mount target is one a Dockerfile uses without an explicit `id=`), so a
  cold measurement can refuse instead of destroying them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from basecamp import config
from basecamp.errors import LabError

CACHE_MOUNT = "exec.cachemount"
_DESCRIPTION = re.compile(r"^cached mount (\S+) from ")
_MOUNT_FLAG = re.compile(r"--mount=(\S+)")


@dataclass(frozen=True)
class CacheMountSpec:
    """A `RUN --mount=type=cache,...` of a Dockerfile: where it mounts, and its explicit id if any."""

    target: str
    id: str | None = None


def cache_mount_specs(dockerfile_text: str) -> list[CacheMountSpec]:
    """The cache mounts a Dockerfile's RUN instructions use, in order."""
    logical: list[str] = []
    current = ""
    for raw in dockerfile_text.splitlines():
        if not current and raw.lstrip().startswith("#"):
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    specs = []
    for line in logical:
        if not re.match(r"\s*RUN\s", line, re.IGNORECASE):
            continue
        for m in _MOUNT_FLAG.finditer(line):
            opts = dict(kv.partition("=")[::2] for kv in m[1].split(","))
            if opts.get("type") != "cache":
                continue
            target = opts.get("target") or opts.get("dst") or opts.get("destination") or ""
            if target:
                specs.append(CacheMountSpec(target=target, id=opts.get("id") or None))
    return specs


@dataclass(frozen=True)
class CacheRecord:
    """One BuildKit build-cache record, as the engine's disk-usage endpoint describes it."""

    id: str
    type: str
    description: str
    in_use: bool
    size_bytes: int
    created_at: str
    last_used_at: str
    usage_count: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> CacheRecord:
        return cls(
            id=str(data.get("ID", "")), type=str(data.get("Type", "")),
            description=str(data.get("Description", "")), in_use=bool(data.get("InUse")),
            size_bytes=int(data.get("Size") or 0), created_at=str(data.get("CreatedAt") or ""),
            last_used_at=str(data.get("LastUsedAt") or ""), usage_count=int(data.get("UsageCount") or 0),
        )

    @property
    def is_cache_mount(self) -> bool:
        return self.type == CACHE_MOUNT

    @property
    def mount_target(self) -> str | None:
        """The path a cache-mount record was mounted at ("cached mount <path> from exec ...")."""
        m = _DESCRIPTION.match(self.description)
        return m[1] if m and self.is_cache_mount else None


@dataclass
class Tracking:
    """What one tracked build did to the cache mounts: created some, maybe used others."""

    #: Cache-mount records that appeared during the build (now remembered as the lab's).
    created: list[CacheRecord] = field(default_factory=list)
    #: Cache-mount records that existed before, are not the lab's, and were used by the build.
    used_foreign: list[CacheRecord] = field(default_factory=list)
    #: The lab's own (remembered) cache-mount records the build used.
    used_lab: list[CacheRecord] = field(default_factory=list)


def state_file() -> Path:
    """Where the IDs of the lab's cache-mount records are kept (read at call time: tests move LAB_HOME)."""
    return config.LAB_HOME / "buildcache" / "cache-mounts.json"


def _client(client: Any | None) -> Any:
    if client is not None:
        return client
    from basecamp import engine

    return engine.client()


def records(client: Any | None = None, *, attempts: int = 20) -> list[CacheRecord]:
    """Every build-cache record the engine has (all types).

    The engine runs one disk-usage query at a time and refuses a second one ("a disk usage
    operation is already running") while another client's is under way: wait and ask again.
    """
    import time

    import docker.errors

    for attempt in range(attempts):
        try:
            data = _client(client).df().get("BuildCache") or []
            break
        except docker.errors.APIError as exc:
            if "already running" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return [CacheRecord.from_api(r) for r in data]


def cache_mounts(client: Any | None = None) -> list[CacheRecord]:
    """The engine's cache-mount records (anyone's)."""
    return [r for r in records(client) if r.is_cache_mount]


@contextmanager
def _locked_state() -> Iterator[dict[str, dict[str, Any]]]:
    """The remembered records {id: details}, read and written back under an exclusive lock."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                known = dict(json.loads(path.read_text()).get("cache_mounts", {}))
            except (OSError, ValueError, AttributeError):
                known = {}
            before = json.dumps(known, sort_keys=True)
            yield known
            if json.dumps(known, sort_keys=True) != before:
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps({"cache_mounts": known}, indent=1, sort_keys=True) + "\n")
                tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lab_cache_mount_ids() -> set[str]:
    """IDs of the cache-mount records the lab created (as remembered; some may be gone already)."""
    with _locked_state() as known:
        return set(known)


def remember(created: list[CacheRecord], note: str = "") -> None:
    """Remember these records as the lab's."""
    if not created:
        return
    seen = datetime.now(UTC).isoformat(timespec="seconds")
    with _locked_state() as known:
        for rec in created:
            known[rec.id] = {"description": rec.description, "created_at": rec.created_at, "seen_at": seen,
                             "note": note}


@contextmanager
def track(note: str = "", client: Any | None = None) -> Iterator[Tracking]:
    """Wrap a lab build: the cache-mount records it creates are remembered as the lab's.

    `note` is stored beside each record (e.g. the image tag). The yielded Tracking is filled in
    when the block ends, also when the build fails (what it created is still the lab's).
    """
    dk = _client(client)
    before = {r.id: r for r in cache_mounts(dk)}
    result = Tracking()
    try:
        yield result
    finally:
        after = cache_mounts(dk)
        result.created = [r for r in after if r.id not in before]
        remember(result.created, note)
        lab = lab_cache_mount_ids()
        for rec in after:
            old = before.get(rec.id)
            if old is None or (old.usage_count, old.last_used_at) == (rec.usage_count, rec.last_used_at):
                continue
            (result.used_lab if rec.id in lab else result.used_foreign).append(rec)


def adopt(ids: list[str], client: Any | None = None) -> list[CacheRecord]:
    """Declare existing cache-mount records the lab's: for records a lab build made without `track()`.

    Only for records you know the lab created (e.g. by a notebook's build before every lab build
    was tracked): from then on `prune_lab_cache_mounts()` removes them. Raises LabError for an id
    that is not a cache-mount record in the engine.
    """
    present = {r.id: r for r in cache_mounts(client)}
    missing = [i for i in ids if i not in present]
    if missing:
        raise LabError(f"no cache-mount record with id {', '.join(missing)} in the engine")
    chosen = [present[i] for i in ids]
    remember(chosen, note="adopted")
    return chosen


def prune_lab_cache_mounts(client: Any | None = None) -> int:
    """Remove the cache-mount records the lab created, and only those; return how many went.

    Each is pruned by its own anchored id filter. Records that no longer exist are forgotten;
    records the engine would not remove (in use by a running build) stay remembered, and
    `remaining_lab_cache_mounts()` lists them.
    """
    dk = _client(client)
    removed = 0
    with _locked_state() as known:
        present = {r.id: r for r in cache_mounts(dk)}
        for rec_id in sorted(known):
            if rec_id not in present:
                del known[rec_id]
                continue
            result = dk.api.prune_builds(filters={"id": [f"^{rec_id}$"]}) or {}
            deleted = result.get("CachesDeleted") or []
            unexpected = [d for d in deleted if d != rec_id]
            if unexpected:  # cannot happen with an anchored filter; say so loudly if it ever does
                raise LabError(f"pruning build-cache record {rec_id} also removed {unexpected}: "
                               "the engine did not apply the id filter as expected")
            if rec_id in deleted:
                removed += 1
                del known[rec_id]
    return removed


def remaining_lab_cache_mounts(client: Any | None = None) -> list[CacheRecord]:
    """The lab's cache-mount records that still exist in the engine."""
    lab = lab_cache_mount_ids()
    return [r for r in cache_mounts(client) if r.id in lab]


def cache_mounts_at_risk(dockerfile_text: str, client: Any | None = None) -> list[CacheRecord]:
    """Cache mounts the lab did not create that a `--no-cache` build of this Dockerfile would discard.

    BuildKit releases every cache mount with the build's mount ids on `--no-cache`. A mount
    without `id=` has its target as id; a record's description names its target, so records the
    lab did not create, mounted at such a target, are at risk. (A relative target is compared
    by its end, since the record shows it joined to the WORKDIR.) Mounts with an explicit `id=`
    are not checked: only builds that name the same id share them.
    """
    targets = [spec.target for spec in cache_mount_specs(dockerfile_text) if spec.id is None]
    if not targets:
        return []
    lab = lab_cache_mount_ids()
    at_risk = []
    for rec in cache_mounts(client):
        where = rec.mount_target
        if rec.id in lab or where is None:
            continue
        if any(where == t or (not t.startswith("/") and where.endswith("/" + re.sub(r"^(\./)+", "", t)))
               for t in targets):
            at_risk.append(rec)
    return at_risk
