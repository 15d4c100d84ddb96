"""Credentials in builds: a BuildKit secret leaves no trace in the image, a build ARG does. Proved, not told.

`secret_demo()` builds dockerfiles/extras/secret-index.Dockerfile (the index URL, with a fake
user:password injected, as a build secret) and arg-index.Dockerfile (the same URL as an ARG), then
searches each image for the password: its history (`docker history --no-trunc`), its config
(Env, Labels) and every file of `docker save` (every layer tar). Outputs mask the index's host.
"""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from basecamp import config, disk
from basecamp.build import build
from basecamp.index import index_settings

EXTRAS_DIR = config.DOCKERFILES_DIR / "extras"
#: The fake credential the demo injects; nothing real is ever needed or shown.
DEMO_USER = "lab-demo"
DEMO_PASSWORD = "fake-password-0123"
MASK = "<index>"
_CHUNK = 1 << 20


@dataclass
class Exposure:
    """Where a string was found in one image (empty lists: nowhere)."""

    image: str
    history: list[str] = field(default_factory=list)
    config: list[str] = field(default_factory=list)
    #: Names of `docker save` members (layer tars, config json) that contain it.
    saved_files: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.history or self.config or self.saved_files)

    def line(self) -> str:
        if not self.found:
            return f"{self.image}: not in its history, config or any layer"
        return (f"{self.image}: FOUND in {len(self.history)} history entr(ies), {len(self.config)} config field(s), "
                f"{len(self.saved_files)} file(s) of `docker save`")


@dataclass
class SecretDemo:
    """Both images of the demo, where the password was found in each, and their masked new history."""

    secret: Exposure
    arg: Exposure
    secret_history: list[str]
    arg_history: list[str]


def with_credentials(url: str, user: str = DEMO_USER, password: str = DEMO_PASSWORD) -> str:
    """`url` with user:password@ put in front of its host."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


def mask(text: str, url: str) -> str:
    """`text` with the index's host, port and path replaced by <index>, so outputs never name it."""
    parts = urlsplit(url)
    where = parts.netloc.rsplit("@", 1)[-1] + parts.path.rstrip("/")
    return text.replace(where, MASK) if where else text


def new_history(client: Any, ref: str, base: str) -> list[str]:
    """The `docker history --no-trunc` commands the image adds over `base`, oldest first."""
    mine = [h.get("CreatedBy", "") for h in client.api.history(ref)]
    theirs = client.api.history(base)
    return list(reversed(mine[: max(len(mine) - len(theirs), 0)]))


def _stream_contains(fh: Any, needle: bytes) -> bool:
    tail = b""
    while chunk := fh.read(_CHUNK):
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle):]
    return False


def find_in_image(client: Any, ref: str, needle: str) -> Exposure:
    """Search `ref`'s history, its config's Env and Labels, and every file `docker save` writes."""
    out = Exposure(ref)
    raw = needle.encode()
    out.history = [h.get("CreatedBy", "") for h in client.api.history(ref) if needle in h.get("CreatedBy", "")]
    cfg = client.images.get(ref).attrs.get("Config") or {}
    out.config = [f"Env {e}" for e in cfg.get("Env") or [] if needle in e]
    out.config += [f"Label {k}" for k, v in (cfg.get("Labels") or {}).items() if needle in f"{k}={v}"]
    with tempfile.TemporaryFile() as tmp:
        for chunk in client.images.get(ref).save(named=False):
            tmp.write(chunk)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            for member in tar:
                if member.isfile():
                    fh = tar.extractfile(member)
                    if fh is not None and _stream_contains(fh, raw):
                        out.saved_files.append(member.name)
    return out


def secret_demo(index_url: str | None = None) -> SecretDemo:
    """Build both extras with a fake credential in the index URL and search both images for it."""
    from basecamp import engine  # here, not above: it loads the docker SDK

    url = with_credentials(index_url or index_settings().url)
    client = engine.client()
    disk.ensure_disk_space(client)  # build() leaves the free-disk check to its callers
    base = config.SLIM_BASE
    with tempfile.TemporaryDirectory(prefix="annapurna-secret-") as ctx:
        secret_ref = f"{config.IMAGE_REPO_PREFIX}/extras-secret-index:demo"
        arg_ref = f"{config.IMAGE_REPO_PREFIX}/extras-arg-index:demo"
        build(EXTRAS_DIR / "secret-index.Dockerfile", Path(ctx), secret_ref, secrets={"index_url": url},
              display="none")
        build(EXTRAS_DIR / "arg-index.Dockerfile", Path(ctx), arg_ref, build_args={"INDEX_URL": url}, display="none")
    return SecretDemo(
        secret=find_in_image(client, secret_ref, DEMO_PASSWORD),
        arg=find_in_image(client, arg_ref, DEMO_PASSWORD),
        secret_history=[mask(h, url) for h in new_history(client, secret_ref, base)],
        arg_history=[mask(h, url) for h in new_history(client, arg_ref, base)],
    )
