"""gzipsize: the gzip size of a tar stream, each large member counted once by content (no engine)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

from basecamp import gzipsize
from basecamp.gzipsize import METHOD, SEGMENT_MIN, save_gzip_size


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _texty(n: int, seed: int) -> bytes:
    words = [os.urandom(3).hex().encode() for _ in range(4000)]
    return b" ".join(words[(i * 7919 + seed) % 4000] for i in range(n // 6))[:n]


def _chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_tar_counts_within_a_hair_of_gzip(tmp_path):
    # two "layers" (one over two 4 MiB blocks), small files around them: config, manifest
    stream = _tar({"cfg.json": b'{"a": 1}' * 50, "aaa/layer.tar": _texty(9 * 1024 * 1024, 1),
                   "bbb/layer.tar": os.urandom(SEGMENT_MIN + 5), "manifest.json": b"[]"})
    count = save_gzip_size(_chunks(stream), cache_dir=tmp_path, workers=2)
    expected = len(gzip.compress(stream, compresslevel=6, mtime=0))
    assert abs(count.compressed_bytes - expected) / expected < 0.001
    assert (count.segments, count.reused, count.reused_bytes) == (2, 0, 0)
    assert count.compressed_now_bytes == len(stream)
    # the count does not depend on how the stream is chunked or on the number of threads
    assert save_gzip_size(_chunks(stream, 999), cache_dir=None, workers=1).compressed_bytes == count.compressed_bytes


def test_a_layer_seen_before_is_not_compressed_again(tmp_path, monkeypatch):
    layer = _texty(6 * 1024 * 1024, 2)
    first = save_gzip_size(_chunks(_tar({"x1/layer.tar": layer, "c1.json": b"{}"})), cache_dir=tmp_path)
    deflated: list[int] = []
    real = gzipsize._deflated
    monkeypatch.setattr(gzipsize, "_deflated", lambda block, *a, **k: deflated.append(len(block)) or real(block, *a, **k))
    # the same layer in another image: another member name, other members around it
    other = _tar({"meta.json": b'{"b": 2}', "y2/layer.tar": layer, "c2.json": b"{}"})
    second = save_gzip_size(_chunks(other), cache_dir=tmp_path)
    assert (second.segments, second.reused, second.reused_bytes) == (1, 1, len(layer))
    assert max(deflated) < SEGMENT_MIN  # only the small bytes around the layer were compressed
    assert second.compressed_now_bytes == len(other) - len(layer)
    assert second.compressed_bytes == save_gzip_size(_chunks(other), cache_dir=None).compressed_bytes
    assert first.reused == 0 and "1 of 1 layers" in second.line() and "none counted before" in first.line()


def test_the_cache_is_keyed_by_content_level_zlib_and_method(tmp_path):
    layer = os.urandom(SEGMENT_MIN)
    save_gzip_size([_tar({"l/layer.tar": layer})], cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.json")
    data = json.loads(entry.read_text())
    assert data["method"] == METHOD and data["gzip_level"] == 6 and data["zlib"]
    assert save_gzip_size([_tar({"l/layer.tar": layer})], cache_dir=tmp_path).reused == 1
    assert save_gzip_size([_tar({"l/layer.tar": layer})], cache_dir=tmp_path, level=9).reused == 0
    entry.write_text(json.dumps({**data, "method": "another"}))
    assert save_gzip_size([_tar({"l/layer.tar": layer})], cache_dir=tmp_path).reused == 0
    # a changed byte is another layer
    changed = bytes([layer[0] ^ 1]) + layer[1:]
    assert save_gzip_size([_tar({"l/layer.tar": changed})], cache_dir=tmp_path).reused == 0


def test_not_a_tar_and_empty_streams_still_count():
    data = b"hello" * 1000
    expected = len(gzip.compress(data, compresslevel=6, mtime=0))
    assert abs(save_gzip_size([data], cache_dir=None).compressed_bytes - expected) <= 8
    assert save_gzip_size([], cache_dir=None).compressed_bytes == len(gzip.compress(b"", 6))


def _with_checksum(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def test_sizes_are_read_octal_or_base256_and_a_bad_checksum_is_no_header():
    header = bytearray(_tar({"f": b"x" * 512})[:512])
    assert gzipsize._member_size(bytes(header)) == 512
    header[124:136] = b"\x80" + (5 * 2**33).to_bytes(11, "big")
    assert gzipsize._member_size(_with_checksum(header)) == 5 * 2**33
    header[0] ^= 1  # checksum no longer matches
    assert gzipsize._member_size(bytes(header)) is None
