"""What is inside an image: size, compressed size, layers (and which came from the base image).

Layers come from the image's history (`docker history`): one entry per Dockerfile instruction,
oldest first, metadata-only instructions (ENV, CMD, ...) as 0-byte entries.

Which layers come from the base: pass `base="python:3.11-slim-bookworm"` and the base image's
history (oldest first) must be a prefix of this image's history, compared entry by entry on
(created time, created_by, size) — a build copies the base's history entries verbatim, and the
per-entry ids are mostly "<missing>", so ids cannot be used. Those entries are `from_base`; the
rest were added by the Dockerfile. Without `base`, no layer counts as from the base.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import docker.errors

from basecamp import config, engine
from basecamp.containers import throwaway
from basecamp.errors import InputError, LabError
from basecamp.gzipsize import METHOD, GzipCount, save_gzip_size
from basecamp.units import fmt_bytes

#: Each image's gzip size by image id; under "layers/", each layer's by its content (basecamp.gzipsize).
COMPRESSED_CACHE_DIR = config.LAB_HOME / "cache" / "compressed"
#: Dockerfile keywords; anything else in a history entry is "OTHER" (e.g. a rootfs import note).
KEYWORDS = frozenset({
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE", "USER",
    "VOLUME", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER",
})

_BUILDKIT_SUFFIX = re.compile(r"\s*# buildkit$")
_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
_ARGS_PREFIX = re.compile(r"^\|\d+ .*? (?=/bin/(?:ba)?sh )")
_SHELL = re.compile(r"^/bin/(?:ba)?sh (?:-o \S+ )*-c ")


def clean_created_by(created_by: str, comment: str = "") -> str:
    """A history entry's command as the Dockerfile line it came from.

    Classic builder: "/bin/sh -c #(nop)  ENV A=b" -> "ENV A=b"; "/bin/sh -c pip install x" ->
    "RUN pip install x". BuildKit: "RUN /bin/sh -c pip install x # buildkit" -> "RUN pip install x";
    build args "|2 A=b C=d /bin/sh -c ..." are dropped. An empty entry (a `docker import`) becomes
    its comment in parentheses, e.g. "(Imported from -)".
    """
    text = created_by.strip()
    if not text:
        return f"({comment.strip()})" if comment.strip() else ""
    text = _BUILDKIT_SUFFIX.sub("", text)
    if _NOP.match(text):
        return _NOP.sub("", text).strip()
    run = text.startswith("RUN ")
    body = text[4:] if run else text
    body = _ARGS_PREFIX.sub("", body)
    if _SHELL.match(body):
        return "RUN " + _SHELL.sub("", body).strip()
    if run or body is not text:
        return "RUN " + body.strip()
    return text


def instruction_of(cleaned: str) -> str:
    """The Dockerfile keyword a cleaned entry starts with; "IMPORT" for an imported rootfs, else "OTHER"."""
    if cleaned.startswith("(") or not cleaned:
        return "IMPORT"
    word = cleaned.split(None, 1)[0].upper()
    return word if word in KEYWORDS else "OTHER"


@dataclass
class Layer:
    """One history entry. `size_bytes` is 0 for metadata-only instructions."""

    index: int
    created_by: str
    instruction: str
    size_bytes: int
    from_base: bool
    created: str = ""
    raw_created_by: str = ""


@dataclass
class ImageInfo:
    """An image's sizes and layers. `size_bytes` is what `docker images` shows (uncompressed)."""

    ref: str
    id: str
    size_bytes: int
    #: `docker save | gzip` size (gzip default level), None when not computed.
    compressed_bytes: int | None
    layers: list[Layer]
    base_ref: str | None
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    #: How `compressed_bytes` was counted: how many layers were counted before (None when not computed,
    #: or read back from a cache written before counts were kept).
    gzip_count: GzipCount | None = None

    @property
    def base_bytes(self) -> int:
        """Bytes in layers that came with the base image."""
        return sum(layer.size_bytes for layer in self.layers if layer.from_base)

    @property
    def own_bytes(self) -> int:
        """Bytes in layers the Dockerfile added."""
        return sum(layer.size_bytes for layer in self.layers if not layer.from_base)

    def layer_table(self, nonempty: bool = False) -> list[dict[str, Any]]:
        """One dict per layer (oldest first), ready for plotly or a quick print.

        Keys: index, instruction, created_by, size_bytes, size (formatted), source ("base" or
        "Dockerfile"). `nonempty=True` leaves out 0-byte layers.
        """
        return [
            {
                "index": layer.index,
                "instruction": layer.instruction,
                "created_by": layer.created_by,
                "size_bytes": layer.size_bytes,
                "size": fmt_bytes(layer.size_bytes),
                "source": "base" if layer.from_base else "Dockerfile",
            }
            for layer in self.layers
            if layer.size_bytes > 0 or not nonempty
        ]

    def summary(self) -> str:
        """"<ref>: 170 MB (58 MB gzipped); base 125 MB, added 45 MB"."""
        gz = f" ({fmt_bytes(self.compressed_bytes)} gzipped)" if self.compressed_bytes is not None else ""
        base = f"; base {fmt_bytes(self.base_bytes)}, added {fmt_bytes(self.own_bytes)}" if self.base_ref else ""
        return f"{self.ref}: {fmt_bytes(self.size_bytes)}{gz}{base}"


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (as from `layer_table`) turned into columns: {"size_bytes": [...], ...}."""
    keys = list(rows[0]) if rows else []
    return {k: [row.get(k) for row in rows] for k in keys}


def _get_image(dk: Any, ref: str) -> Any:
    try:
        return dk.images.get(ref)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"no image {ref!r} in the engine: build or pull it first") from exc


def _history(image: Any) -> list[dict[str, Any]]:
    """History entries oldest first."""
    return list(reversed(image.history()))


def _entry_key(entry: dict[str, Any]) -> tuple[Any, str, int]:
    return (entry.get("Created"), entry.get("CreatedBy") or "", int(entry.get("Size") or 0))


def base_prefix(history: list[dict[str, Any]], base_history: list[dict[str, Any]]) -> int:
    """How many leading entries of `history` are the base's; -1 when the base's history is not a prefix."""
    if len(base_history) > len(history):
        return -1
    for mine, theirs in zip(history, base_history):
        if _entry_key(mine) != _entry_key(theirs):
            return -1
    return len(base_history)


def layers_of(history: list[dict[str, Any]], n_base: int) -> list[Layer]:
    """Layers from history entries (oldest first); the first `n_base` are from the base."""
    layers = []
    for i, entry in enumerate(history):
        raw = entry.get("CreatedBy") or ""
        cleaned = clean_created_by(raw, entry.get("Comment") or "")
        created = entry.get("Created")
        layers.append(Layer(
            index=i, created_by=cleaned, instruction=instruction_of(cleaned), size_bytes=int(entry.get("Size") or 0),
            from_base=i < n_base, created=str(created) if created is not None else "", raw_created_by=raw,
        ))
    return layers


def inspect_image(ref: str, *, compressed: bool = True, base: str | None = None) -> ImageInfo:
    """Sizes and layers of `ref`; `base` names the image it was built FROM (see the module docstring).

    `compressed=True` also computes the `docker save | gzip` size (cached per image id, and per layer
    by content: about 3 s per 100 MB of layers not counted before on two cores, 5 s on one). Raises InputError when `ref`
    (or `base`) does not exist or `ref` is not built on `base`.
    """
    dk = engine.client()
    image = _get_image(dk, ref)
    history = _history(image)
    n_base = 0
    if base is not None:
        n_base = base_prefix(history, _history(_get_image(dk, base)))
        if n_base < 0:
            raise InputError(
                f"{ref!r} is not built on {base!r}: the base's history is not a prefix of the image's "
                "(built on another image, or on an older build of that tag? rebuild it)"
            )
    compressed_bytes, count = _compressed(ref) if compressed else (None, None)
    return ImageInfo(
        ref=ref,
        id=image.id,
        size_bytes=int(image.attrs.get("Size") or 0),
        compressed_bytes=compressed_bytes,
        gzip_count=count,
        layers=layers_of(history, n_base),
        base_ref=base,
        labels=dict(image.labels or {}),
        tags=list(image.tags),
    )


def _cache_file(image_id: str) -> Any:
    return COMPRESSED_CACHE_DIR / f"{image_id.split(':')[-1]}.json"


def compressed_size(ref: str, *, refresh: bool = False) -> int:
    """`docker save <ref> | gzip | wc -c`, counted by streaming (basecamp.gzipsize); cached per image id.

    Layers already counted in another image (same sha256 content) are not compressed again;
    `last_gzip_count(ref)` says how many were.
    """
    return _compressed(ref, refresh=refresh)[0]


def last_gzip_count(ref: str) -> GzipCount:
    """How the compressed size of `ref` was counted (counting it now if it never was)."""
    return _compressed(ref)[1]


def _compressed(ref: str, *, refresh: bool = False) -> tuple[int, GzipCount]:
    image = _get_image(engine.client(), ref)
    path = _cache_file(image.id)
    if not refresh:
        try:
            data = json.loads(path.read_text())
            if data.get("method") == METHOD:  # counted the way this code counts
                return int(data["compressed_bytes"]), GzipCount(**data["count"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    count = save_gzip_size(image.save(named=False), cache_dir=COMPRESSED_CACHE_DIR / "layers")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({
        "image_id": image.id, "compressed_bytes": count.compressed_bytes,
        "size_bytes": int(image.attrs.get("Size") or 0), "seconds": count.seconds, "ref": ref,
        "method": METHOD, "count": asdict(count),
    }))
    tmp.replace(path)
    return count.compressed_bytes, count


def image_contains(ref: str, path_or_cmd: str, *, timeout_s: float = 60) -> bool:
    """Does the image have this file (an absolute path) or this command (looked up on its PATH)?

    A path is checked without running anything: a created, never started container is asked for
    the file. A command runs `/bin/sh -c 'command -v <cmd>'` in a throwaway container (lab label,
    no network). The container is removed either way. Raises LabError when the image has no
    /bin/sh for a command check.
    """
    if not path_or_cmd or any(c in path_or_cmd for c in "\n\0"):
        raise InputError(f"image_contains: {path_or_cmd!r} is not a path or command name")
    dk = engine.client()
    _get_image(dk, ref)
    is_path = path_or_cmd.startswith("/")
    with throwaway(ref, client=dk, network_disabled=True,
                   entrypoint=["/bin/sh", "-c", 'command -v "$0"'] if not is_path else ["/bin/sh"],
                   command=[path_or_cmd] if not is_path else []) as container:
        if is_path:
            # HEAD on the archive endpoint stats the path (`docker cp` does the same) without
            # copying it: a folder like /app/.venv would otherwise stream hundreds of MB.
            res = dk.api.head(dk.api._url("/containers/{0}/archive", container.id), params={"path": path_or_cmd})
            if res.status_code == 404:
                return False
            dk.api._raise_for_status(res)
            return True
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise LabError(
                f"cannot check for {path_or_cmd!r} in {ref}: no /bin/sh to run `command -v` ({exc})"
            ) from exc
        status = container.wait(timeout=timeout_s)
        return int(status.get("StatusCode", 1)) == 0
