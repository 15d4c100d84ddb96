"""BuildKit cache records the lab created (cache mounts, layers, contexts): found, remembered, and
pruned. Nothing else is touched.

A `RUN --mount=type=cache,target=...` keeps its files in a BuildKit cache record of type
"exec.cachemount", outside every image. `--no-cache` does not empty it, so a *cold* measurement
of a step that uses one must remove it first. BuildKit's cache records carry no labels, so the
lab cannot find its own by a label filter the way `./lab clean` finds its images. Instead:

- `track()` wraps a lab build. It lists the engine's build-cache records before and after the
  build (the docker SDK's `client.df()["BuildCache"]`) and remembers the IDs of the cache-mount
  records that appeared during it, in LAB_HOME/buildcache/cache-mounts.json. It also reports the
  cache-mount records the build *used* that the lab did not create (their `UsageCount` or
  `LastUsedAt` moved): a cold measurement that used one is not cold.
- It also remembers every other record the build created (layers, context transfers, ...) in the
  same file: `prune_lab_build_records()` removes those for `./lab clean`, so the disk a build
  took comes back, and records your builds created are never named.
- A record can show up in the disk-usage list only *after* its build ended. Seen here once in a
  whole `./lab test` run: a build's Dockerfile transfer (a "local source" record, created
  mid-build) was missing from the list taken just after the build and listed later (probably
  hidden while the build's session still held an equal record). So `track()` also remembers
  the build's time window in the engine's own clock, and `claim_late_records()` — run by
  cleanup and before a cold measurement — makes every record *created* inside a lab build's
  window the lab's.
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from basecamp import config, dockerparse
from basecamp.errors import LabError

CACHE_MOUNT = "exec.cachemount"
_DESCRIPTION = re.compile(r"^cached mount (\S+) from ")


@dataclass(frozen=True)
class CacheMountSpec:
    """A `RUN --mount=type=cache,...` of a Dockerfile: where it mounts, and its explicit id if any."""

    target: str
    id: str | None = None


def cache_mount_specs(dockerfile_text: str) -> list[CacheMountSpec]:
    """The cache mounts a Dockerfile's RUN instructions use, in order."""
    return mount_specs(dockerparse.parse(dockerfile_text))


def mount_specs(model: dockerparse.Dockerfile) -> list[CacheMountSpec]:
    """`cache_mount_specs` of a Dockerfile already parsed (basecamp.dockerparse)."""
    return [CacheMountSpec(target=m.target, id=m.id) for ins in model.instructions
            if ins.keyword == "RUN" for m in ins.mounts if m.type == "cache" and m.target]


def _specs(dockerfile: str | dockerparse.Dockerfile) -> list[CacheMountSpec]:
    """The cache mounts of a Dockerfile given as its text or as its parsed model."""
    return cache_mount_specs(dockerfile) if isinstance(dockerfile, str) else mount_specs(dockerfile)


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
    #: The record this one was built on ("" for none); a parent goes only after its children.
    parent: str = ""
    #: Also part of an image: the image's layers keep these bytes after the record goes.
    shared: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> CacheRecord:
        parents = data.get("Parents") or [data.get("Parent") or ""]  # "Parent" before API 1.42
        return cls(
            id=str(data.get("ID", "")), type=str(data.get("Type", "")),
            description=str(data.get("Description", "")), in_use=bool(data.get("InUse")),
            size_bytes=int(data.get("Size") or 0), created_at=str(data.get("CreatedAt") or ""),
            last_used_at=str(data.get("LastUsedAt") or ""), usage_count=int(data.get("UsageCount") or 0),
            parent=str(parents[0] or ""), shared=bool(data.get("Shared")),
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
    #: Other records that appeared during the build (layers, context...): also remembered as the lab's.
    created_records: list[CacheRecord] = field(default_factory=list)


@dataclass
class PruneResult:
    """What a prune of the lab's remembered records did."""

    #: IDs of the records removed.
    removed: list[str] = field(default_factory=list)
    #: Bytes the engine says it reclaimed.
    reclaimed_bytes: int = 0
    #: The lab's records the engine kept (in use by a running build): still remembered.
    kept: list[str] = field(default_factory=list)


def state_file() -> Path:
    """Where the IDs of the lab's build-cache records are kept (read at call time: tests move LAB_HOME)."""
    return config.LAB_HOME / "buildcache" / "cache-mounts.json"


#: The state file's sections: cache mounts (pruned before cold measurements and by cleanup), and every
#: other record a lab build created (pruned by cleanup only).
MOUNTS, OTHERS = "cache_mounts", "build_records"
#: The time windows of the lab's builds, in the engine's clock: {key: {"start", "end", "note"}}.
WINDOWS = "build_windows"
#: A record shows up late by seconds; a window older than this has had its late records claimed.
WINDOW_KEEP_S = 300.0
#: A window opened by a process that died mid-build (a killed kernel) ends at most this long after it
#: began: the build was cancelled when its process died (basecamp.build), so what it made is older.
DEAD_WINDOW_S = 900.0


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def _span(window: dict[str, Any], now: str) -> tuple[str, str]:
    """A window's (start, end): a window still open ends now, or, when its process died, at most
    DEAD_WINDOW_S after it began."""
    start, end = str(window.get("start", "")), str(window.get("end", ""))
    if end:
        return start, end
    if _alive(window.get("pid")):
        return start, now
    began, at = parse_time(start), parse_time(now)
    if began and at and (at - began).total_seconds() > DEAD_WINDOW_S:
        return start, (began + timedelta(seconds=DEAD_WINDOW_S)).isoformat()
    return start, now


def parse_time(value: str) -> datetime | None:
    """An engine timestamp (RFC 3339, nanoseconds, `Z`) as an aware datetime; None when unreadable."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value.strip())
    if not m:
        return None
    frac = (m[2] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m[3] == "Z" else m[3]
    return datetime.fromisoformat(f"{m[1]}.{frac}{zone}")


def engine_now(client: Any | None = None) -> str:
    """The engine's clock (`docker info`'s SystemTime): build windows are compared with record times in it."""
    try:
        value = str(_client(client).info().get("SystemTime") or "")
    except Exception:  # noqa: BLE001  # a fake or an old engine: the host's clock is the best there is
        value = ""
    return value if parse_time(value) else datetime.now(UTC).isoformat()


def created_within(recs: list[CacheRecord], windows: list[tuple[str, str]]) -> list[CacheRecord]:
    """The records whose creation time lies inside one of these (start, end) windows."""
    spans = [(a, b) for a, b in ((parse_time(x), parse_time(y)) for x, y in windows) if a and b]
    chosen = []
    for rec in recs:
        at = parse_time(rec.created_at)
        if at and any(a <= at <= b for a, b in spans):
            chosen.append(rec)
    return chosen


def _client(client: Any | None) -> Any:
    if client is not None:
        return client
    from basecamp import engine  # here, not above: it loads the docker SDK

    return engine.client()


#: The engine answers one disk-usage request at a time ("a disk usage operation is already running"):
#: two notebooks (or a notebook and `docker system df`) at once wait their turn this long.
DF_BUSY_WAIT_S = 120.0


def disk_usage(client: Any | None = None) -> dict[str, Any]:
    """The engine's disk-usage answer (`docker system df`); waits while another disk-usage request runs."""
    import docker.errors  # here, not above: the docker SDK loads only when an engine is asked

    dk = _client(client)
    deadline = time.monotonic() + DF_BUSY_WAIT_S
    while True:
        try:
            return dict(dk.df())
        except docker.errors.APIError as exc:
            if "already running" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def records(client: Any | None = None) -> list[CacheRecord]:
    """Every build-cache record the engine has (all types)."""
    return [CacheRecord.from_api(r) for r in disk_usage(client).get("BuildCache") or []]


def cache_mounts(client: Any | None = None) -> list[CacheRecord]:
    """The engine's cache-mount records (anyone's)."""
    return [r for r in records(client) if r.is_cache_mount]


@contextmanager
def _locked_state(section: str = MOUNTS) -> Iterator[dict[str, dict[str, Any]]]:
    """One section of the remembered records {id: details}, read and written back under an exclusive lock."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                doc = {k: dict(v) for k, v in json.loads(path.read_text()).items()}
            except (OSError, ValueError, AttributeError, TypeError):
                doc = {}
            known = doc.setdefault(section, {})
            before = json.dumps(known, sort_keys=True)
            yield known
            if json.dumps(known, sort_keys=True) != before:
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
                tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lab_cache_mount_ids() -> set[str]:
    """IDs of the cache-mount records the lab created (as remembered; some may be gone already)."""
    with _locked_state() as known:
        return set(known)


def lab_build_record_ids() -> set[str]:
    """IDs of the other build-cache records (not cache mounts) the lab's builds created."""
    with _locked_state(OTHERS) as known:
        return set(known)


def _target_matches(where: str, target: str) -> bool:
    """A record's mount path against a Dockerfile's `target=` (a relative target shows joined to the WORKDIR)."""
    return where == target or (not target.startswith("/") and where.endswith("/" + re.sub(r"^(\./)+", "", target)))


def mount_ids(dockerfile_text: str | dockerparse.Dockerfile) -> set[str]:
    """The cache-mount ids a Dockerfile (text or model) uses: each mount's `id=`, or its target when it has none
    (BuildKit's default)."""
    return {spec.id or spec.target for spec in _specs(dockerfile_text)}


def _mount_id(rec: CacheRecord, mounts: list[CacheMountSpec]) -> str | None:
    """The id of the Dockerfile mount a new cache-mount record belongs to, when exactly one mount fits."""
    where = rec.mount_target
    fitting = {spec.id or spec.target for spec in mounts if where is not None and _target_matches(where, spec.target)}
    return fitting.pop() if len(fitting) == 1 else None


def remember(created: list[CacheRecord], note: str = "", mounts: list[CacheMountSpec] | None = None) -> None:
    """Remember these records as the lab's (cache mounts and other records in their own sections).

    `mounts`: the cache mounts of the Dockerfile that was built. A new cache-mount record is
    remembered with the id of the mount it belongs to, so a cold measurement can empty the
    cache mounts of its own Dockerfile and leave the other steps' alone.
    """
    seen = datetime.now(UTC).isoformat(timespec="seconds")
    for section, chosen in ((MOUNTS, [r for r in created if r.is_cache_mount]),
                            (OTHERS, [r for r in created if not r.is_cache_mount])):
        if not chosen:
            continue
        with _locked_state(section) as known:
            for rec in chosen:
                known[rec.id] = {"description": rec.description, "created_at": rec.created_at, "seen_at": seen,
                                 "note": note}
                mount_id = _mount_id(rec, mounts or []) if section == MOUNTS else None
                if mount_id:
                    known[rec.id]["mount_id"] = mount_id


@contextmanager
def track(note: str = "", client: Any | None = None, dockerfile_text: str | dockerparse.Dockerfile = "",
          ) -> Iterator[Tracking]:
    """Wrap a lab build: the cache-mount records it creates are remembered as the lab's.

    `note` is stored beside each record (e.g. the image tag); `dockerfile_text`, the Dockerfile
    being built (its text, or its parsed model), gives each new cache-mount record the id of its
    mount (see `remember`). The yielded Tracking is filled in when the block ends, also when the
    build fails (what it created is still the lab's). Two disk-usage queries: one before, one after.
    """
    dk = _client(client)
    started = engine_now(dk)
    before = {r.id: r for r in records(dk)}
    result = Tracking()
    # the window opens now: if this process is killed mid-build (a kernel restart), the next
    # claim_late_records still knows when a lab build ran (see _span), and claims what it made
    key = f"{started}-{os.getpid()}-{os.urandom(3).hex()}"
    with _locked_state(WINDOWS) as windows:
        windows[key] = {"start": started, "end": "", "pid": os.getpid(), "note": note}
    try:
        yield result
    finally:
        after = records(dk)
        with _locked_state(WINDOWS) as windows:  # for the records BuildKit lists only later
            windows[key] = {"start": started, "end": engine_now(dk), "note": note}
        created = [r for r in after if r.id not in before]
        result.created = [r for r in created if r.is_cache_mount]
        result.created_records = [r for r in created if not r.is_cache_mount]
        remember(created, note, _specs(dockerfile_text) if dockerfile_text else None)
        lab = lab_cache_mount_ids()
        for rec in after:
            if not rec.is_cache_mount:
                continue
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


def late_records(client: Any | None = None) -> list[CacheRecord]:
    """Records created inside a lab build's window that the lab does not remember yet (listed late)."""
    dk = _client(client)
    now = engine_now(dk)
    with _locked_state(WINDOWS) as windows:
        spans = [_span(w, now) for w in windows.values()]
    known = lab_cache_mount_ids() | lab_build_record_ids()
    return created_within([r for r in records(dk) if r.id not in known], spans)


def claim_late_records(client: Any | None = None) -> list[CacheRecord]:
    """Remember the late-listed records of the lab's builds as the lab's; forget windows now settled."""
    dk = _client(client)
    late = late_records(dk)
    remember(late, note="created during a lab build, listed after it")
    clock = engine_now(dk)
    now = parse_time(clock)
    with _locked_state(WINDOWS) as windows:
        for key, w in list(windows.items()):
            if not w.get("end"):
                if _alive(w.get("pid")):
                    continue  # a build still running
                w = windows[key] = {**w, "end": _span(w, clock)[1], "pid": None,
                                    "note": f"{w.get('note', '')} (its process died mid-build)".strip()}
            end = parse_time(str(w.get("end", "")))
            if now is None or end is None or (now - end).total_seconds() > WINDOW_KEEP_S:
                del windows[key]
    return late


def _prune_matching(dk: Any, ids: list[str]) -> tuple[list[str], int]:
    """Prune these records with one anchored id filter (`^(a|b)$`); (ids removed, bytes reclaimed).

    BuildKit removes a chain's children and then their parents within one call. Refuses an engine
    that removed anything else (it would not have applied the filter as a regular expression).
    """
    pattern = f"^{ids[0]}$" if len(ids) == 1 else f"^({'|'.join(ids)})$"
    result = dk.api.prune_builds(filters={"id": [pattern]}, all=True) or {}
    deleted = list(result.get("CachesDeleted") or [])
    unexpected = [d for d in deleted if d not in ids]
    if unexpected:  # cannot happen with an anchored filter; say so loudly if it ever does
        raise LabError(f"pruning build-cache record(s) {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''} "
                       f"also removed {unexpected}: the engine did not apply the id filter as expected")
    return deleted, int(result.get("SpaceReclaimed") or 0)


#: Records pruned per call: one filter of this many ids (25 characters each) stays a short regex.
PRUNE_BATCH = 64


def prune_records(ids: list[str], client: Any | None = None) -> PruneResult:
    """Prune exactly these build-cache records, by anchored id filters, children before parents.

    Batches of PRUNE_BATCH ids go in one call each (an engine that reads the filter as one exact id
    removes nothing that way, and then each id goes alone). A parent becomes removable only once its
    children are gone, so passes repeat while they remove something. IDs the engine no longer has
    are skipped; ones it keeps (in use, or a parent of records not named) are in `.kept`.
    """
    dk = _client(client)
    result = PruneResult()
    left, batch = set(ids), PRUNE_BATCH
    while left:
        present = {r.id: r for r in records(dk)}
        left &= present.keys()
        ordered = sorted(left, key=lambda i: (-_depth(i, present), i))
        progress = False
        for at in range(0, len(ordered), batch):
            removed, space = _prune_matching(dk, ordered[at:at + batch])
            left -= set(removed)
            result.removed += removed
            result.reclaimed_bytes += space
            progress = progress or bool(removed)
        if not progress:
            if batch == 1 or len(ordered) <= 1:
                break
            batch = 1  # nothing went in batches: the engine may read the filter as one exact id
    result.kept = sorted(left)
    return result


def _prune_section(dk: Any, section: str, only: set[str] | None = None) -> PruneResult:
    """Prune the remembered records of one section (or those of them in `only`); forget those removed or gone."""
    with _locked_state(section) as known:
        chosen = set(known) if only is None else set(known) & only
        result = prune_records(sorted(chosen), dk)
        for rec_id in chosen - set(result.kept):
            del known[rec_id]
    return result


def _belongs_to(details: dict[str, Any], specs: list[CacheMountSpec]) -> bool:
    """Is this remembered cache-mount record one of these Dockerfile mounts?

    By the mount id remembered when a lab build created it; a record remembered without one (made
    before ids were kept, or listed only after its build) goes by the target its description names,
    so it is emptied whenever it might be this Dockerfile's.
    """
    if details.get("mount_id"):
        return str(details["mount_id"]) in {spec.id or spec.target for spec in specs}
    m = _DESCRIPTION.match(str(details.get("description", "")))
    return m is None or any(_target_matches(m[1], spec.target) for spec in specs)


def _chosen_mounts(dockerfile_text: str | dockerparse.Dockerfile | None) -> set[str] | None:
    """The remembered cache-mount records of this Dockerfile's mounts (None: no Dockerfile, so all of them)."""
    if dockerfile_text is None:
        return None
    specs = _specs(dockerfile_text)
    with _locked_state() as known:
        return {i for i, details in known.items() if _belongs_to(details, specs)}


def _depth(rec_id: str, present: dict[str, CacheRecord]) -> int:
    """How many ancestors a record has among `present` (deepest first = children before parents)."""
    depth, seen = 0, {rec_id}
    while (parent := present[rec_id].parent if rec_id in present else "") in present and parent not in seen:
        depth, rec_id = depth + 1, parent
        seen.add(parent)
    return depth


def prune_lab_cache_mounts(client: Any | None = None,
                           dockerfile_text: str | dockerparse.Dockerfile | None = None) -> int:
    """Remove the cache-mount records the lab created, and only those; return how many went.

    With `dockerfile_text` (a Dockerfile's text or parsed model), only those of that Dockerfile's mounts (a cold measurement of one
    step leaves the other steps' cache mounts as they are). Each is pruned by its own anchored id
    filter. Records that no longer exist are forgotten; records the engine would not remove (in
    use by a running build) stay remembered, and `remaining_lab_cache_mounts()` lists them.
    """
    dk = _client(client)
    claim_late_records(dk)
    return len(_prune_section(dk, MOUNTS, _chosen_mounts(dockerfile_text)).removed)


def prune_lab_build_records(client: Any | None = None) -> PruneResult:
    """Remove every other build-cache record the lab's builds created (layers, contexts...), only those.

    For cleanup: run it after the lab's images are gone, so the bytes really come back. Records
    your own builds created, or existed before a lab build, are never named.
    """
    dk = _client(client)
    claim_late_records(dk)
    return _prune_section(dk, OTHERS)


def remaining_lab_cache_mounts(client: Any | None = None,
                               dockerfile_text: str | dockerparse.Dockerfile | None = None) -> list[CacheRecord]:
    """The lab's cache-mount records that still exist in the engine (with `dockerfile_text`: that Dockerfile's)."""
    chosen = _chosen_mounts(dockerfile_text)
    lab = lab_cache_mount_ids() if chosen is None else chosen
    return [r for r in cache_mounts(client) if r.id in lab]


def cache_mounts_at_risk(dockerfile_text: str | dockerparse.Dockerfile, client: Any | None = None) -> list[CacheRecord]:
    """Cache mounts the lab did not create that a `--no-cache` build of this Dockerfile would discard.

    BuildKit releases every cache mount with the build's mount ids on `--no-cache`. A mount
    without `id=` has its target as id; a record's description names its target, so records the
    lab did not create, mounted at such a target, are at risk. (A relative target is compared
    by its end, since the record shows it joined to the WORKDIR.) Mounts with an explicit `id=`
    are not checked: only builds that name the same id share them.
    """
    targets = [spec.target for spec in _specs(dockerfile_text) if spec.id is None]
    if not targets:
        return []
    lab = lab_cache_mount_ids()
    at_risk = []
    for rec in cache_mounts(client):
        where = rec.mount_target
        if rec.id in lab or where is None:
            continue
        if any(_target_matches(where, t) for t in targets):
            at_risk.append(rec)
    return at_risk
