"""A real registry on 127.0.0.1 for the lab: start, push, read what it stores, count what it serves, stop.

CI keeps its layer cache in a registry: the first runner pushes its image with an inline cache, the
next builds with `--cache-from <registry>/<image>` and pulls what it needs. When no registry is
configured, the lab runs one itself: Debian's `docker-registry` package (the CNCF distribution
registry, version 2.x), as a plain process of ours, listening on 127.0.0.1 only, with its config and
its storage under LAB_HOME/registry/. Its pid, port and folders are recorded in
LAB_HOME/registry/registry.json, so `./lab clean` (basecamp.cleanup) stops it and removes its storage
like everything else the lab makes; nothing in Docker carries it.

The engine pushes and pulls, not the client: the registry must be reachable *from the engine*. Docker
treats every registry in 127.0.0.0/8 as insecure, so plain HTTP on 127.0.0.1 needs no configuration
(`docker info` lists 127.0.0.0/8 under "Insecure Registries"). For a remote engine (DOCKER_HOST naming
another host) the client's 127.0.0.1 is not the engine's: `start()` refuses, and the route needs a
registry that engine can reach.

Counting bytes: what the registry *received* is the growth of its blob store (each blob is stored
once, content-addressed: `stored_blobs()` before and after a push); what it *served* is the sum of the
response bytes in its access log (Apache combined format, one line per request) since a mark
(`served_since`). The compressed layer sizes an image has in the registry come from its manifest
(`GET /v2/<name>/manifests/<tag>`, schema 2): that is what a `docker pull` downloads at most.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from basecamp import config, engine, process
from basecamp.errors import LabError
from basecamp.units import fmt_bytes

#: The Debian package and its program.
PACKAGE = "docker-registry"
PROGRAM = "docker-registry"
HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Straight to 127.0.0.1: an http_proxy set in the environment must not catch these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: One access-log line: `... "GET /v2/... HTTP/1.1" 200 1234 "referer" "agent"`.
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) (?P<bytes>\d+|-)')


def folder() -> Path:
    """LAB_HOME/registry: config, storage, log and the record of the running registry."""
    return config.LAB_HOME / "registry"


def record_file() -> Path:
    return folder() / "registry.json"


@dataclass(frozen=True)
class Registry:
    """A running registry of the lab's: its address and where it keeps things."""

    port: int
    pid: int
    storage: Path
    log: Path

    @property
    def address(self) -> str:
        """host:port, as an image reference starts (`127.0.0.1:5000/annapurna-lab/...`)."""
        return f"{HOST}:{self.port}"

    def ref(self, image: str) -> str:
        """`image` (repo:tag) as this registry's reference."""
        return f"{self.address}/{image}"

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"


def config_text(storage: Path, port: int) -> str:
    """The registry's config: filesystem storage in `storage`, HTTP on 127.0.0.1:`port`, access log on."""
    return "\n".join([
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {HOST}:{port}",
        "",
    ])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with _OPENER.open(f"http://{HOST}:{port}/v2/", timeout=2) as res:
            return bool(res.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def recorded() -> Registry | None:
    """The registry the record names, when it still runs and answers."""
    try:
        data = json.loads(record_file().read_text())
        reg = Registry(int(data["port"]), int(data["pid"]), Path(data["storage"]), Path(data["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return reg if process.alive(reg.pid) and _answers(reg.port) else None


def program() -> str:
    """The registry program; LabError with the install command when it is missing."""
    found = shutil.which(PROGRAM) or shutil.which(PROGRAM, path="/usr/bin:/usr/sbin")
    if not found:
        raise LabError(f"no `{PROGRAM}` here: install Debian's {PACKAGE} package (`apt-get install -y {PACKAGE}`); "
                       "the lab runs it itself, on 127.0.0.1, not as a system service")
    return found


def start() -> Registry:
    """The lab's registry: the recorded one when it runs, else a new one on a free 127.0.0.1 port."""
    if not engine.is_local():
        raise LabError(f"the lab's registry listens on this machine's 127.0.0.1, which the {engine.describe_engine()} "
                       "cannot reach: point the registry route at a registry that engine can reach")
    running = recorded()
    if running is not None:
        return running
    stop()  # a stale record: its process is gone, its storage is of no use
    exe = program()
    root = folder()
    storage, log, cfg = root / "storage", root / "registry.log", root / "config.yml"
    storage.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cfg.write_text(config_text(storage, port))
    with log.open("ab") as fh:
        # Popen, not basecamp.process: the registry serves until stop() (process runs a program to its end).
        proc = subprocess.Popen([exe, "serve", str(cfg)], stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    reg = Registry(port, proc.pid, storage, log)
    record_file().write_text(json.dumps({"port": port, "pid": proc.pid, "storage": str(storage), "log": str(log),
                                         "started": time.time()}) + "\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"{exe} exited {proc.returncode} right after starting; its log: {log}")
        if _answers(port):
            return reg
        time.sleep(0.2)
    raise LabError(f"{exe} did not answer on {HOST}:{port} within {START_TIMEOUT_S:.0f} s; its log: {log}")


def stop() -> str:
    """Stop the recorded registry (if it runs) and remove its folder: config, storage, log. What it did, in words."""
    root = folder()
    if not root.exists():
        return ""
    said = []
    try:
        pid = int(json.loads(record_file().read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pid = 0
    if pid and process.alive(pid) and _is_registry(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.alive(pid):
            os.kill(pid, signal.SIGKILL)
        said.append(f"stopped the lab's registry (pid {pid})")

    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    shutil.rmtree(root, ignore_errors=True)
    said.append(f"removed its storage ({fmt_bytes(size)})")
    return ", ".join(said)


def _is_registry(pid: int) -> bool:
    """True when `pid` runs the registry program (a recycled pid must not be killed)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust the record
    return Path(argv0).name == PROGRAM


# --- what it stores and serves ---------------------------------------------------------------------


def stored_blobs(reg: Registry) -> dict[str, int]:
    """digest -> bytes of every blob in the registry's store (layers, configs, manifests)."""
    root = reg.storage / "docker" / "registry" / "v2" / "blobs"
    found: dict[str, int] = {}
    for data in root.glob("*/*/*/data"):
        found[f"{data.parent.parent.parent.name}:{data.parent.name}"] = data.stat().st_size
    return found


def log_mark(reg: Registry) -> int:
    """Where the access log ends now (bytes): pass it to `served_since`."""
    try:
        return reg.log.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class Served:
    """What the registry answered since a mark: requests, and the bytes of blobs and of everything."""

    requests: int
    blob_bytes: int
    total_bytes: int
    blobs: int


def served_since(reg: Registry, mark: int) -> Served:
    """Sum the access log's response bytes after `mark` (GET and HEAD; blobs separately)."""
    with reg.log.open("rb") as fh:
        fh.seek(mark)
        text = fh.read().decode(errors="replace")
    return parse_access_log(text)


def parse_access_log(text: str) -> Served:
    """The requests and bytes an access log's lines report (module doc); other lines are skipped."""
    requests = blob_bytes = total = blobs = 0
    for line in text.splitlines():
        m = _ACCESS.search(line)
        if not m or m["method"] not in ("GET", "HEAD"):
            continue
        requests += 1
        # A HEAD's line carries the Content-Length it announced, but no body crossed the wire.
        size = 0 if m["bytes"] == "-" or m["method"] == "HEAD" else int(m["bytes"])
        total += size
        if "/blobs/sha256:" in m["path"] and m["method"] == "GET" and m["status"].startswith("2"):
            blobs += 1
            blob_bytes += size
    return Served(requests, blob_bytes, total, blobs)


@dataclass(frozen=True)
class StoredImage:
    """An image as the registry stores it: its compressed layers and config, from the manifest."""

    ref: str
    layers: tuple[int, ...]
    config_bytes: int

    @property
    def compressed_bytes(self) -> int:
        """What a pull downloads at most: every layer (gzip-compressed) plus the config."""
        return sum(self.layers) + self.config_bytes


def manifest(reg: Registry, image: str) -> StoredImage:
    """The schema-2 manifest of `image` (repo:tag) in the registry, as layer sizes."""
    repo, _, tag = image.rpartition(":")
    req = urllib.request.Request(reg.url(f"/v2/{repo}/manifests/{tag}"),
                                 headers={"Accept": f"{MANIFEST_V2}, {OCI_MANIFEST}"})
    try:
        with _OPENER.open(req, timeout=10) as res:
            body = json.loads(res.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"the registry has no manifest for {image}: {exc}") from exc
    return stored_image(reg.ref(image), body)


def stored_image(ref: str, body: dict[str, object]) -> StoredImage:
    """A schema-2 (or OCI) manifest's layer and config sizes."""
    layers = body.get("layers")
    cfg = body.get("config")
    if not isinstance(layers, list) or not isinstance(cfg, dict):
        raise LabError(f"{ref}: not a single-image manifest (schema 2 or OCI): {sorted(body)}")
    return StoredImage(ref, tuple(int(layer["size"]) for layer in layers), int(cfg["size"]))


@dataclass(frozen=True)
class Push:
    """One `docker push`: seconds, and the bytes the registry stored that it did not have before."""

    ref: str
    seconds: float
    new_bytes: int
    new_blobs: int


def push(reg: Registry, image: str) -> Push:
    """Tag `image` (repo:tag) with the registry's address, `docker push` it, untag; what the registry gained."""
    target = reg.ref(image)
    found = engine.buildkit_cli()
    if found is None:
        raise LabError("no docker CLI here to push with")
    cli, env = found.argv[0], {**os.environ, **found.env}
    before = stored_blobs(reg)
    engine.run([cli, "tag", image, target], hint="tagging for the lab's registry", env=env)
    try:
        t0 = time.perf_counter()
        engine.run([cli, "push", target], hint=f"pushing to the lab's registry at {reg.address}", env=env)
        seconds = time.perf_counter() - t0
    finally:
        engine.run([cli, "image", "rm", target], hint="removing the registry tag", env=env)
    after = stored_blobs(reg)
    new = {d: n for d, n in after.items() if d not in before}
    return Push(target, seconds, sum(new.values()), len(new))
