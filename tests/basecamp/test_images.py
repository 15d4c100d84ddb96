"""images: history cleaning and base matching (no engine), sizes and contents of real images (engine)."""

from __future__ import annotations

import time
import uuid
import zlib

import pytest
from basecamp import config, engine
from basecamp import images as images_mod
from basecamp.build import build
from basecamp.errors import InputError
from basecamp.gzipsize import save_gzip_size
from basecamp.images import (
    ImageInfo,
    Layer,
    base_prefix,
    clean_created_by,
    columns,
    compressed_size,
    image_contains,
    inspect_image,
    instruction_of,
    layers_of,
)
from test_build import BUSYBOX, ensure_busybox


@pytest.mark.parametrize(
    ("raw", "comment", "cleaned"),
    [
        ("/bin/sh -c #(nop)  ENV PATH=/usr/local/bin:/usr/bin", "", "ENV PATH=/usr/local/bin:/usr/bin"),
        ("/bin/sh -c #(nop) COPY file:68d5 in /o.txt ", "", "COPY file:68d5 in /o.txt"),
        ('/bin/sh -c #(nop)  CMD ["python3"]', "", 'CMD ["python3"]'),
        ("/bin/sh -c pip install poetry==1.4.2", "", "RUN pip install poetry==1.4.2"),
        ("|2 POETRY_VERSION=1.4 X=a b /bin/sh -c pip install poetry", "", "RUN pip install poetry"),
        ("RUN /bin/sh -c poetry install --without dev && rm -rf $POETRY_CACHE_DIR # buildkit", "buildkit.dockerfile.v0",
         "RUN poetry install --without dev && rm -rf $POETRY_CACHE_DIR"),
        ("RUN |1 POETRY_VERSION=2.1.3 /bin/sh -c pip install poetry==${POETRY_VERSION} # buildkit", "",
         "RUN pip install poetry==${POETRY_VERSION}"),
        ("RUN /bin/bash -o pipefail -c set -eux; apt-get update # buildkit", "", "RUN set -eux; apt-get update"),
        ("COPY /app/out.txt /app/out.txt # buildkit", "buildkit.dockerfile.v0", "COPY /app/out.txt /app/out.txt"),
        ("WORKDIR /app", "buildkit.dockerfile.v0", "WORKDIR /app"),
        ('CMD ["cat" "/app/out.txt"]', "buildkit.dockerfile.v0", 'CMD ["cat" "/app/out.txt"]'),
        ("", "Imported from -", "(Imported from -)"),
        ("", "", ""),
        ("# debian.sh --arch 'amd64' out/ 'bookworm' '@1717977600'", "debuerreotype 0.15",
         "# debian.sh --arch 'amd64' out/ 'bookworm' '@1717977600'"),
    ],
)
def test_clean_created_by(raw, comment, cleaned):
    assert clean_created_by(raw, comment) == cleaned


@pytest.mark.parametrize(
    ("cleaned", "instruction"),
    [("RUN pip install x", "RUN"), ("COPY a b", "COPY"), ("ENV A=b", "ENV"), ("(Imported from -)", "IMPORT"),
     ("", "IMPORT"), ("# debian.sh --arch amd64", "OTHER"), ('CMD ["python3"]', "CMD")],
)
def test_instruction_of(cleaned, instruction):
    assert instruction_of(cleaned) == instruction


def _entry(created: int, by: str, size: int) -> dict:
    return {"Created": created, "CreatedBy": by, "Size": size, "Comment": "", "Id": "<missing>"}


BASE_HISTORY = [_entry(1, "", 80_000_000), _entry(2, "/bin/sh -c #(nop)  ENV LANG=C.UTF-8", 0),
                _entry(3, "/bin/sh -c apt-get install -y python3", 40_000_000)]


def test_base_prefix_and_layers():
    mine = [*BASE_HISTORY, _entry(10, "WORKDIR /app", 0), _entry(11, "RUN /bin/sh -c pip install poetry # buildkit", 30_000_000)]
    assert base_prefix(mine, BASE_HISTORY) == 3
    assert base_prefix(mine, [*BASE_HISTORY[:2], _entry(3, "something else", 40_000_000)]) == -1
    assert base_prefix(BASE_HISTORY[:1], BASE_HISTORY) == -1
    layers = layers_of(mine, 3)
    assert [layer.from_base for layer in layers] == [True, True, True, False, False]
    assert layers[4] == Layer(4, "RUN pip install poetry", "RUN", 30_000_000, False, "11",
                              "RUN /bin/sh -c pip install poetry # buildkit")
    info = ImageInfo("x:1", "sha256:x", 150_000_000, None, layers, "base:1")
    assert (info.base_bytes, info.own_bytes) == (120_000_000, 30_000_000)
    table = info.layer_table(nonempty=True)
    assert [row["index"] for row in table] == [0, 2, 4]
    assert table[2] == {"index": 4, "instruction": "RUN", "created_by": "RUN pip install poetry",
                        "size_bytes": 30_000_000, "size": "30 MB", "source": "Dockerfile"}
    assert columns(table)["source"] == ["base", "base", "Dockerfile"]
    assert columns([]) == {}
    assert "base 120 MB, added 30 MB" in info.summary()


# --- engine ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sized_image(tmp_path_factory):
    """An image on busybox adding 3 MB of random bytes and 5 MB of zeros (plus a metadata layer)."""
    dk = engine.client()
    ensure_busybox(dk)
    root = tmp_path_factory.mktemp("sized")
    (root / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nENV MARKER={uuid.uuid4().hex}\n"
        "RUN dd if=/dev/urandom of=/random.bin bs=1000 count=3000 2>/dev/null\n"
        "RUN dd if=/dev/zero of=/zeros.bin bs=1000 count=5000 2>/dev/null\n"
    )
    tag = f"annapurna-lab/test-images:{uuid.uuid4().hex[:8]}"
    build(root / "Dockerfile", root, tag, display="none")
    yield tag
    dk.images.remove(tag, force=True)


def _lab_containers() -> list:
    return engine.client().containers.list(all=True, filters={"label": f"{config.LAB_LABEL}={config.LAB_LABEL_VALUE}"})


@pytest.mark.engine
def test_inspect_image_layers_and_sizes(sized_image, tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "COMPRESSED_CACHE_DIR", tmp_path / "cache")
    t0 = time.perf_counter()
    info = inspect_image(sized_image, base=BUSYBOX)
    first = time.perf_counter() - t0
    assert info.id == engine.client().images.get(sized_image).id
    assert [layer.instruction for layer in info.layers] == ["IMPORT", "ENV", "RUN", "RUN"]
    assert [layer.from_base for layer in info.layers] == [True, False, False, False]
    assert info.layers[2].created_by == "RUN dd if=/dev/urandom of=/random.bin bs=1000 count=3000 2>/dev/null"
    assert 8_000_000 <= info.own_bytes < 8_100_000
    assert info.base_bytes == engine.client().images.get(BUSYBOX).attrs["Size"]
    assert info.size_bytes == info.base_bytes + info.own_bytes
    assert info.labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    assert info.compressed_bytes is not None
    assert 3_000_000 < info.compressed_bytes < info.size_bytes  # random bytes do not compress, zeros do
    # Cached per image id: the second call does not stream the image again.
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    t0 = time.perf_counter()
    assert compressed_size(sized_image) == info.compressed_bytes
    assert time.perf_counter() - t0 < max(first / 2, 0.5)
    # Counted per layer: the image's three layers with content (busybox, random, zeros), none known before.
    assert info.gzip_count is not None and (info.gzip_count.segments, info.gzip_count.reused) == (3, 0)
    # Within a hair of what `docker save | gzip` writes with GNU gzip's own code (zlib, one stream).
    whole = zlib.compressobj(6, zlib.DEFLATED, 31)
    expected = sum(len(whole.compress(c)) for c in engine.client().images.get(sized_image).save(named=False))
    expected += len(whole.flush())
    assert abs(info.compressed_bytes - expected) / expected < 0.002


@pytest.mark.engine
def test_a_layer_is_compressed_once_whatever_image_it_is_in(sized_image, tmp_path, monkeypatch):
    """A second image on the same layers counts only its own new layer; the shared ones come from the cache."""
    monkeypatch.setattr(images_mod, "COMPRESSED_CACHE_DIR", tmp_path / "cache")
    first = inspect_image(sized_image).gzip_count
    dk = engine.client()
    root = tmp_path / "child"
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM {sized_image}\nRUN head -c 2000000 /random.bin > /again.bin\n")
    child = f"annapurna-lab/test-images:child-{uuid.uuid4().hex[:8]}"
    build(root / "Dockerfile", root, child, display="none")
    try:
        count = inspect_image(child).gzip_count
        assert first is not None and count is not None
        assert (count.segments, count.reused) == (4, 3)
        assert count.reused_bytes > 8_000_000 and count.compressed_now_bytes < 2_200_000 + 100_000
        assert "3 of 4 layers" in count.line() and "counted before" in count.line()
        # the same number as counting everything again with no cache
        fresh = save_gzip_size(dk.images.get(child).save(named=False), cache_dir=None)
        assert fresh.compressed_bytes == images_mod.compressed_size(child) and fresh.reused == 0
    finally:
        dk.images.remove(child, force=True)


@pytest.mark.engine
def test_inspect_image_without_base_or_compression(sized_image):
    info = inspect_image(sized_image, compressed=False)
    assert info.compressed_bytes is None and info.base_ref is None
    assert not any(layer.from_base for layer in info.layers) and info.base_bytes == 0


@pytest.mark.engine
def test_inspect_image_errors(sized_image):
    with pytest.raises(InputError, match="no image"):
        inspect_image("annapurna-lab/does-not-exist:never", compressed=False)
    with pytest.raises(InputError, match="not built on"):
        inspect_image(BUSYBOX, compressed=False, base=sized_image)


@pytest.mark.engine
def test_image_contains(sized_image):
    before = {c.id for c in _lab_containers()}
    assert image_contains(sized_image, "/random.bin")
    assert image_contains(sized_image, "/bin")  # a folder: stat only, nothing copied
    assert not image_contains(sized_image, "/usr/bin/gcc")
    assert image_contains(sized_image, "httpd")
    assert not image_contains(sized_image, "poetry")
    assert {c.id for c in _lab_containers()} == before  # every throwaway container removed
