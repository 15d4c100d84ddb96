"""buildcache: the lab remembers the cache mounts it creates and prunes those only.

Unit tests use a fake engine; the engine test proves a foreign cache mount survives a lab prune.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from basecamp import buildcache, config, engine
from basecamp.build import build
from basecamp.display import NullDisplay
from basecamp.errors import LabError

# --- a fake engine --------------------------------------------------------------------------------


def _rec(rec_id: str, kind: str = buildcache.CACHE_MOUNT, used: int = 1, desc: str = "",
         parent: str = "") -> dict[str, Any]:
    return {"ID": rec_id, "Type": kind, "Description": desc or f"cached mount /tmp/{rec_id}",
            "InUse": False, "Shared": False, "Size": 3, "CreatedAt": "2026-01-01T00:00:00Z",
            "LastUsedAt": f"2026-01-01T00:00:{used:02d}Z", "UsageCount": used, "Parent": parent}


class FakeAPI:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.prune_calls: list[dict[str, Any]] = []

    def prune_builds(self, filters: dict[str, list[str]] | None = None, **_: Any) -> dict[str, Any]:
        """Like Docker 20.10: the id filter is a regular expression; like BuildKit: a record in use, or with
        a child still there, stays, and a call repeats until it removes nothing more (children, then parents)."""
        import re

        self.prune_calls.append(filters or {})
        (pattern,) = (filters or {})["id"]
        assert pattern.startswith("^") and pattern.endswith("$"), "the id filter must be anchored"
        gone: list[str] = []
        while True:
            parents = {r["Parent"] for r in self.engine.cache}
            now = [r["ID"] for r in self.engine.cache
                   if re.search(pattern, r["ID"]) and not r["InUse"] and r["ID"] not in parents]
            if not now:
                break
            gone += now
            self.engine.cache = [r for r in self.engine.cache if r["ID"] not in now]
        return {"CachesDeleted": gone or None, "SpaceReclaimed": 3 * len(gone)}


class ExactIdAPI(FakeAPI):
    """An engine that reads the id filter as one exact id (not a regular expression)."""

    def prune_builds(self, filters: dict[str, list[str]] | None = None, **kw: Any) -> dict[str, Any]:
        (pattern,) = (filters or {})["id"]
        if "|" in pattern:
            self.prune_calls.append(filters or {})
            return {"CachesDeleted": None, "SpaceReclaimed": 0}
        return super().prune_builds(filters, **kw)


class FakeEngine:
    def __init__(self, cache: list[dict[str, Any]]) -> None:
        self.cache = cache
        self.api = FakeAPI(self)
        self.clock = "2026-06-01T12:00:00.000000001Z"  # the engine's SystemTime

    def df(self) -> dict[str, Any]:
        return {"BuildCache": [dict(r) for r in self.cache], "Images": []}

    def info(self) -> dict[str, Any]:
        return {"SystemTime": self.clock}


def test_track_remembers_what_a_build_creates_and_spots_foreign_use() -> None:
    dk = FakeEngine([_rec("foreign1"), _rec("layer1", kind="regular")])
    with buildcache.track(note="t", client=dk) as t:
        dk.cache.append(_rec("new1"))                  # the build creates a cache mount
        dk.cache.append(_rec("layer2", kind="regular"))  # and a layer record (not a cache mount)
        dk.cache[0] = _rec("foreign1", used=2)         # and uses a cache mount it did not create
    assert [r.id for r in t.created] == ["new1"] and [r.id for r in t.created_records] == ["layer2"]
    assert [r.id for r in t.used_foreign] == ["foreign1"]
    assert buildcache.lab_cache_mount_ids() == {"new1"}
    assert buildcache.lab_build_record_ids() == {"layer2"}, "the layer it created is the lab's too, kept apart"
    saved = json.loads(buildcache.state_file().read_text())["cache_mounts"]
    assert saved["new1"]["note"] == "t"
    # a later build that reuses the lab's own mount reports it as the lab's, not as foreign
    with buildcache.track(client=dk) as t2:
        dk.cache[-2] = _rec("new1", used=2)
    assert [r.id for r in t2.used_lab] == ["new1"] and not t2.used_foreign and not t2.created


def test_track_records_even_when_the_build_fails() -> None:
    dk = FakeEngine([])
    with pytest.raises(RuntimeError), buildcache.track(client=dk):
        dk.cache.append(_rec("half"))
        raise RuntimeError("build failed")
    assert buildcache.lab_cache_mount_ids() == {"half"}


def test_prune_removes_only_the_labs_and_forgets_what_is_gone() -> None:
    dk = FakeEngine([_rec("user1"), _rec("lab1"), _rec("lab2"), _rec("userlayer", kind="regular")])
    buildcache.remember([buildcache.CacheRecord.from_api(_rec(i)) for i in ("lab1", "lab2", "vanished")])
    dk.cache[2]["InUse"] = True  # lab2 is used by a running build: BuildKit will not remove it
    assert buildcache.prune_lab_cache_mounts(dk) == 1
    assert [r["ID"] for r in dk.cache] == ["user1", "lab2", "userlayer"]
    assert buildcache.lab_cache_mount_ids() == {"lab2"}, "a removed or vanished record is forgotten"
    assert [r.id for r in buildcache.remaining_lab_cache_mounts(dk)] == ["lab2"]
    named = {i for call in dk.api.prune_calls for i in call["id"][0].strip("^$()").split("|")}
    assert named == {"lab1", "lab2"}, "user records are never named"
    dk.cache[1]["InUse"] = False
    assert buildcache.prune_lab_cache_mounts(dk) == 1
    assert buildcache.lab_cache_mount_ids() == set() and [r["ID"] for r in dk.cache] == ["user1", "userlayer"]


def test_cleanup_prunes_the_labs_layer_records_children_first_and_never_the_users() -> None:
    dk = FakeEngine([_rec("base", kind="regular"), _rec("user-layer", kind="regular", parent="base"),
                     _rec("labmount")])
    with buildcache.track(client=dk):
        # the lab's build: a chain of three layers on the user's base, and a context record
        dk.cache += [_rec("l1", kind="regular", parent="base"), _rec("l2", kind="regular", parent="l1"),
                     _rec("l3", kind="regular", parent="l2"), _rec("ctx", kind="source.local")]
    assert buildcache.lab_build_record_ids() == {"l1", "l2", "l3", "ctx"}
    result = buildcache.prune_lab_build_records(dk)
    assert sorted(result.removed) == ["ctx", "l1", "l2", "l3"] and result.kept == []
    assert result.removed.index("l3") < result.removed.index("l2") < result.removed.index("l1"), "children first"
    assert result.reclaimed_bytes == 12
    assert [r["ID"] for r in dk.cache] == ["base", "user-layer", "labmount"], "the user's records and mounts stay"
    assert [c["id"] for c in dk.api.prune_calls] == [["^(l3|l2|l1|ctx)$"]], "one anchored call, deepest first"
    assert buildcache.lab_build_record_ids() == set()
    assert buildcache.prune_lab_build_records(dk).removed == [], "nothing remembered: nothing named"


def test_an_engine_that_reads_the_id_filter_exactly_gets_one_id_at_a_time() -> None:
    dk = FakeEngine([_rec("user", kind="regular")])
    dk.api = ExactIdAPI(dk)
    with buildcache.track(client=dk):
        dk.cache += [_rec("l1", kind="regular"), _rec("l2", kind="regular", parent="l1")]
    result = buildcache.prune_lab_build_records(dk)
    assert sorted(result.removed) == ["l1", "l2"] and [r["ID"] for r in dk.cache] == ["user"]
    assert [c["id"] for c in dk.api.prune_calls][:2] == [["^(l2|l1)$"], ["^l2$"]], "the batch, then one by one"


def test_a_lab_record_under_a_users_child_stays_remembered() -> None:
    dk = FakeEngine([])
    with buildcache.track(client=dk):
        dk.cache.append(_rec("lab-layer", kind="regular"))
    dk.cache.append(_rec("user-child", kind="regular", parent="lab-layer"))  # a later build of yours on top
    result = buildcache.prune_lab_build_records(dk)
    assert result.removed == [] and result.kept == ["lab-layer"]
    assert [r["ID"] for r in dk.cache] == ["lab-layer", "user-child"]
    assert buildcache.lab_build_record_ids() == {"lab-layer"}


def test_the_state_file_keeps_its_sections_apart() -> None:
    buildcache.remember([buildcache.CacheRecord.from_api(_rec("m")),
                         buildcache.CacheRecord.from_api(_rec("r", kind="regular"))], note="n")
    saved = json.loads(buildcache.state_file().read_text())
    assert set(saved["cache_mounts"]) == {"m"} and set(saved["build_records"]) == {"r"}
    assert buildcache.prune_lab_cache_mounts(FakeEngine([_rec("m")])) == 1
    assert buildcache.lab_build_record_ids() == {"r"}, "pruning the mounts leaves the other section alone"


def test_engine_times_are_read_to_the_microsecond() -> None:
    at = buildcache.parse_time("2026-12-01T18:32:07.906594476Z")
    assert at is not None and (at.second, at.microsecond, at.utcoffset().total_seconds()) == (7, 906594, 0)
    assert buildcache.parse_time("2026-12-01T18:32:07Z") < at  # type: ignore[operator]
    assert buildcache.parse_time("2026-12-01T19:32:07.5+01:00") < at  # type: ignore[operator]
    assert buildcache.parse_time("") is None and buildcache.parse_time("yesterday") is None


def _at(rec: dict[str, Any], created: str) -> dict[str, Any]:
    return {**rec, "CreatedAt": created}


def test_a_record_listed_only_after_its_build_is_claimed_by_the_build_window() -> None:
    """BuildKit may list a build's context/Dockerfile transfer only once the build's session let go of it."""
    dk = FakeEngine([_at(_rec("user-old", kind="source.local"), "2026-06-01T11:00:00Z")])
    dk.clock = "2026-06-01T12:00:00.100000000Z"
    with buildcache.track(note="step", client=dk) as t:
        dk.cache.append(_at(_rec("seen", kind="regular"), "2026-06-01T12:00:01.5Z"))
        dk.clock = "2026-06-01T12:00:04.000000000Z"
    assert [r.id for r in t.created_records] == ["seen"]
    # listed late: created inside the build's window; and a build of yours after it
    dk.cache.append(_at(_rec("late", kind="source.local"), "2026-06-01T12:00:02.25Z"))
    dk.cache.append(_at(_rec("yours", kind="source.local"), "2026-06-01T12:00:09Z"))
    dk.cache.append(_at(_rec("late-mount"), "2026-06-01T12:00:03Z"))
    assert {r.id for r in buildcache.late_records(dk)} == {"late", "late-mount"}
    dk.clock = "2026-06-01T12:00:10Z"
    assert buildcache.prune_lab_cache_mounts(dk) == 1, "a cold measurement's prune claims the late mount too"
    result = buildcache.prune_lab_build_records(dk)
    assert sorted(result.removed) == ["late", "seen"]
    assert sorted(r["ID"] for r in dk.cache) == ["user-old", "yours"], "records made outside a lab build stay"


def test_settled_build_windows_are_forgotten() -> None:
    dk = FakeEngine([])
    with buildcache.track(client=dk):
        pass
    assert len(json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS]) == 1
    buildcache.claim_late_records(dk)
    assert len(json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS]) == 1, "a fresh window stays"
    dk.clock = "2026-06-01T12:10:00Z"  # ten minutes on: anything it made is listed by now
    buildcache.claim_late_records(dk)
    assert json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS] == {}


def test_prune_refuses_an_engine_that_ignores_the_id_filter() -> None:
    class Greedy(FakeAPI):
        def prune_builds(self, filters: dict[str, list[str]] | None = None, **_: Any) -> dict[str, Any]:
            return {"CachesDeleted": [r["ID"] for r in self.engine.cache]}

    dk = FakeEngine([_rec("user1"), _rec("lab1")])
    dk.api = Greedy(dk)
    buildcache.remember([buildcache.CacheRecord.from_api(_rec("lab1"))])
    with pytest.raises(LabError, match="also removed"):
        buildcache.prune_lab_cache_mounts(dk)


def test_nothing_to_prune_touches_nothing() -> None:
    dk = FakeEngine([_rec("user1")])
    assert buildcache.prune_lab_cache_mounts(dk) == 0
    assert dk.api.prune_calls == []


def test_a_broken_state_file_is_treated_as_empty() -> None:
    path = buildcache.state_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert buildcache.lab_cache_mount_ids() == set()


# --- engine ---------------------------------------------------------------------------------------


def _cache_mount_dockerfile(folder: Path, target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Dockerfile"
    path.write_text(textwrap.dedent(f"""\
        FROM {config.SLIM_BASE}
        RUN --mount=type=cache,target={target} echo {uuid.uuid4().hex} > {target}/marker && ls {target}
    """))
    return path


@dataclass
class ForeignBuild:
    """What a build that is not the lab's left in the engine (the test removes it again)."""

    image_id: str
    #: Every build-cache record that appeared during it: its cache mount, layers and context.
    seen: set[str]
    #: Its time window in the engine's clock: a record BuildKit lists only later is found by it.
    window: tuple[str, str]

    def records(self, dk: Any) -> set[str]:
        """Its records now: those seen at once and those created in its window that showed up later."""
        return self.seen | {r.id for r in buildcache.created_within(buildcache.records(dk), [self.window])}


def _foreign_build(folder: Path, target: str) -> ForeignBuild:
    """A build that is not the lab's: plain CLI, no lab label, no tag, not tracked (nothing remembered)."""
    dockerfile = _cache_mount_dockerfile(folder, target)
    iid = folder / "iid"
    cli = engine.buildkit_cli()
    if cli is None:
        pytest.fail("this test needs a docker CLI that builds with BuildKit (see basecamp.engine.buildkit_cli)")
    dk = engine.client()
    start = buildcache.engine_now(dk)
    before = {r.id for r in buildcache.records(dk)}
    proc = subprocess.run(
        [*cli.argv, "--progress=plain", "--iidfile", str(iid), "-f", str(dockerfile), str(folder)],
        capture_output=True, text=True, env={**os.environ, **cli.env}, timeout=300, check=False,
    )
    created = {r.id for r in buildcache.records(dk)} - before
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ForeignBuild(iid.read_text().strip(), created, (start, buildcache.engine_now(dk)))


def _mounts_for(dk: Any, target: str) -> list[buildcache.CacheRecord]:
    return [r for r in buildcache.cache_mounts(dk) if f"cached mount {target} " in r.description]


def _require_slim(dk: Any) -> None:
    try:
        dk.images.get(config.SLIM_BASE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"this test needs {config.SLIM_BASE}: run ./lab prepare")


def _remove(dk: Any, images: list[str], records: set[str], targets: list[str]) -> None:
    """Remove what a test created — its images, then its build-cache records and cache mounts, by id — and nothing else."""
    for ref in images:
        try:
            dk.images.remove(ref, force=True)
        except docker.errors.APIError:
            pass
    mounts = {rec.id for target in targets for rec in _mounts_for(dk, target)}
    buildcache.prune_records(sorted({*records, *mounts}), dk)


@pytest.mark.engine
def test_a_foreign_cache_mount_survives_the_labs_prune(docker_client: Any, tmp_path: Path) -> None:
    dk = docker_client
    _require_slim(dk)
    run_id = uuid.uuid4().hex[:10]
    foreign_target, lab_target = f"/tmp/foreign-{run_id}", f"/tmp/lab-{run_id}"
    lab_tag = f"{config.IMAGE_REPO_PREFIX}/test-cachemount:{run_id}"
    images: list[str] = [lab_tag]
    records: set[str] = set()
    try:
        made = _foreign_build(tmp_path / "foreign", foreign_target)
        images.append(made.image_id)
        records |= made.records(dk)
        (foreign,) = _mounts_for(dk, foreign_target)
        assert foreign.id not in buildcache.lab_cache_mount_ids()

        # build() tracks what it makes, inside the engine lock: another notebook's build it waited for is not in it
        done = build(_cache_mount_dockerfile(tmp_path / "lab", lab_target), tmp_path / "lab", lab_tag,
                     display=NullDisplay())
        images.append(done.image_id)
        t = done.tracking
        assert t is not None
        (lab,) = _mounts_for(dk, lab_target)
        assert [r.id for r in t.created] == [lab.id] and lab.id in buildcache.lab_cache_mount_ids()
        records |= {r.id for r in t.created_records}

        # a tracked lab build that reuses the foreign mount (same target, so same id) says so
        reuse = _cache_mount_dockerfile(tmp_path / "reuse", foreign_target)
        done = build(reuse, tmp_path / "reuse", lab_tag, display=NullDisplay())
        images.append(done.image_id)
        again = done.tracking
        assert again is not None
        assert [r.id for r in again.used_foreign] == [foreign.id] and not again.created
        records |= {r.id for r in again.created_records}
        # ...and a cold (--no-cache) build of it would put the foreign mount at risk
        assert [r.id for r in buildcache.cache_mounts_at_risk(reuse.read_text(), dk)] == [foreign.id]
        assert buildcache.cache_mounts_at_risk(reuse.read_text().replace("type=cache,", "type=cache,id=x,"), dk) == []

        assert buildcache.prune_lab_cache_mounts(dk) >= 1
        assert _mounts_for(dk, lab_target) == [], "the lab's cache mount is pruned"
        assert [r.id for r in _mounts_for(dk, foreign_target)] == [foreign.id], "the foreign one survives"
        assert lab.id not in buildcache.lab_cache_mount_ids()
    finally:
        _remove(dk, images, records, targets=[foreign_target, lab_target])


@pytest.mark.engine
def test_no_cache_makes_buildkit_discard_same_id_cache_mounts(docker_client: Any, tmp_path: Path) -> None:
    """Why cold measurements check `cache_mounts_at_risk` first (moby/buildkit#1092)."""
    dk = docker_client
    _require_slim(dk)
    target = f"/tmp/nocache-{uuid.uuid4().hex[:10]}"
    images: list[str] = []
    records: set[str] = set()
    try:
        made = _foreign_build(tmp_path / "first", target)
        images.append(made.image_id)
        records |= made.records(dk)
        (first,) = _mounts_for(dk, target)
        images.append(build(_cache_mount_dockerfile(tmp_path / "second", target), tmp_path / "second",
                            f"{config.IMAGE_REPO_PREFIX}/test-cachemount:nocache", no_cache=True,
                            display=NullDisplay()).image_id)
        assert first.id not in [r.id for r in _mounts_for(dk, target)], \
            "this engine kept a same-id cache mount through --no-cache: the at-risk check is then overcautious"
    finally:
        _remove(dk, images, records, targets=[target])


def test_a_busy_disk_usage_endpoint_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two notebooks at once: the engine serves one `system df` at a time; the second waits, never fails."""
    import docker.errors

    calls: list[int] = []

    class Busy:
        def df(self) -> dict[str, Any]:
            calls.append(1)
            if len(calls) < 3:
                raise docker.errors.APIError("500 Server Error: a disk usage operation is already running")
            return {"BuildCache": []}

    monkeypatch.setattr("time.sleep", lambda _s: None)
    assert buildcache.records(Busy()) == [] and len(calls) == 3


# --- a cold measurement empties its own Dockerfile's cache mounts only (issue 17) ----------------------

_STEP6 = "FROM x\nRUN --mount=type=cache,id=annapurna-lab-poetry,target=/tmp/poetry_cache poetry install\n"
_STEP9 = "FROM x\nRUN --mount=type=cache,id=annapurna-lab-poetry-hardened,target=/tmp/poetry_cache poetry install\n"
_STEP5 = "FROM x\nRUN poetry install --no-root\n"
_NO_ID = "FROM x\nWORKDIR /app\nRUN --mount=type=cache,target=.cache/pip pip install x\n"


def _mount(rec_id: str, target: str) -> dict[str, Any]:
    return _rec(rec_id, desc=f"cached mount {target} from exec /bin/sh -c poetry install")


def test_track_remembers_which_mount_a_new_record_belongs_to() -> None:
    dk = FakeEngine([])
    with buildcache.track(client=dk, dockerfile_text=_STEP6):
        dk.cache.append(_mount("m6", "/tmp/poetry_cache"))
    with buildcache.track(client=dk, dockerfile_text=_NO_ID):
        dk.cache.append(_mount("mpip", "/app/.cache/pip"))
    saved = json.loads(buildcache.state_file().read_text())["cache_mounts"]
    assert saved["m6"]["mount_id"] == "annapurna-lab-poetry"
    assert saved["mpip"]["mount_id"] == ".cache/pip", "without id=, BuildKit's id is the target"


def test_a_cold_prune_of_a_dockerfile_without_cache_mounts_leaves_another_steps_mount() -> None:
    dk = FakeEngine([])
    with buildcache.track(client=dk, dockerfile_text=_STEP6):
        dk.cache.append(_mount("m6", "/tmp/poetry_cache"))
    with buildcache.track(client=dk, dockerfile_text=_STEP9):
        dk.cache.append(_mount("m9", "/tmp/poetry_cache"))
    assert buildcache.prune_lab_cache_mounts(dk, dockerfile_text=_STEP5) == 0
    assert {r["ID"] for r in dk.cache} == {"m6", "m9"}, "step 5 has no cache mount: nothing of step 6 or 9 goes"
    assert buildcache.remaining_lab_cache_mounts(dk, dockerfile_text=_STEP5) == []
    # step 9 has the same target as step 6 but its own id: its cold run empties its own mount only
    assert buildcache.prune_lab_cache_mounts(dk, dockerfile_text=_STEP9) == 1
    assert {r["ID"] for r in dk.cache} == {"m6"}
    assert [r.id for r in buildcache.remaining_lab_cache_mounts(dk, dockerfile_text=_STEP6)] == ["m6"]
    assert buildcache.prune_lab_cache_mounts(dk) == 1, "without a Dockerfile (cleanup): every lab mount goes"
    assert dk.cache == []


def test_a_record_remembered_without_its_mount_id_goes_by_its_target() -> None:
    dk = FakeEngine([_mount("old6", "/tmp/poetry_cache"), _mount("olduv", "/root/.cache/uv")])
    buildcache.remember([buildcache.CacheRecord.from_api(r) for r in dk.cache])  # no Dockerfile known
    assert buildcache.prune_lab_cache_mounts(dk, dockerfile_text=_STEP5) == 0
    assert buildcache.prune_lab_cache_mounts(dk, dockerfile_text=_STEP6) == 1
    assert [r["ID"] for r in dk.cache] == ["olduv"]


def test_a_build_whose_process_died_still_has_its_records_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel killed mid-build never reaches track()'s end: its open window still claims what the build made
    (up to DEAD_WINDOW_S after it began), and nothing made later."""
    dk = FakeEngine([])
    dk.clock = "2026-06-01T12:00:00Z"
    killed = buildcache.track(note="killed", client=dk)
    killed.__enter__()  # ...and the process dies here: no __exit__
    state = json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS]
    [window] = state.values()
    assert window["end"] == "" and window["pid"] == os.getpid()
    dk.cache.append(_at(_rec("ctx", kind="source.local"), "2026-06-01T12:00:01Z"))
    dk.clock = "2026-06-01T12:00:05Z"
    assert [r.id for r in buildcache.late_records(dk)] == ["ctx"], "still building: its window runs until now"
    monkeypatch.setattr(buildcache, "_alive", lambda pid: False)  # the process is gone
    dk.cache.append(_at(_rec("yours-much-later", kind="source.local"), "2026-06-01T13:00:00Z"))
    dk.clock = "2026-06-01T14:00:00Z"
    assert [r.id for r in buildcache.late_records(dk)] == ["ctx"], "a dead build's window ends DEAD_WINDOW_S in"
    claimed = buildcache.claim_late_records(dk)
    assert [r.id for r in claimed] == ["ctx"]
    assert "ctx" in buildcache.lab_build_record_ids() and "yours-much-later" not in buildcache.lab_build_record_ids()
    assert json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS] == {}, "closed and settled"


def test_a_running_builds_open_window_is_kept() -> None:
    dk = FakeEngine([])
    with buildcache.track(client=dk):
        dk.clock = "2026-06-01T13:00:00Z"
        buildcache.claim_late_records(dk)  # another process's cleanup meanwhile
        [window] = json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS].values()
        assert window["end"] == "" and window["pid"] == os.getpid()
    [window] = json.loads(buildcache.state_file().read_text())[buildcache.WINDOWS].values()
    assert window["end"] and "pid" not in window
