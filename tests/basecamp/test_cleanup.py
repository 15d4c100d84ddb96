import io
import tarfile

import pytest

from basecamp import config
from basecamp.cleanup import cleanup, label_filter


def test_filter_matches_the_lab_label_only() -> None:
    assert label_filter() == {"label": f"{config.LAB_LABEL}={config.LAB_LABEL_VALUE}"}


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
def test_cleanup_removes_lab_objects_and_spares_foreign_ones(docker_client) -> None:
    foreign = "annapurna-test-foreign/keep:1"
    lab = "annapurna-lab/cleanup-test:1"
    _tiny_image(docker_client, foreign, {"purpose": "not the lab's"})
    _tiny_image(docker_client, lab, config.lab_labels())
    container = docker_client.containers.create(lab, command=["/nothing"], labels=config.lab_labels())
    try:
        report = cleanup()
        tags = {t for im in docker_client.images.list() for t in im.tags}
        assert foreign in tags, "a foreign image must survive cleanup"
        assert lab not in tags and lab in report.images
        assert container.name in report.containers
        # the bases are kept unless asked for
        assert {config.FULL_BASE, config.SLIM_BASE} & tags
        assert not set(report.images) & {config.FULL_BASE, config.SLIM_BASE}
    finally:
        docker_client.images.remove(foreign, force=True)
