"""Layer forensics: synthetic `docker save` tars (no engine), then one tiny image built for real."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import uuid

import pytest
from basecamp import config, forensics
from basecamp.errors import InputError
from test_build import BUSYBOX, ensure_busybox


def layer_tar(files: dict[str, int] | None = None, dirs: tuple[str, ...] = (), whiteouts: tuple[str, ...] = ()) -> bytes:
    """A layer tar: regular files of the given sizes, folders, and whiteout entries (names as written)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, size in (files or {}).items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"x" * size))
        for name in whiteouts:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return buf.getvalue()


def saved_image(layers: list[bytes], history: list[dict] | None = None, oci: bool = False) -> bytes:
    """A `docker save` tar of one image: layer tars, its config, manifest.json (last, as the engine writes it)."""
    names = [f"blobs/sha256/{i:064x}" if oci else f"{i:064x}/layer.tar" for i in range(len(layers))]
    cfg = json.dumps({"history": history or [{"created_by": f"RUN step {i}"} for i in range(len(layers))]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in zip(names, layers):
            add(name, data)
        add("cfg.json", cfg)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "Layers": names, "RepoTags": None}]).encode())
    return buf.getvalue()


def analyse_bytes(data: bytes, history: list[dict] | None = None) -> forensics.ImageForensics:
    layers, hist = forensics.read_saved(io.BytesIO(data))
    return forensics.analyse(layers, hist)


def test_a_file_deleted_later_wastes_its_bytes_in_the_layer_that_wrote_it() -> None:
    img = analyse_bytes(saved_image([
        layer_tar({"bin/sh": 100}, dirs=("bin",)),
        layer_tar({"tmp/cache/a.whl": 3000, "tmp/cache/b.whl": 1000, "app/venv/lib.py": 500}),
        layer_tar(whiteouts=("tmp/.wh.cache",)),
    ]))
    install, rm = img.layers[1], img.layers[2]
    assert (install.size_bytes, install.files_added, install.wasted_bytes) == (4500, 3, 4000)
    assert (rm.size_bytes, rm.files_removed, rm.wasted_bytes) == (0, 1, 0)
    assert img.total_bytes == 4600 and img.wasted_bytes == 4000
    assert img.efficiency == pytest.approx(1 - 4000 / 4600)
    assert install.wasted_paths[0].path == "tmp/cache/a.whl"
    assert install.created_by == "RUN step 1"


def test_overwritten_files_count_as_modified_and_waste_the_old_copy() -> None:
    img = analyse_bytes(saved_image([
        layer_tar({"etc/status": 200, "etc/keep": 50}),
        layer_tar({"etc/status": 300}),
    ]))
    assert img.layers[1].files_modified == 1 and img.layers[1].files_added == 0
    assert img.layers[0].wasted_bytes == 200 and img.layers[1].wasted_bytes == 0
    assert img.wasted_bytes == 200


def test_an_opaque_folder_hides_everything_below_it_from_earlier_layers_only() -> None:
    img = analyse_bytes(saved_image([
        layer_tar({"data/old/a": 10, "data/b": 20, "other/c": 5}),
        layer_tar({"data/new": 7}, whiteouts=("data/.wh..wh..opq",)),
    ]))
    assert img.layers[0].wasted_bytes == 30, "data/ was made opaque: a and b are gone, other/c stays"
    assert img.layers[1].wasted_bytes == 0 and img.layers[1].files_removed == 1


def test_no_waste_means_efficiency_one_and_empty_layers_are_fine() -> None:
    img = analyse_bytes(saved_image([layer_tar({"a": 1}), layer_tar()]))
    assert img.wasted_bytes == 0 and img.efficiency == 1.0
    empty = forensics.analyse([])
    assert empty.efficiency == 1.0 and 0.0 <= img.efficiency <= 1.0


def test_empty_layer_history_entries_are_skipped_and_the_oci_layout_reads_too() -> None:
    history = [{"created_by": "ADD file:abc in /"}, {"created_by": "/bin/sh -c #(nop)  ENV A=b", "empty_layer": True},
               {"created_by": "RUN /bin/sh -c echo hi # buildkit"}]
    img = analyse_bytes(saved_image([layer_tar({"a": 1}), layer_tar({"b": 2})], history, oci=True))
    assert [layer.created_by for layer in img.layers] == ["ADD file:abc in /", "RUN echo hi"]


def test_a_save_without_manifest_is_an_error() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    with pytest.raises(Exception, match="manifest.json"):
        forensics.read_saved(io.BytesIO(buf.getvalue()))


def test_top_paths_open_the_biggest_folder_first_and_collapse_single_child_chains() -> None:
    files = {"usr/local/lib/site/big/x": 800, "usr/local/lib/site/mid/y": 150, "var/z": 40, "etc/w": 10}
    top = forensics.top_paths(files, n=3)
    assert [(p.path, p.size_bytes) for p in top] == [("usr/local/lib/site/big/x", 800), ("usr/local/lib/site/mid/y", 150), ("var/z", 40)]
    assert forensics.top_paths({}, n=3) == []


def test_chunk_reader_reassembles_a_chunked_stream() -> None:
    data = saved_image([layer_tar({"a/b": 1234})])
    chunks = [data[i:i + 777] for i in range(0, len(data), 777)]
    layers, _ = forensics.read_saved(io.BufferedReader(forensics.ChunkReader(chunks)))
    assert layers[0].entries[0].path == "a/b" and layers[0].entries[0].size == 1234


def test_report_round_trips_through_the_cache_format() -> None:
    img = analyse_bytes(saved_image([layer_tar({"a/x": 10}), layer_tar(whiteouts=("a/.wh.x",))]))
    again = forensics.ImageForensics.from_dict(json.loads(json.dumps(img.as_dict())))
    assert again == img and again.layer_table()[0]["wasted_bytes"] == 10


def test_latest_forensics_reads_back_what_was_recorded() -> None:
    from basecamp.results import Record, load, record

    record(Record(step="01-naive", scenario="cold", wall_s=1.0))
    record(Record(step="01-naive", scenario=forensics.SCENARIO, size_bytes=100, wasted_bytes=10, efficiency=0.9))
    assert forensics.latest_forensics(["01"]) == [{"step": "01-naive", "size_bytes": 100, "wasted_bytes": 10,
                                                   "efficiency": 0.9, "image_id": "", "measurement": ""}]
    assert load("01-naive")[0].wasted_bytes is None, "old-style records still read, new fields default to None"


@pytest.mark.engine
def test_a_real_image_wastes_what_a_later_run_deletes(docker_client, tmp_path) -> None:
    from basecamp.build import build

    ensure_busybox(docker_client)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\n"
        f"RUN echo {uuid.uuid4().hex} > /token && dd if=/dev/zero of=/tmp/cache.bin bs=1024 count=300\n"
        "RUN rm /tmp/cache.bin\n"
    )
    tag = f"annapurna-lab/test-forensics:{uuid.uuid4().hex[:8]}"
    try:
        result = build(tmp_path / "Dockerfile", tmp_path, tag, display="none")
        img = forensics.image_forensics(tag)
        dd, rm = img.layers[-2], img.layers[-1]
        assert dd.created_by.startswith("RUN echo") and rm.created_by == "RUN rm /tmp/cache.bin"
        assert dd.wasted_bytes == 300 * 1024 and rm.files_removed == 1
        assert [p.path for p in dd.wasted_paths] == ["tmp/cache.bin"]
        assert 0 < img.efficiency < 1
        assert img.image_id == result.image_id
        cached = forensics.image_forensics(tag)
        assert cached.layers == img.layers and cached.seconds == img.seconds, "the second call reads the cache"
        assert (config.LAB_HOME / "cache" / "forensics").exists()
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(tag, force=True)
    with pytest.raises(InputError, match="no image"):
        forensics.image_forensics(tag)
