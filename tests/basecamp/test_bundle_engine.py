"""The workshop bundle on a real engine: an image's save/scrub/load roundtrip, and a build that installs
from the bundle's index served on the bridge gateway for the build's duration (basecamp/bundle.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path

import docker.errors
import pytest
from basecamp import bundle, config
from test_bundle import _wheel

pytestmark = pytest.mark.engine

FAKE_INDEX = "https://index.example.invalid/simple"


@pytest.fixture
def tiny_image(docker_client, tmp_path: Path):
    """A one-file image FROM scratch with the made label and the fake index in its ENV (as a stand-in bakes it)."""
    tag = f"{config.IMAGE_REPO_PREFIX}/bundle-test:{uuid.uuid4().hex[:12]}"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "hello.txt").write_text("hello from the bundle test\n")
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f"FROM scratch\nCOPY hello.txt /hello.txt\nENV POETRY_PYPI_MIRROR_URL={FAKE_INDEX} KEEP=1\n"
        f'LABEL {config.MADE_LABEL}="{config.LAB_LABEL_VALUE}"\n')
    image, _ = docker_client.images.build(path=str(tmp_path / "ctx"), tag=tag, rm=True)
    yield tag, image
    for ref in (tag, image.id):
        try:
            docker_client.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_save_scrub_load_roundtrip_of_a_tiny_image(docker_client, tiny_image, tmp_path: Path, monkeypatch) -> None:
    tag, original = tiny_image
    raw, root = tmp_path / "raw.tar", tmp_path / "bundle"
    subprocess.run(["docker", "save", "-o", str(raw), tag], check=True)
    (root / "images").mkdir(parents=True)
    bundle.rewrite_image_tar(raw, root / bundle.IMAGES, drop_url=FAKE_INDEX)
    assert not any(b"example.invalid" in data for _, data in bundle.image_configs(root / bundle.IMAGES))
    manifest = bundle.manifest_for(root, lab_commit="test", created="now", host_platform="h", container_platform="c", images=[tag])
    (root / bundle.MANIFEST).write_text(manifest.to_json())
    docker_client.images.remove(tag, force=True)

    monkeypatch.setattr(config, "LAB_HOME", tmp_path)  # the state file goes to this bundle, not the lab's
    state = bundle.load_images(root, say=lambda _: None)
    loaded = docker_client.images.get(tag)
    env = loaded.attrs["Config"]["Env"]
    assert f"PIP_INDEX_URL={state.url}" in env and f"POETRY_PYPI_MIRROR_URL={state.url}" in env and "KEEP=1" in env
    assert not any("example.invalid" in e for e in env)
    assert "example.invalid" not in json.dumps(docker_client.api.history(tag))
    assert loaded.labels[config.MADE_LABEL] == config.LAB_LABEL_VALUE
    assert loaded.labels[bundle.BUNDLE_LABEL] == state.bundle_sha256
    assert loaded.attrs["RootFS"]["Layers"] == original.attrs["RootFS"]["Layers"]  # the files are the same layer
    assert state.gateway == bundle.bridge_gateway() and bundle.in_use(root) == state
    assert bundle.from_bundle(loaded.labels)
    out = docker_client.containers.create(tag, command=["x"])
    try:
        chunks, _ = out.get_archive("/hello.txt")
        assert b"hello from the bundle test" in b"".join(chunks)
    finally:
        out.remove()


def test_a_build_installs_from_the_bundle_index_served_for_its_duration(docker_client, tmp_path: Path, monkeypatch) -> None:
    import importlib

    build_mod = importlib.import_module("basecamp.build")
    from basecamp.display import summary_line

    root = tmp_path / "bundle"
    bundle.write_simple_index([_wheel(tmp_path, "annapurna-bundle-probe", "0.1")], root / "index")
    gateway = bundle.bridge_gateway()
    port = bundle.free_port(gateway)
    (root / bundle.STATE_FILE).write_text(json.dumps({"gateway": gateway, "port": port, "bundle_sha256": "test"}))
    monkeypatch.setattr(bundle, "bundle_dir", lambda: root)
    env = " ".join(f"{k}={v}" for k, v in bundle.index_env(gateway, port).items())
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {config.SLIM_BASE}\nENV {env}\n"
        f"RUN echo {uuid.uuid4().hex} && pip install --no-cache-dir annapurna-bundle-probe==0.1 "
        "&& python -c 'import annapurna_bundle_probe as m; print(m.HELLO)'\n")
    tag = f"{config.IMAGE_REPO_PREFIX}/bundle-test:build-{uuid.uuid4().hex[:12]}"
    try:
        result = build_mod.build(ctx / "Dockerfile", ctx, tag, display="none")
    finally:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    assert result.package_index == bundle.PACKAGE_INDEX
    assert "(from the workshop bundle's index)" in summary_line(result)
    log = list(bundle.last_access_log)
    page = [line for line in log if "GET /simple/annapurna-bundle-probe/ " in line]
    wheel = [line for line in log if "GET /files/annapurna_bundle_probe-0.1-py3-none-any.whl" in line]
    assert page and wheel, log
    assert all(not line.startswith("127.") for line in page + wheel), "served to the build's container, not the host"
    with socket.socket() as s:  # the server lived for the build only
        assert s.connect_ex((gateway, port)) != 0
