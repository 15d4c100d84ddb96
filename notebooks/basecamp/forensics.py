"""Layer forensics, like `dive`: what each layer adds and removes, and the bytes later layers waste.

The image is read the way the engine exports it (`docker save`, streamed, never held in memory):
`manifest.json` names the layer tars in order, the image config's `history` names the
instruction behind each one (entries marked `empty_layer` make no tar). Inside a layer tar:

- a regular file is *added* (a path no earlier layer had) or *modified* (it replaces one);
- a whiteout `dir/.wh.name` *removes* `dir/name` (and everything under it) from earlier layers;
  an opaque whiteout `dir/.wh..wh..opq` removes everything earlier layers had under `dir/`.

A file's bytes in layer i are **wasted** when a later layer replaces or removes the path: the
image still ships them (layers only add) but no container can ever see them.

    efficiency = 1 - wasted / total        (total: the bytes of every file in every layer)

1.0 means every byte shipped is visible in the final file system. (dive's score is close to this
one: it compares each path's smallest version with all its versions, so a file rewritten with
the same size also counts there, once.) Results are cached per image id in
LAB_HOME/cache/forensics/, so a re-run costs nothing.
"""

from __future__ import annotations

import heapq
import io
import json
import posixpath
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import docker.errors

from basecamp import config, engine
from basecamp.errors import InputError, LabError
from basecamp.images import clean_created_by
from basecamp.measure import measure_step
from basecamp.readback import _canonical, measured
from basecamp.results import FORENSICS, Record, load, record
from basecamp.steps import image_tag, step_name
from basecamp.units import fmt_bytes

#: Bump when the analysis or its JSON changes, so old cache files are recomputed.
CACHE_VERSION = 1
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
#: How many biggest paths each layer lists.
TOP_N = 5
#: The record scenario the forensics of a step's image is stored under in the results file.
SCENARIO = "forensics"


@dataclass
class PathSize:
    """A file or folder (no leading "/") and the bytes under it in one layer."""

    path: str
    size_bytes: int


@dataclass
class LayerReport:
    """One layer of an image, oldest first (`index` 0 is the bottom layer)."""

    index: int
    #: The instruction that made the layer, as in the Dockerfile ("RUN poetry install").
    created_by: str
    #: Bytes of the files in the layer's tar (what the layer ships, uncompressed).
    size_bytes: int
    files_added: int
    files_modified: int
    #: Whiteouts in this layer: paths it hides from the layers below.
    files_removed: int
    #: This layer's bytes that a later layer replaces or removes.
    wasted_bytes: int
    biggest: list[PathSize] = field(default_factory=list)
    #: Where this layer's wasted bytes are (empty when it wastes none).
    wasted_paths: list[PathSize] = field(default_factory=list)

    @property
    def efficiency(self) -> float:
        return 1.0 - self.wasted_bytes / self.size_bytes if self.size_bytes else 1.0


@dataclass
class ImageForensics:
    """Every layer of an image, and the totals: bytes shipped, bytes wasted, efficiency."""

    ref: str
    image_id: str
    layers: list[LayerReport]
    #: Seconds the analysis took when it ran (a cached result keeps the original time).
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(layer.size_bytes for layer in self.layers)

    @property
    def wasted_bytes(self) -> int:
        return sum(layer.wasted_bytes for layer in self.layers)

    @property
    def efficiency(self) -> float:
        """1 - wasted/total: the share of shipped bytes a container can see (1.0 for an empty image)."""
        total = self.total_bytes
        return 1.0 - self.wasted_bytes / total if total else 1.0

    def summary(self) -> str:
        return (f"{self.ref}: {len(self.layers)} layers, {fmt_bytes(self.total_bytes)} shipped, "
                f"{fmt_bytes(self.wasted_bytes)} wasted, efficiency {self.efficiency:.2%}")

    def layer_table(self, nonempty: bool = True) -> list[dict[str, Any]]:
        """One dict per layer, ready for a table or a chart; `nonempty` leaves out 0-byte layers."""
        return [
            {
                "layer": layer.index, "created_by": layer.created_by, "size_bytes": layer.size_bytes,
                "size": fmt_bytes(layer.size_bytes), "added": layer.files_added, "modified": layer.files_modified,
                "removed": layer.files_removed, "wasted_bytes": layer.wasted_bytes,
                "wasted": fmt_bytes(layer.wasted_bytes),
                "biggest": ", ".join(f"/{p.path} ({fmt_bytes(p.size_bytes)})" for p in layer.biggest[:3]),
            }
            for layer in self.layers
            if layer.size_bytes or layer.files_removed or not nonempty
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "image_id": self.image_id, "seconds": self.seconds,
                "layers": [asdict(layer) for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageForensics:
        layers = []
        for raw in data["layers"]:
            raw = dict(raw)
            raw["biggest"] = [PathSize(**p) for p in raw.get("biggest", [])]
            raw["wasted_paths"] = [PathSize(**p) for p in raw.get("wasted_paths", [])]
            layers.append(LayerReport(**raw))
        return cls(ref=data["ref"], image_id=data["image_id"], layers=layers, seconds=float(data.get("seconds", 0)))


# ---------------------------------------------------------------------------------------------
# Reading a `docker save` stream


@dataclass
class Entry:
    """One member of a layer tar: a path (normalised, no leading "/"), its kind and its size."""

    path: str
    size: int
    is_dir: bool = False


@dataclass
class _LayerTar:
    entries: list[Entry]
    #: Paths whited out (`.wh.<name>`), and folders made opaque (`.wh..wh..opq`).
    removed: list[str]
    opaque: list[str]


def _norm(name: str) -> str:
    path = posixpath.normpath("/" + name).lstrip("/")
    return path


def read_layer(fileobj: IO[bytes]) -> _LayerTar:
    """The entries and whiteouts of one layer tar, read as a stream."""
    entries: list[Entry] = []
    removed: list[str] = []
    opaque: list[str] = []
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for member in tar:
            path = _norm(member.name)
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == OPAQUE:
                opaque.append(parent)
            elif base.startswith(WHITEOUT):
                removed.append(posixpath.join(parent, base[len(WHITEOUT):]))
            elif path:
                entries.append(Entry(path, member.size if member.isreg() else 0, member.isdir()))
    return _LayerTar(entries, removed, opaque)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (what the Docker SDK's `image.save()` yields)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target)
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def read_saved(stream: IO[bytes]) -> tuple[list[_LayerTar], list[dict[str, Any]]]:
    """From a `docker save` tar of one image: its layers in order, and its config's history.

    Works for the classic layout (`<id>/layer.tar`) and the OCI one (`blobs/sha256/<digest>`):
    every member that parses as a tar is kept by name until manifest.json says which is which.
    """
    tars: dict[str, _LayerTar] = {}
    jsons: dict[str, Any] = {}
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.isreg():
                continue
            handle = outer.extractfile(member)
            if handle is None:
                continue
            name = _norm(member.name)
            if name.endswith(".json") or member.size < 512 * 1024 and not name.endswith(".tar"):
                data = handle.read()
                try:
                    jsons[name] = json.loads(data)
                    continue
                except (ValueError, UnicodeDecodeError):
                    handle = io.BytesIO(data)
            if name.endswith(("/json", "/VERSION", "repositories", "oci-layout")):
                continue
            try:
                tars[name] = read_layer(handle)
            except tarfile.TarError:
                continue  # not a layer
    manifest = jsons.get("manifest.json")
    if not isinstance(manifest, list) or len(manifest) != 1:
        raise LabError("the saved image has no manifest.json for exactly one image: save one image at a time")
    names = [_norm(n) for n in manifest[0]["Layers"]]
    missing = [n for n in names if n not in tars]
    if missing:
        raise LabError(f"the saved image lacks layer tars named in its manifest: {', '.join(missing)}")
    cfg = jsons.get(_norm(manifest[0]["Config"])) or {}
    return [tars[n] for n in names], list(cfg.get("history") or [])


# ---------------------------------------------------------------------------------------------
# The analysis


def _ancestors(path: str) -> Iterator[str]:
    """"a/b/c" -> "a/b", "a" (the folders above a path, nearest first)."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def top_paths(files: dict[str, int], n: int = TOP_N) -> list[PathSize]:
    """The `n` biggest parts of a set of files, dive-style: the biggest folder is opened first.

    Start from the root; repeatedly replace the biggest folder in the list by its children (a
    folder with a single child is shown as that child, so chains collapse) while they fit in `n`
    entries, or while that folder holds over 80% of the bytes listed.
    Returns the biggest `n`, biggest first.
    """
    sizes: dict[str, int] = {}
    children: dict[str, set[str]] = {}
    for path, size in files.items():
        sizes[path] = sizes.get(path, 0) + size
        child = path
        for parent in [*_ancestors(path), ""]:
            sizes[parent] = sizes.get(parent, 0) + size
            children.setdefault(parent, set()).add(child)
            child = parent

    def collapsed(path: str) -> str:
        while len(children.get(path, ())) == 1:
            path = next(iter(children[path]))
        return path

    frontier: list[tuple[int, str]] = [(-sizes.get("", 0), collapsed(""))]
    while True:
        openable = [(s, p) for s, p in frontier if p in children]
        if not openable:
            break
        biggest = min(openable)
        kids = children[biggest[1]]
        total = sum(-s for s, _ in frontier) or 1
        fits = len(frontier) - 1 + len(kids) <= n
        dominant = -biggest[0] > 0.8 * total
        if not (fits or dominant):
            break
        frontier.remove(biggest)
        frontier += [(-sizes[c], c) for c in (collapsed(k) for k in kids)]
    return [PathSize(p, -s) for s, p in heapq.nsmallest(n, frontier) if -s > 0]


def analyse(layers: list[_LayerTar], history: list[dict[str, Any]] | None = None, *, ref: str = "",
            image_id: str = "", top_n: int = TOP_N) -> ImageForensics:
    """Per-layer reports of an image's layer tars (oldest first); `history` from its config."""
    commands = [clean_created_by(h.get("created_by") or "", h.get("comment") or "")
                for h in (history or []) if not h.get("empty_layer")]
    if commands and len(commands) != len(layers):
        commands = []  # history that does not match the layers names none of them
    #: Every visible regular file: path -> (layer index, size).
    live: dict[str, tuple[int, int]] = {}
    wasted: list[dict[str, int]] = [{} for _ in layers]
    reports: list[LayerReport] = []

    def waste(path: str) -> None:
        owner, size = live.pop(path)
        if size:
            wasted[owner][path] = size

    for index, layer in enumerate(layers):
        gone = set(layer.removed)
        opaque = set(layer.opaque)
        if gone or opaque:
            for path in list(live):
                ups = list(_ancestors(path))
                if path in gone or any(a in gone or a in opaque for a in ups) or ("" in opaque):
                    waste(path)
        added = modified = 0
        files: dict[str, int] = {}
        for entry in layer.entries:
            if entry.is_dir:
                if entry.path in live:  # a folder replacing a file
                    waste(entry.path)
                continue
            if entry.path in live:
                modified += 1
                waste(entry.path)
            else:
                added += 1
            live[entry.path] = (index, entry.size)
            files[entry.path] = entry.size
        reports.append(LayerReport(
            index=index, created_by=commands[index] if commands else "", size_bytes=sum(files.values()),
            files_added=added, files_modified=modified, files_removed=len(gone) + len(opaque),
            wasted_bytes=0, biggest=top_paths(files, top_n),
        ))
    for report, lost in zip(reports, wasted):
        report.wasted_bytes = sum(lost.values())
        report.wasted_paths = top_paths(lost, top_n) if lost else []
    return ImageForensics(ref=ref, image_id=image_id, layers=reports)


def _cache_file(image_id: str) -> Path:
    return config.LAB_HOME / "cache" / "forensics" / f"{image_id.split(':')[-1]}.json"


def image_forensics(ref: str, *, refresh: bool = False) -> ImageForensics:
    """The forensics of an image in the engine (by tag or id), streamed from `docker save`; cached per id."""
    try:
        image = engine.client().images.get(ref)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"no image {ref!r} in the engine: build or measure it first") from exc
    path = _cache_file(image.id)
    if not refresh:
        try:
            data = json.loads(path.read_text())
            if data.get("version") == CACHE_VERSION:
                found = ImageForensics.from_dict(data)
                found.ref = ref
                return found
        except (OSError, ValueError, KeyError, TypeError):
            pass
    t0 = time.perf_counter()
    try:
        with io.BufferedReader(ChunkReader(image.save(named=False)), buffer_size=1 << 20) as stream:
            layers, history = read_saved(stream)
    except docker.errors.NotFound as exc:  # removed while we read it (the engine is shared)
        raise InputError(f"image {ref!r} was removed from the engine while it was analysed: {exc}") from exc
    result = analyse(layers, history, ref=ref, image_id=image.id)
    result.seconds = round(time.perf_counter() - t0, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": CACHE_VERSION, **result.as_dict()}))
    tmp.replace(path)
    return result


# ---------------------------------------------------------------------------------------------
# Steps: analyse the image a measurement made, and record the result beside it


def step_forensics(step: str, *, refresh: bool = False, log: Any = print) -> ImageForensics:
    """The forensics of a step's measured image, recorded in the results file (scenario "forensics").

    Uses the step's latest measurement when its image is still in the engine; otherwise measures
    the step first (one cold build: `measure_step(step, scenarios=["cold"], repeats=1)`), so the
    image analysed is always the one the results file describes.
    """
    name = step_name(step)
    found = measured(name)
    image_id = found.image.id if found is not None else ""
    if image_id:
        try:
            engine.client().images.get(image_id)
        except docker.errors.ImageNotFound:
            image_id = ""
    for attempt in (1, 2):
        if not image_id or found is None:
            found = measure_step(name, scenarios=["cold"], repeats=1, log=log)
            image_id = found.image.id
        try:
            result = image_forensics(image_id, refresh=refresh)
            break
        except InputError:
            # another measurement of this step (the engine is shared) replaced the image: measure again
            if attempt == 2:
                raise
            image_id = ""
    result.ref = image_tag(name, "measure")
    assert found is not None  # the loop above measured the step when the results file had nothing
    record(Record(step=name, scenario=SCENARIO, kind=FORENSICS, size_bytes=result.total_bytes, image_id=image_id,
                  measurement=found.measurement, wasted_bytes=result.wasted_bytes,
                  efficiency=round(result.efficiency, 6), wall_s=result.seconds))
    return result


def latest_forensics(steps: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The latest recorded forensics of each step (all recorded steps by default), in step order.

    Keys: step, size_bytes (all layers), wasted_bytes, efficiency, image_id, measurement — what
    a summary table can show beside each step's size and timings.
    """
    latest: dict[str, Any] = {}
    for rec in load():
        if rec.kind == FORENSICS and rec.wasted_bytes is not None:
            latest[rec.step] = rec
    names = sorted(latest) if steps is None else [_canonical(s) for s in steps]
    return [{"step": n, "size_bytes": latest[n].size_bytes, "wasted_bytes": latest[n].wasted_bytes,
             "efficiency": latest[n].efficiency, "image_id": latest[n].image_id,
             "measurement": latest[n].measurement} for n in names if n in latest]


def plot_forensics(reports: dict[str, ImageForensics], title: str = "Bytes per layer: kept and wasted") -> Any:
    """Per-layer bytes of each image, wasted bytes in red on top; a dropdown picks the image.

    Bars are the layers that hold bytes, oldest first; hover one for its instruction, its biggest
    paths and where its wasted bytes are.
    """
    import plotly.graph_objects as go  # plotly on first plot only: importing basecamp.forensics stays light

    fig = go.Figure()
    names = list(reports)
    for k, (name, rep) in enumerate(reports.items()):
        rows = [layer for layer in rep.layers if layer.size_bytes]
        labels = [f"{layer.index}: {layer.created_by[:38]}" for layer in rows]
        hover = ["<br>".join([layer.created_by[:90], *(f"/{p.path[:70]}: {fmt_bytes(p.size_bytes)}"
                                                       for p in layer.biggest[:3])]) for layer in rows]
        wasted_hover = ["<br>".join(["wasted:", *(f"/{p.path[:70]}: {fmt_bytes(p.size_bytes)}"
                                                  for p in layer.wasted_paths[:3])]) for layer in rows]
        visible = k == 0
        fig.add_bar(x=labels, y=[(layer.size_bytes - layer.wasted_bytes) / 1e6 for layer in rows],
                    name="kept (visible in the final file system)", marker_color="#1f77b4", visible=visible,
                    customdata=hover, hovertemplate="%{customdata}<br>kept %{y:.2f} MB<extra></extra>")
        fig.add_bar(x=labels, y=[layer.wasted_bytes / 1e6 for layer in rows],
                    name="wasted (hidden by a later layer)", marker_color="#d62728", visible=visible,
                    customdata=wasted_hover, hovertemplate="%{customdata}<br>%{y:.3f} MB<extra></extra>")
    buttons = []
    for k, name in enumerate(names):
        rep = reports[name]
        shown = [i // 2 == k for i in range(2 * len(names))]
        buttons.append({"label": name, "method": "update", "args": [
            {"visible": shown},
            {"title": f"{title}<br><sup>{name}: {fmt_bytes(rep.total_bytes)} in layers, "
                      f"{fmt_bytes(rep.wasted_bytes)} wasted, efficiency {rep.efficiency:.2%}</sup>"}]})
    first = reports[names[0]] if names else None
    fig.update_layout(
        barmode="stack", yaxis_title="MB (uncompressed)", height=480,
        title=(f"{title}<br><sup>{names[0]}: {fmt_bytes(first.total_bytes)} in layers, "
               f"{fmt_bytes(first.wasted_bytes)} wasted, efficiency {first.efficiency:.2%}</sup>") if first else title,
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.18}],
        legend={"orientation": "h", "y": -0.45}, margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return fig
