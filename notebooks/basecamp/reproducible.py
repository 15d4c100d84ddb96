"""Is a build reproducible? Build a step twice with `--no-cache` from the same inputs and compare the two
images: their ids, and for each layer that differs its files (`docker save`): content, mtimes, and
`.pyc` files whose only difference is their header (PEP 552: the source's mtime).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from basecamp import config, engine
from basecamp.build import build
from basecamp.errors import LabError
from basecamp.measure import default_target
from basecamp.probe import _ChunkReader
from basecamp.readback import cold_pair
from basecamp.scratch import scratch_copy
from basecamp.steps import STEP_LABEL, build_step, step_name

#: A .pyc's header: magic number, flags, then the source's mtime and size (or a hash) (PEP 552).
PYC_HEADER = 16


@dataclass(frozen=True)
class Member:
    """A file of a layer tar: its size, mtime and content digest ("" for folders and links).

    `body`: for a `.pyc`, the digest of what follows its 16-byte header (magic, flags, and the source's
    mtime and size, PEP 552); for any other file, `digest`.
    """

    size: int
    mtime: int
    digest: str
    body: str = ""


@dataclass(frozen=True)
class LayerDiff:
    index: int
    created_by: str
    same: bool
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    #: Members whose content differs.
    content: tuple[str, ...] = ()
    #: Members with the same content but another mtime.
    mtime_only: tuple[str, ...] = ()
    #: Of `content`: the .pyc files whose code is the same and only the header differs.
    header_only: tuple[str, ...] = ()

    def kinds(self) -> dict[str, int]:
        """Content differences by file kind (".pyc", ".py", "RECORD", ...)."""
        out: dict[str, int] = {}
        for name in self.content:
            base = name.rsplit("/", 1)[-1]
            kind = base if "." not in base else "." + base.rsplit(".", 1)[-1]
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def line(self) -> str:
        if self.same:
            return f"layer {self.index} same: {self.created_by[:70]}"
        kinds = ", ".join(f"{n} {k}" for k, n in list(self.kinds().items())[:4])
        header = f" ({len(self.header_only)} of them .pyc headers only)" if self.header_only else ""
        return (f"layer {self.index} DIFFERS: {self.created_by[:70]}\n"
                f"    {len(self.content)} files with other content ({kinds or 'none'}){header}, {len(self.mtime_only)} "
                f"with only another mtime, {len(self.only_a) + len(self.only_b)} in one build only")


def compare_members(a: dict[str, Member], b: dict[str, Member]) -> tuple[tuple[str, ...], ...]:
    """(only in a, only in b, other content, same content but other mtime, of the other content: .pyc whose
    header alone differs), names sorted."""
    only_a = tuple(sorted(set(a) - set(b)))
    only_b = tuple(sorted(set(b) - set(a)))
    both = sorted(set(a) & set(b))
    content = tuple(n for n in both if (a[n].digest, a[n].size) != (b[n].digest, b[n].size))
    mtime = tuple(n for n in both if n not in content and a[n].mtime != b[n].mtime)
    header = tuple(n for n in content if n.endswith(".pyc") and a[n].body and a[n].body == b[n].body)
    return only_a, only_b, content, mtime, header


@dataclass(frozen=True)
class ReproResult:
    step: str
    image_a: str
    image_b: str
    layers: tuple[LayerDiff, ...]
    #: The build commands (the terminal lines).
    commands: tuple[str, ...] = field(default=())

    @property
    def same_image(self) -> bool:
        return self.image_a == self.image_b

    @property
    def differing(self) -> list[LayerDiff]:
        return [layer for layer in self.layers if not layer.same]

    def lines(self) -> list[str]:
        head = (f"{self.step}: image ids {'EQUAL' if self.same_image else 'differ'} "
                f"({self.image_a[7:19]} vs {self.image_b[7:19]}); {len(self.differing)} of {len(self.layers)} "
                "layers differ")
        return [head, *[layer.line() for layer in self.layers]]


def _members(tar_bytes: bytes) -> dict[str, Member]:
    out: dict[str, Member] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar:
            digest = ""
            body = ""
            if m.isfile():
                fh = tar.extractfile(m)
                data = fh.read() if fh else b""
                digest = hashlib.sha256(data).hexdigest()
                body = hashlib.sha256(data[PYC_HEADER:]).hexdigest() if m.name.endswith(".pyc") else digest
            elif m.issym() or m.islnk():
                digest = body = "link:" + m.linkname
            out[m.name] = Member(m.size, int(m.mtime), digest, body)
    return out


def saved_layers(image_id: str) -> tuple[list[str], dict[str, dict[str, Member]], list[str]]:
    """`docker save` of one image: its layers' diff ids in order, each layer's members, and the
    `created_by` of each non-empty history entry (aligned with the layers)."""
    image = engine.client().images.get(image_id)
    members: dict[str, dict[str, Member]] = {}
    sha: dict[str, str] = {}
    manifest: list[dict[str, Any]] = []
    configs: dict[str, bytes] = {}
    with tarfile.open(fileobj=_ChunkReader(iter(image.save())), mode="r|") as tar:  # type: ignore[call-overload]
        for m in tar:
            if not m.isfile():
                continue
            fh = tar.extractfile(m)
            data = fh.read() if fh else b""
            if m.name.endswith("/layer.tar"):  # its sha256 is the layer's diff id
                members[m.name], sha[m.name] = _members(data), "sha256:" + hashlib.sha256(data).hexdigest()
            elif m.name == "manifest.json":
                manifest = json.loads(data)
            elif m.name.endswith(".json"):
                configs[m.name] = data
    entry = manifest[0]
    cfg = json.loads(configs[entry["Config"]])
    history = [h.get("created_by", "") for h in cfg.get("history", []) if not h.get("empty_layer")]
    digests = [sha[name] for name in entry["Layers"]]
    by_digest = {sha[name]: members[name] for name in entry["Layers"]}
    return digests, by_digest, history


def compare_images(step: str, a: str, b: str, commands: Sequence[str] = ()) -> ReproResult:
    """Compare two images layer by layer: their diff ids, and for a differing layer its files."""
    digests_a, members_a, history = saved_layers(a)
    digests_b, members_b, _ = saved_layers(b)
    diffs: list[LayerDiff] = []
    for i, (da, db) in enumerate(zip(digests_a, digests_b, strict=False)):
        how = history[i] if i < len(history) else ""
        how = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", how).strip()
        if da == db:
            diffs.append(LayerDiff(i, how, True))
            continue
        only_a, only_b, content, mtime, header = compare_members(members_a[da], members_b[db])
        diffs.append(LayerDiff(i, how, False, only_a, only_b, content, mtime, header))
    if len(digests_a) != len(digests_b):
        raise LabError(f"{a} and {b} have {len(digests_a)} and {len(digests_b)} layers: not the same Dockerfile")
    return ReproResult(step, a, b, tuple(diffs), tuple(commands))


def reproducibility(step: str, *, dockerfile: Path | None = None, target: str | None = None,
                    display: Any = None, log: Any = print) -> ReproResult:
    """Build `step` twice with `--no-cache` from one scratch copy (same inputs), compare the two images.

    `dockerfile`: build this Dockerfile (an extra derived from the step) instead of the step's own;
    its images are tagged annapurna-lab/<its stem>:repro-a and :repro-b. `target`: the stage to build,
    by default the step's shipped one (its `runtime` stage when it has one, like the measurements).
    For a step's own Dockerfile, when a measurement earlier in this run already made two cold builds from
    the same inputs (readback.cold_pair), those two are compared instead, tagged :repro-a and :repro-b,
    and `log` gets one line saying so.
    """
    target = target or default_target(step)

    pair = cold_pair(step, target) if dockerfile is None else None
    if pair is not None:
        name = step_name(step)
        dk = engine.client()
        for image_id, label in ((pair.image_a, "repro-a"), (pair.image_b, "repro-b")):
            dk.images.get(image_id).tag(f"{config.IMAGE_REPO_PREFIX}/{name}", label)
        if log is not None:
            log(pair.line(name))
        return compare_images(name, pair.image_a, pair.image_b)
    app = scratch_copy("repro")
    if dockerfile is None:
        builds = [build_step(step, app, label, no_cache=True, target=target, display=display)
                  for label in ("repro-a", "repro-b")]
        name = step_name(step)
    else:
        name = Path(dockerfile).stem
        builds = [build(Path(dockerfile), app.path, f"{config.IMAGE_REPO_PREFIX}/{name}:{label}", target=target,
                        no_cache=True, labels={STEP_LABEL: step_name(step)}, display=display)
                  for label in ("repro-a", "repro-b")]
    return compare_images(name, builds[0].image_id, builds[1].image_id, [b.command for b in builds])
