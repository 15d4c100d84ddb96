"""How many bytes `docker save <image> | gzip` writes, counted without storing it, each layer compressed once.

`docker save` writes a tar: a few small files (the image config, `manifest.json`) and one member per
layer (`<id>/layer.tar` up to Docker 24, `blobs/sha256/<digest>` from 25 on). Each layer member is the
layer's uncompressed tar, byte for byte the same in every image that has the layer: its sha256 is the
layer's content digest (`docker image inspect --format '{{.RootFS.Layers}}'`). Every step built on the
full base carries the same ~650 MB of base layers, and compressing them again for every image was most of
the lab's own time around a measured build (notebook 01: 12 s of gzip after 33 s of builds).

So the stream is counted the way a parallel gzip (pigz) writes it: deflate blocks of 4 MiB, each primed
with the 32 KiB before it, the whole a valid gzip stream whose size is within about 0.01% of GNU gzip's.
A large member (a layer) starts a fresh block run with an empty dictionary, so its deflated length
depends on its content alone. That length is kept under the member's sha256 (with the gzip level, the
zlib version and this method in the key) in `LAB_HOME/cache/compressed/layers/`, and any later image
with the same layer reuses it. `GzipCount` says how much was reused, so a notebook can say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from basecamp.units import fmt_bytes

BLOCK = 4 * 1024 * 1024
WINDOW = 32 * 1024
#: Members at least this large are counted on their own and remembered by content; smaller ones
#: (config, manifest, tar headers) are counted live with the bytes around them.
SEGMENT_MIN = 1024 * 1024
#: Names the counting method in the cache key: change it when the counting changes.
METHOD = "deflate-blocks-4MiB-primed-32KiB-v1"
_SPOOL_IN_MEMORY = 256 * 1024 * 1024
_GZIP_FRAME = 10 + 8  # gzip header and trailer (CRC32, length)


@dataclass(frozen=True)
class GzipCount:
    """What counting one save stream found and how much of it came from earlier counts."""

    #: Bytes of the gzip stream.
    compressed_bytes: int
    #: Tar members counted on their own (the layers, and any other member of SEGMENT_MIN or more).
    segments: int
    #: Of those, how many were already counted (same sha256), and their uncompressed bytes.
    reused: int
    reused_bytes: int
    #: Uncompressed bytes compressed by this count (the new segments and the small members).
    compressed_now_bytes: int
    seconds: float

    def line(self) -> str:
        """'gzip size: 9 of 11 layers (612 MB) counted before, same sha256; 350 MB compressed now, 4.1 s'."""
        before = (f"{self.reused} of {self.segments} layers ({fmt_bytes(self.reused_bytes)}) counted before, "
                  "same sha256 content; " if self.reused else f"{self.segments} layers, none counted before; ")
        return f"gzip size: {before}{fmt_bytes(self.compressed_now_bytes)} compressed now, {self.seconds:.1f} s"


def _deflated(block: bytes, zdict: bytes, level: int, last: bool = False) -> int:
    comp = (zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict) if zdict
            else zlib.compressobj(level, zlib.DEFLATED, -15))
    return len(comp.compress(block)) + len(comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))


class _Deflater:
    """Deflates runs of blocks on a thread pool (zlib releases the GIL) and sums their lengths."""

    def __init__(self, pool: ThreadPoolExecutor, level: int, workers: int) -> None:
        self.pool, self.level, self.workers = pool, level, workers
        self.pending: deque[Future[int]] = deque()
        self.done = 0

    def run(self, blocks: Iterable[bytes]) -> int:
        """Deflate one run (fresh dictionary at its start); returns its length in bytes."""
        futures: list[Future[int]] = []
        previous = b""
        for block in blocks:
            fut = self.pool.submit(_deflated, block, previous[-WINDOW:], self.level)
            futures.append(fut)
            self.pending.append(fut)
            previous = block
            while len(self.pending) > 2 * self.workers:  # bounded memory: a few blocks in flight
                self.pending.popleft().result()
        return sum(f.result() for f in futures)


def _blocks_of(stream: IO[bytes]) -> Iterator[bytes]:
    while block := stream.read(BLOCK):
        yield block


class _Reader:
    """Exactly-n-bytes reads from an iterator of chunks of any size."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> Iterator[bytes]:
        if self.buf:
            yield bytes(self.buf)
            self.buf.clear()
        yield from self.chunks


def _member_size(header: bytes) -> int | None:
    """The size field of a tar header (octal text, or base-256 when its first byte has the high bit);
    None when the 512 bytes are not a tar header (their checksum does not match)."""
    try:
        stored = int(header[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return None
    if stored != sum(header[:148]) + 8 * 32 + sum(header[156:]):
        return None
    field = header[124:136]
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return None


class _Cache:
    def __init__(self, folder: Path | None, level: int) -> None:
        self.folder, self.level = folder, level

    def _path(self, digest: str) -> Path | None:
        return self.folder / f"{digest}.json" if self.folder else None

    def key(self) -> dict[str, object]:
        return {"gzip_level": self.level, "zlib": zlib.ZLIB_RUNTIME_VERSION, "method": METHOD}

    def get(self, digest: str) -> int | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self.key().items()):
            return None
        value = data.get("deflated_bytes")
        return value if isinstance(value, int) else None

    def put(self, digest: str, size: int, deflated: int) -> None:
        path = self._path(digest)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"sha256": digest, "size": size, "deflated_bytes": deflated, **self.key()}))
        tmp.replace(path)


def save_gzip_size(chunks: Iterable[bytes], *, cache_dir: Path | None, level: int = 6,
                   workers: int | None = None) -> GzipCount:
    """Count the gzip stream of a tar (a `docker save` stream); `cache_dir=None` remembers nothing.

    A stream that is not a tar (or a tar cut short) is still counted: whatever cannot be read as
    members is counted live as small bytes.
    """
    workers = workers or min(os.cpu_count() or 1, 8)
    cache = _Cache(cache_dir, level)
    t0 = time.perf_counter()
    reader = _Reader(chunks)
    total, segments, reused, reused_bytes, now_bytes = _GZIP_FRAME, 0, 0, 0, 0
    small = bytearray()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        deflater = _Deflater(pool, level, workers)

        def flush_small() -> int:
            data = bytes(small)
            small.clear()
            return deflater.run(data[i:i + BLOCK] for i in range(0, len(data), BLOCK)) if data else 0

        while True:
            header = reader.read(512)
            if len(header) < 512 or header == bytes(512):
                small += header
                break
            size = _member_size(header)
            if size is None:  # not a tar (any more): the rest is counted live
                small += header
                break
            padded = -(-size // 512) * 512
            if size < SEGMENT_MIN:
                small += header + reader.read(padded)
                if len(small) >= BLOCK:
                    now_bytes += len(small)
                    total += flush_small()
                continue
            small += header
            now_bytes += len(small)
            total += flush_small()
            digest, deflated, spool = _segment(reader, size, cache)
            segments += 1
            if deflated is None:
                assert spool is not None
                with spool:
                    spool.seek(0)
                    deflated = deflater.run(_blocks_of(spool))
                cache.put(digest, size, deflated)
                now_bytes += size
            else:
                reused += 1
                reused_bytes += size
            total += deflated
            small += reader.read(padded - size)
        for chunk in reader.rest():  # the tar's end blocks, or anything after them
            small += chunk
        now_bytes += len(small)
        total += flush_small()
    total += _deflated(b"", b"", level, last=True)  # the final empty block that ends the deflate stream
    return GzipCount(compressed_bytes=total, segments=segments, reused=reused, reused_bytes=reused_bytes,
                     compressed_now_bytes=now_bytes, seconds=round(time.perf_counter() - t0, 3))


def _segment(reader: _Reader, size: int, cache: _Cache) -> tuple[str, int | None, IO[bytes] | None]:
    """Read one large member while hashing it: its sha256, its remembered length, or its bytes spooled."""
    sha = hashlib.sha256()
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 (returned open)
    left = size
    while left:
        piece = reader.read(min(BLOCK, left))
        if not piece:
            break
        sha.update(piece)
        spool.write(piece)
        left -= len(piece)
    digest = sha.hexdigest()
    known = cache.get(digest)
    if known is not None:
        spool.close()
        return digest, known, None
    return digest, None, spool
