import io
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from basecamp import buildcache, config
from basecamp.build import build
from basecamp.cleanup import cleanup, label_filter
from basecamp.display import NullDisplay
from test_buildcache import (
    ForeignBuild,
    _cache_mount_dockerfile,
    _foreign_build,
    _mounts_for,
    _remove,
)


def test_filter_matches_the_lab_label_only() -> None:
    assert label_filter() == {"label": [f"{config.MADE_LABEL}={config.LAB_LABEL_VALUE}"]}
    # a narrower selection: the made label *and* another (Docker ANDs label filters)
    assert label_filter({"x.y": "1"}) == {"label": [f"{config.MADE_LABEL}={config.LAB_LABEL_VALUE}", "x.y=1"]}
    # what a stand-in carries (and passes on to images built FROM it) is not selected
    assert config.MADE_LABEL not in config.lab_labels() and config.MADE_LABEL in config.made_labels()


def _tiny_image(client, tag: str, labels: dict[str, str]) -> str:
    """An image from a one-file tarball: no base image, no registry."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"{tag}\n".encode()
        info = tarfile.TarInfo("marker.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
    res = client.api.import_image_from_data(buf.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1], changes=changes)
    return res


@pytest.mark.engine
def test_cleanup_removes_lab_objects_and_spares_foreign_ones(docker_client, tmp_path) -> None:
    """A full run's worth of lab objects plus cleanup: a foreign image and a foreign cache entry survive."""
    foreign = "annapurna-test-foreign/keep:1"
    lab = "annapurna-lab/cleanup-test:1"
    run_id = uuid.uuid4().hex[:10]
    foreign_target, lab_target = f"/tmp/foreign-clean-{run_id}", f"/tmp/lab-clean-{run_id}"
    _tiny_image(docker_client, foreign, {"purpose": "not the lab's"})
    _tiny_image(docker_client, lab, config.made_labels())
    foreign_build = _foreign_build(tmp_path / "foreign", foreign_target)  # yours: FROM the stand-in, untracked
    foreign_iid = foreign_build.image_id
    (foreign_cache,) = _mounts_for(docker_client, foreign_target)
    lab_tag = f"annapurna-lab/cleanup-cache-test:{run_id}"
    with buildcache.track(client=docker_client) as lab_build:  # (build() tracks it too; this shows what it made)
        build(_cache_mount_dockerfile(tmp_path / "lab", lab_target), tmp_path / "lab", lab_tag, display=NullDisplay())
    (lab_cache,) = _mounts_for(docker_client, lab_target)
    assert lab_cache.id in buildcache.lab_cache_mount_ids()
    lab_layers = {r.id for r in lab_build.created_records}
    assert lab_layers and lab_layers <= buildcache.lab_build_record_ids()
    foreign_records = _record_ids(docker_client) - buildcache.lab_build_record_ids() - buildcache.lab_cache_mount_ids()
    container = docker_client.containers.create(lab, command=["/nothing"], labels=config.made_labels())
    try:
        preview = cleanup(dry_run=True)
        assert preview.dry_run and lab in preview.images and container.name in preview.containers
        assert lab_cache.id in preview.cache_mounts and foreign_cache.id not in preview.cache_mounts
        assert lab_layers <= set(preview.build_records) and not foreign_records & set(preview.build_records)
        assert foreign not in preview.images
        assert docker_client.images.get(lab) and docker_client.containers.get(container.id), "a dry run removes nothing"
        report = cleanup()
        assert _mounts_for(docker_client, lab_target) == [], "the lab's cache mount is gone"
        assert [r.id for r in _mounts_for(docker_client, foreign_target)] == [foreign_cache.id], "the foreign one survives"
        left = _record_ids(docker_client)
        assert not lab_layers & left, "the lab build's layer records are gone"
        assert foreign_records <= left, "every record that was there before the lab build survives"
        assert docker_client.images.get(foreign_iid), "the foreign build's image survives"
        tags = {t for im in docker_client.images.list() for t in im.tags}
        assert foreign in tags, "a foreign image must survive cleanup"
        assert lab not in tags and lab in report.images
        assert container.name in report.containers
        # everything the lab made is gone, not only what this test made (the stand-in bases stay, by tag:
        # the distroless one is built by the lab's own build(), so it carries the made label too)
        left = [im.tags for im in docker_client.images.list(filters=label_filter())
                if not set(im.tags) & set(report.kept_bases)]
        assert left == [], left
        assert docker_client.containers.list(all=True, filters=label_filter()) == []
        # the bases are kept unless asked for
        assert {config.FULL_BASE, config.SLIM_BASE} & tags
        assert not set(report.images) & {config.FULL_BASE, config.SLIM_BASE}
    finally:  # what this test made, and only that
        _remove(docker_client, [foreign, foreign_iid], foreign_build.records(docker_client), targets=[foreign_target])


def _record_ids(client: Any) -> set[str]:
    return {r.id for r in buildcache.records(client)}


# --- the whole run: foreign objects planted first, a real cleanup after everything else -----------


@dataclass
class Foreign:
    """Docker objects a learner made themselves, before the lab ran: none may be touched."""

    image: str  # imported, no label
    built_image: str  # built FROM the stand-in (so it inherits its label) by a plain, untracked build
    container: str
    cache_mount: str
    build: ForeignBuild  # its records: the mount, layers and context transfers
    #: What the engine held before the run (and before these were planted): ids of records, images, containers.
    had_records: set[str]
    had_images: set[str]
    had_containers: set[str]


@pytest.fixture(scope="session")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    from basecamp import engine

    dk = engine.client()
    had = (_record_ids(dk), {im.id for im in dk.images.list(all=True)}, {c.id for c in dk.containers.list(all=True)})
    run_id = uuid.uuid4().hex[:10]
    tag, target = f"annapurna-test-foreign/whole-run:{run_id}", f"/tmp/foreign-run-{run_id}"
    _tiny_image(dk, tag, {"purpose": "not the lab's"})
    built = _foreign_build(tmp_path_factory.mktemp("foreign-run"), target)
    (mount,) = _mounts_for(dk, target)
    container = dk.containers.create(tag, command=["/nothing"], name=f"annapurna-test-foreign-{run_id}")
    yield Foreign(tag, built.image_id, container.id, mount.id, built, *had)
    container.remove(force=True)
    _remove(dk, [tag, built.image_id], built.records(dk), targets=[target])  # what the fixture made, by id


@pytest.mark.engine
@pytest.mark.run_first
def test_foreign_objects_are_planted_before_the_run(foreign: Foreign, docker_client) -> None:
    """(The first test of the session: the rest of the run, notebooks included, happens around these.)"""
    assert docker_client.images.get(foreign.image) and docker_client.images.get(foreign.built_image)
    assert docker_client.containers.get(foreign.container)
    made = foreign.build.records(docker_client)
    assert foreign.cache_mount in made and len(made) >= 2  # the mount and a layer at least


@pytest.mark.engine
@pytest.mark.run_last
def test_after_the_whole_run_a_cleanup_removes_the_labs_and_spares_the_foreign(
        foreign: Foreign, docker_client, request: pytest.FixtureRequest) -> None:
    """Tests, every notebook and the browser tests have built and run; now `./lab clean`'s cleanup."""
    planted_records = foreign.build.records(docker_client)
    report = cleanup()
    print(report.summary())
    request.config.annapurna_artifacts.append(f"cleanup after the whole run: {report.summary().splitlines()[0]}; "
                                              f"{report.summary().splitlines()[1]}")
    assert docker_client.images.get(foreign.image) and docker_client.images.get(foreign.built_image)
    assert docker_client.containers.get(foreign.container)
    left = {r.id: r for r in buildcache.records(docker_client)}
    assert planted_records <= left.keys(), f"foreign build-cache records removed: {sorted(planted_records - left.keys())}"
    assert docker_client.containers.list(all=True, filters=label_filter()) == []
    bases = {config.FULL_BASE, config.SLIM_BASE, config.DISTROLESS_BASE}
    assert [im.tags for im in docker_client.images.list(filters=label_filter()) if not set(im.tags) & bases] == []
    lab = buildcache.lab_build_record_ids() | buildcache.lab_cache_mount_ids()
    # a lab record may stay only as an ancestor of a record that is not the lab's (BuildKit keeps it)
    held: set[str] = set()
    for rec in (r for r in left.values() if r.id not in lab):
        while rec.parent in left and rec.parent not in held:
            held.add(rec.parent)
            rec = left[rec.parent]
    assert set(report.kept_records) == lab & left.keys() <= held, f"lab records left: {sorted(lab & left.keys())}"
    # nothing left behind: whatever the run made is gone, but for the planted foreign objects
    stray = [f"{r.id} {r.type} {r.description[:60]!r}" for r in left.values()
             if r.id not in foreign.had_records | planted_records | held]
    assert not stray, ("build-cache records made during the run are left, and no cleanup knows them (an untracked "
                       "build in a test, or a build of yours while the tests ran):\n" + "\n".join(stray))
    images = {im.id: im.tags for im in docker_client.images.list(all=True)}
    planted = {docker_client.images.get(ref).id for ref in (foreign.image, foreign.built_image)}
    assert {i: t for i, t in images.items() if i not in foreign.had_images | planted} == {}, "images left by the run"
    containers = {c.id: c.name for c in docker_client.containers.list(all=True)}
    assert {i: n for i, n in containers.items() if i not in foreign.had_containers | {foreign.container}} == {}, \
        "containers left by the run"
    if any(item.nodeid.startswith("notebooks/") for item in request.session.items):  # the series ran
        assert report.images and report.build_records, "a whole run leaves images and build cache to clean"
        assert report.freed_bytes > 0, report.summary()
