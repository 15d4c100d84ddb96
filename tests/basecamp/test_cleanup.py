import io
import tarfile
import uuid

import pytest
from basecamp import buildcache, config
from basecamp.build import build
from basecamp.cleanup import cleanup, label_filter
from basecamp.display import NullDisplay
from test_buildcache import _cache_mount_dockerfile, _foreign_build, _mounts_for


def test_filter_matches_the_lab_label_only() -> None:
    assert label_filter() == {"label": f"{config.MADE_LABEL}={config.LAB_LABEL_VALUE}"}
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
    foreign_iid = _foreign_build(tmp_path / "foreign", foreign_target)  # yours: FROM the stand-in, untracked
    (foreign_cache,) = _mounts_for(docker_client, foreign_target)
    lab_tag = f"annapurna-lab/cleanup-cache-test:{run_id}"
    build(_cache_mount_dockerfile(tmp_path / "lab", lab_target), tmp_path / "lab", lab_tag, display=NullDisplay())
    (lab_cache,) = _mounts_for(docker_client, lab_target)
    assert lab_cache.id in buildcache.lab_cache_mount_ids()
    container = docker_client.containers.create(lab, command=["/nothing"], labels=config.made_labels())
    try:
        preview = cleanup(dry_run=True)
        assert preview.dry_run and lab in preview.images and container.name in preview.containers
        assert lab_cache.id in preview.cache_mounts and foreign_cache.id not in preview.cache_mounts
        assert foreign not in preview.images
        assert docker_client.images.get(lab) and docker_client.containers.get(container.id), "a dry run removes nothing"
        report = cleanup()
        assert _mounts_for(docker_client, lab_target) == [], "the lab's cache mount is gone"
        assert [r.id for r in _mounts_for(docker_client, foreign_target)] == [foreign_cache.id], "the foreign one survives"
        assert docker_client.images.get(foreign_iid), "the foreign build's image survives"
        tags = {t for im in docker_client.images.list() for t in im.tags}
        assert foreign in tags, "a foreign image must survive cleanup"
        assert lab not in tags and lab in report.images
        assert container.name in report.containers
        # the bases are kept unless asked for
        assert {config.FULL_BASE, config.SLIM_BASE} & tags
        assert not set(report.images) & {config.FULL_BASE, config.SLIM_BASE}
    finally:
        docker_client.images.remove(foreign, force=True)
        docker_client.images.remove(foreign_iid, force=True)
        for rec in _mounts_for(docker_client, foreign_target):  # what this test made, by id
            docker_client.api.prune_builds(filters={"id": [f"^{rec.id}$"]})
