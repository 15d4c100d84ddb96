"""The workshop bundle (issue 18, part 1): one file that lets a room run the series with no network.

`./lab bundle [--out FILE]` (`basecamp.bundlemake.make_bundle`), on a prepared machine, writes one tar holding
- `images/bases.tar`: `docker save` of the base images the steps name (stand-ins or real), their configs
  scrubbed of this machine's package index (the stand-ins bake it in as ENV; see `rewrite_image_tar`);
- `wheels/poetry/`: the pinned Poetry and the mirror plugin with their dependencies (from the tools venv);
- `wheels/lab/`: the lab's own environment (what `poetry sync --with lab` installed in .venv);
- `index/`: a PEP 503 simple index (`index/simple/<name>/`, files in `index/files/`) of every package a
  step Dockerfile installs, as wheels for the containers' Python and architecture: poetry.lock (all
  groups), the packages the Dockerfiles `pip install` (Poetry, uv), the dependency-change package of
  the measurement protocol, and uv.lock's pins when a scratch copy has one;
- `manifest.json`: every member's size and sha256, the lab commit, the platforms.

`./lab prepare --bundle FILE` unpacks it under .lab/bundle/ (`unpack`, stdlib only: it runs before the
lab's environment exists), installs Poetry and the lab's environment from the wheels with no index
(the `lab` script, `pip --no-index --find-links`), and loads the bases (`load_images`), their ENV now
pointing pip, Poetry and uv at this index on the engine's bridge gateway. While the bundle is in use
(`in_use`), every build serves the index there for its own duration (`serving`, a stdlib HTTP server
in a thread), and the build's result says so (`BuildResult.package_index`).

Nothing written here names the machine's package index: manifest, index pages, image configs and the
state file are checked for its host (`assert_no_index_host`). Third-party wheels and image layers are
copied as they are (pip and Poetry themselves name their default index in their code).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import http.server
import io
import ipaddress
import json
import re
import shutil
import socket
import socketserver
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from basecamp import config, process
from basecamp.errors import InputError, LabError

#: The state file (in bundle_dir()) that says a bundle is in use.
STATE_FILE = "in-use.json"
MANIFEST = "manifest.json"
IMAGES = "images/bases.tar"
FORMAT = 1
#: Label a base loaded from a bundle carries (value: the bundle's sha256); bases.py keeps such a base.
BUNDLE_LABEL = "org.annapurna.bundle"
#: What replaces the machine's index URL in the history of a bundled image (never resolvable).
SCRUBBED_URL = "http://index.invalid/simple"
#: The ENV a bundled base sets for the step builds: pip, Poetry's mirror plugin, uv (step 8 reads PIP_INDEX_URL).
INDEX_ENV = ("PIP_INDEX_URL", "PIP_TRUSTED_HOST", "POETRY_PYPI_MIRROR_URL", "UV_DEFAULT_INDEX", "UV_INSECURE_HOST")
#: What a build's result (BuildResult.package_index, Record.package_index) says when it installed from the bundle.
PACKAGE_INDEX = "workshop bundle"
#: The bases the step Dockerfiles name.
BASE_TAGS = (config.FULL_BASE, config.SLIM_BASE, config.DISTROLESS_BASE)


def bundle_dir() -> Path:
    """Where `unpack` puts a bundle's contents (.lab/bundle/)."""
    return config.LAB_HOME / "bundle"


def default_out() -> Path:
    """Where `./lab bundle` writes without --out."""
    return config.LAB_HOME / "workshop-bundle.tar"


def work_dir() -> Path:
    """Work folder of `make_bundle`: downloads stay here, so a second bundle downloads nothing again."""
    return config.LAB_HOME / "bundle-work"


# --- names, files and the simple index (engine-free) ----------------------------------------------


def normalize(name: str) -> str:
    """PEP 503: runs of `-`, `_`, `.` become one `-`, lower case ("Typing_Extensions" -> "typing-extensions")."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    """The normalised project name of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0])
    for ext in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(ext):
            return normalize(filename[: -len(ext)].rsplit("-", 1)[0])
    raise InputError(f"{filename} is neither a wheel nor an sdist")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_simple_index(files: Iterable[Path], root: Path) -> dict[str, list[str]]:
    """A PEP 503 index in `root`: files copied to root/files/, root/simple/index.html, root/simple/<name>/index.html.

    Links are relative and carry `#sha256=`; returns {normalised name: [file names]}.
    """
    projects: dict[str, list[str]] = {}
    (root / "files").mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for path in sorted(files, key=lambda p: p.name):
        target = root / "files" / path.name
        if not target.exists():
            shutil.copy2(path, target)
        hashes[path.name] = sha256_of(target)
        projects.setdefault(project_of(path.name), []).append(path.name)
    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))
    (simple / "index.html").write_text(_page("Simple index", links))
    for name, names in projects.items():
        (simple / name).mkdir(exist_ok=True)
        body = "".join(f'<a href="../../files/{html.escape(f)}#sha256={hashes[f]}">{html.escape(f)}</a><br>\n'
                       for f in sorted(names))
        (simple / name / "index.html").write_text(_page(f"Links for {name}", body))
    return projects


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n<h1>{title}</h1>\n{body}</body></html>\n"


@dataclass
class Entry:
    """One member of the bundle as the manifest lists it."""

    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a bundle holds and where it came from."""

    lab_commit: str
    created: str
    host_platform: str
    container_platform: str
    images: list[str]
    entries: list[Entry] = field(default_factory=list)
    format: int = FORMAT

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k != "entries"}
        data["entries"] = [e.__dict__ for e in self.entries]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise InputError(f"bundle format {data.get('format')!r}, this lab reads format {FORMAT}")
        entries = [Entry(**e) for e in data.pop("entries")]
        return cls(**data, entries=entries)


def manifest_for(root: Path, **info: Any) -> Manifest:
    """The manifest of everything under `root` (paths relative, sorted)."""
    entries = [Entry(p.relative_to(root).as_posix(), p.stat().st_size, sha256_of(p))
               for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST]
    return Manifest(entries=entries, **info)


def assert_no_index_host(blobs: Iterable[tuple[str, bytes]], host: str | None) -> None:
    """Raise when the index's host appears in any of these (name, bytes); the message never names it."""
    if not host:
        return
    needle = host.encode().lower()
    found = [name for name, data in blobs if needle in data.lower()]
    if found:
        raise LabError("the package index's host name would be written into the bundle, in: " + ", ".join(found))


# --- image tars: scrub the index, point at the bundle's ---------------------------------------------


def _env_with(env: list[str], drop_url: str | None, add: dict[str, str]) -> list[str]:
    keep = [e for e in env if not (drop_url and drop_url in e) and e.split("=", 1)[0] not in add]
    return keep + [f"{k}={v}" for k, v in add.items()]


def rewrite_config(cfg: dict[str, Any], drop_url: str | None, env: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """An image config without ENV naming `drop_url` (and that URL replaced in its history), with `env` and
    `labels` set."""
    for key in ("config", "container_config"):
        section = cfg.get(key)
        if not isinstance(section, dict):
            continue
        section["Env"] = _env_with(list(section.get("Env") or []), drop_url, env if key == "config" else {})
        if key == "config":
            section["Labels"] = {**(section.get("Labels") or {}), **labels}
        if drop_url and isinstance(section.get("Cmd"), list):
            section["Cmd"] = [c.replace(drop_url, SCRUBBED_URL) for c in section["Cmd"]]
    for item in cfg.get("history") or []:
        if drop_url and "created_by" in item:
            item["created_by"] = item["created_by"].replace(drop_url, SCRUBBED_URL)
    return cfg


def rewrite_image_tar(src: Path, dst: Path, *, drop_url: str | None = None, env: dict[str, str] | None = None,
                      labels: dict[str, str] | None = None) -> list[str]:
    """Copy a `docker save` tar (legacy layout: manifest.json, <config>.json, <layer>/layer.tar), every image
    config rewritten by `rewrite_config` and stored under its new sha256; returns the new image ids.

    Layers are copied byte for byte (their digests are in the config and do not change). The v1
    compatibility `json` files of the layers are dropped: `docker load` does not read them, and they
    repeat the old config.
    """
    env, labels = env or {}, labels or {}
    with tarfile.open(src) as tin:
        manifest = json.loads(_read(tin, "manifest.json"))
        renamed: dict[str, str] = {}
        configs: dict[str, bytes] = {}
        for item in manifest:
            old = item["Config"]
            if old in renamed:
                continue
            cfg = rewrite_config(json.loads(_read(tin, old)), drop_url, env, labels)
            data = json.dumps(cfg, separators=(",", ":")).encode()
            new = hashlib.sha256(data).hexdigest() + ".json"
            renamed[old], configs[new] = new, data
        for item in manifest:
            item["Config"] = renamed[item["Config"]]
        with tarfile.open(dst, "w") as tout:
            for member in tin:
                base = member.name.rsplit("/", 1)[-1]
                if member.name in renamed or member.name in ("manifest.json", "repositories"):
                    continue
                if base in ("json", "VERSION") and "/" in member.name:
                    continue
                fh = tin.extractfile(member) if member.isfile() else None
                tout.addfile(member, fh)
            for name, data in [*configs.items(), ("manifest.json", json.dumps(manifest).encode())]:
                _add_bytes(tout, name, data)
    return ["sha256:" + n.removesuffix(".json") for n in configs]


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    fh = tar.extractfile(name)
    if fh is None:
        raise InputError(f"{name} missing from the image tar")
    return fh.read()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def image_configs(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of the JSON members of an image tar (configs, manifest): what the host check reads."""
    with tarfile.open(path) as tar:
        return [(m.name, _read(tar, m.name)) for m in tar if m.isfile() and not m.name.endswith("layer.tar")]



def run_docker(*args: str, timeout: float = 1800) -> str:
    """The docker CLI's `save`/`load` (streams of hundreds of MB: the CLI writes them to files itself)."""
    docker = shutil.which("docker") or "docker"
    return process.run([docker, *args], timeout=timeout, hint="the workshop bundle").stdout


# --- using a bundle ------------------------------------------------------------------------------------


def unpack(bundle: Path, dest: Path | None = None, say: Callable[[str], None] = print) -> Manifest:
    """Extract a bundle into `dest` (.lab/bundle/), checking every member against the manifest. Stdlib only."""
    dest = dest or bundle_dir()
    started = time.perf_counter()
    with tarfile.open(bundle) as tar:
        manifest = Manifest.from_json(_read(tar, MANIFEST).decode())
        expected = {e.path: e for e in manifest.entries}
        for path in ("index", "wheels", "images", MANIFEST):
            target = dest / path
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        dest.mkdir(parents=True, exist_ok=True)
        seen = set()
        for member in tar:
            if member.name == MANIFEST:
                continue
            entry = expected.get(member.name)
            if entry is None or not member.isfile():
                raise InputError(f"{bundle}: {member.name} is not in its manifest")
            target = dest / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            fh = tar.extractfile(member)
            assert fh is not None
            with target.open("wb") as out:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != entry.sha256 or target.stat().st_size != entry.size:
                raise InputError(f"{bundle}: {member.name} does not match its manifest (a damaged copy?)")
            seen.add(member.name)
        if seen != set(expected):
            raise InputError(f"{bundle}: missing {', '.join(sorted(set(expected) - seen)[:5])}")
        (dest / MANIFEST).write_text(manifest.to_json())
    say(f"unpacked {bundle} ({manifest.total_bytes / 1e6:.0f} MB, {len(manifest.entries)} files) "
        f"in {time.perf_counter() - started:.1f} s")
    return manifest


def bridge_gateway() -> str:
    """The engine's default bridge gateway: the address build containers reach this host at."""
    from basecamp import engine  # here, not above: it loads the docker SDK

    net = engine.client().networks.get("bridge")
    for cfg in net.attrs.get("IPAM", {}).get("Config") or []:
        if cfg.get("Gateway"):
            return str(cfg["Gateway"])
        if cfg.get("Subnet") and ":" not in cfg["Subnet"]:  # the default bridge: its first address (docker0's)
            return str(next(ipaddress.ip_network(cfg["Subnet"], strict=False).hosts()))
    raise LabError("the engine's bridge network has no gateway: the bundle's index cannot be served to builds")


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def index_url(gateway: str, port: int) -> str:
    return f"http://{gateway}:{port}/simple"


def index_env(gateway: str, port: int) -> dict[str, str]:
    """ENV of a bundled base: every installer of the steps at the bundle's index (plain HTTP on the gateway)."""
    url = index_url(gateway, port)
    return {"PIP_INDEX_URL": url, "PIP_TRUSTED_HOST": f"{gateway}:{port}", "POETRY_PYPI_MIRROR_URL": url,
            "UV_DEFAULT_INDEX": url, "UV_INSECURE_HOST": f"{gateway}:{port}"}


@dataclass(frozen=True)
class State:
    """A bundle in use: where its index is served to builds."""

    gateway: str
    port: int
    bundle_sha256: str
    root: Path

    @property
    def url(self) -> str:
        return index_url(self.gateway, self.port)


def in_use(root: Path | None = None) -> State | None:
    """The bundle this lab uses (`./lab prepare --bundle`), or None."""
    root = root or bundle_dir()
    try:
        data = json.loads((root / STATE_FILE).read_text())
        return State(data["gateway"], int(data["port"]), data["bundle_sha256"], root)
    except (OSError, ValueError, KeyError):
        return None


def load_images(root: Path | None = None, say: Callable[[str], None] = print, index_host: str | None = None) -> State:
    """`docker load` the unpacked bases, their ENV pointing at the bundle's index on the bridge gateway.

    `index_host`: this machine's package index host, which the state file must not name."""
    root = root or bundle_dir()
    manifest = Manifest.from_json((root / MANIFEST).read_text())
    gateway = bridge_gateway()
    previous = in_use(root)
    port = previous.port if previous and previous.gateway == gateway else free_port(gateway)
    bundle_id = hashlib.sha256((root / MANIFEST).read_bytes()).hexdigest()
    started = time.perf_counter()
    ready = root / "images" / "bases-ready.tar"
    rewrite_image_tar(root / IMAGES, ready, env=index_env(gateway, port), labels={BUNDLE_LABEL: bundle_id})
    run_docker("load", "-i", str(ready))
    ready.unlink()
    state = {"gateway": gateway, "port": port, "bundle_sha256": bundle_id}
    assert_no_index_host([(STATE_FILE, json.dumps(state).encode())], index_host)
    (root / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
    say(f"loaded {', '.join(manifest.images)} in {time.perf_counter() - started:.1f} s; "
        f"builds install from the bundle's index at {index_url(gateway, port)}")
    return State(gateway, port, bundle_id, root)


def from_bundle(labels: dict[str, str] | None) -> bool:
    """True for a base loaded from the bundle in use: `./lab prepare` keeps it as it is (bases.py)."""
    state = in_use()
    return state is not None and (labels or {}).get(BUNDLE_LABEL) == state.bundle_sha256


class _Handler(http.server.SimpleHTTPRequestHandler):
    log: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.server.access_log.append(f"{self.client_address[0]} {format % args}")  # type: ignore[attr-defined]


class _Server(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        """Bind without http.server's reverse DNS lookup of the address (`socket.getfqdn`): offline, that
        lookup is a packet to the name server, on every build."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class IndexServer:
    """The unpacked index served over HTTP on one address, in a daemon thread; `access_log` lists requests."""

    def __init__(self, root: Path, address: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {})
        self.httpd = _Server((address, port), lambda *a: handler(*a, directory=str(root)))
        self.httpd.access_log = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="bundle-index", daemon=True)

    @property
    def access_log(self) -> list[str]:
        return self.httpd.access_log  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


#: Requests of the last build served from the bundle (tests read it).
last_access_log: list[str] = []


@contextlib.contextmanager
def serving() -> Iterator[State | None]:
    """While a bundle is in use: its index served on the bridge gateway for the body's duration; else nothing."""
    state = in_use()
    if state is None:
        yield None
        return
    try:
        server = IndexServer(state.root / "index", state.gateway, state.port)
    except OSError as exc:
        raise LabError(f"the bundle's index cannot be served on {state.gateway}:{state.port} ({exc}); "
                       "run `./lab prepare --bundle FILE` again") from exc
    with server:
        try:
            yield state
        finally:
            last_access_log[:] = server.access_log


def notice() -> str:
    """The one line a notebook prints when the bundle is in use ("" when not)."""
    state = in_use()
    return f"workshop bundle in use: the builds install from its index ({state.url}), not from the network" if state else ""


def main(argv: list[str] | None = None) -> int:
    """`python -m basecamp.bundle unpack FILE`: what `./lab prepare --bundle` runs before the lab has an environment."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "unpack":
        try:
            unpack(Path(args[1]))
        except (LabError, OSError, tarfile.TarError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m basecamp.bundle unpack FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
