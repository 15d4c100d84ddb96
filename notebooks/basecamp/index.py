"""Which Python package index this machine uses, and what Poetry needs to reach it.

Nothing here names an index host: the URL comes from the environment, pip's configuration,
or pip's own default, all read at run time.
"""

from __future__ import annotations

import base64
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from basecamp import bundle, process

#: A release that exists on every PyPI-shaped index; its per-version JSON page is what Poetry reads.
PROBE_PROJECT = "pip"
PROBE_RELEASE = "24.0"
#: Seconds each probe may take; an index that needs longer counts as not answering.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class IndexSettings:
    """The package index pip uses here, whether Poetry needs the mirror plugin for it, and the CA bundle."""

    url: str
    needs_mirror: bool
    ca_bundle: Path | None

    @property
    def is_default(self) -> bool:
        """True when the index is pip's built-in default."""
        return self.url.rstrip("/") == default_index_url().rstrip("/")


@dataclass(frozen=True)
class ProbeResult:
    """What the index answered: HTTP status of its simple page and of its JSON API (0: no answer)."""

    simple_url: str
    simple_status: int
    json_url: str | None
    json_status: int


def default_index_url() -> str:
    """pip's built-in default simple index."""
    from pip._internal.models.index import PyPI

    return str(PyPI.simple_url)


def has_credentials(url: str) -> bool:
    """True when the URL carries a user name or password (user:pass@host)."""
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None


def redact(url: str) -> str:
    """The URL with any credentials replaced by `***`, safe to print."""
    parts = urlsplit(url)
    if not has_credentials(url):
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def pip_config() -> dict[str, str]:
    """pip's configuration as `python -m pip config list` prints it: {"global.index-url": "...", ...}."""
    proc = process.attempt([sys.executable, "-m", "pip", "config", "list"], timeout=60)
    if proc is None or not proc.ok:
        return {}
    return parse_pip_config_list(proc.stdout)


def parse_pip_config_list(text: str) -> dict[str, str]:
    """Parse `pip config list` lines of the form `section.key='value'`."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _config_value(config: dict[str, str], name: str) -> str | None:
    """A pip option from config files, most specific section first (install, then global)."""
    for section in ("install", "global"):
        value = config.get(f"{section}.{name}")
        if value:
            return value.split()[0]
    return None


def configured_index_url(config: dict[str, str] | None = None) -> str:
    """PIP_INDEX_URL, else pip's configured `index-url`, else pip's default."""
    env = os.environ.get("PIP_INDEX_URL", "").strip()
    if env:
        return env.split()[0]
    value = _config_value(pip_config() if config is None else config, "index-url")
    return value or default_index_url()


def configured_ca_bundle(config: dict[str, str] | None = None) -> Path | None:
    """SSL_CERT_FILE, REQUESTS_CA_BUNDLE, PIP_CERT, then pip's `cert`: the first that names a file."""
    candidates = [os.environ.get(name, "") for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")]
    candidates.append(_config_value(pip_config() if config is None else config, "cert") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def json_api_url(index_url: str, project: str = PROBE_PROJECT, release: str = PROBE_RELEASE) -> str | None:
    """The per-release JSON page of a PyPI-shaped index (`.../simple` → `.../pypi/<p>/<v>/json`), or None."""
    parts = urlsplit(index_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/simple") and path != "simple":
        return None
    base = path[: -len("simple")]
    return urlunsplit((parts.scheme, parts.netloc, f"{base}pypi/{project}/{release}/json", "", ""))


def _get_status(url: str, ca_bundle: Path | None, timeout: float) -> int:
    """HTTP status of a GET (credentials in the URL become basic auth); 0 when nothing answers."""
    parts = urlsplit(url)
    headers = {"User-Agent": "annapurna-lab-probe"}
    if has_credentials(url):
        token = f"{parts.username or ''}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    request = urllib.request.Request(url, headers=headers)
    try:
        context = None
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def probe(index_url: str, ca_bundle: Path | None = None, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Ask the index for pip's simple page and for one release's JSON page."""
    simple_url = index_url.rstrip("/") + f"/{PROBE_PROJECT}/"
    json_url = json_api_url(index_url)
    simple_status = _get_status(simple_url, ca_bundle, timeout)
    json_status = _get_status(json_url, ca_bundle, timeout) if json_url else 0
    return ProbeResult(simple_url=redact(simple_url), simple_status=simple_status, json_url=json_url and redact(json_url), json_status=json_status)


def needs_mirror(result: ProbeResult) -> bool:
    """Poetry needs the mirror plugin when the simple index answers but its JSON API does not."""
    return result.simple_status == 200 and result.json_status != 200


@cache
def index_settings() -> IndexSettings:
    """The index settings of this machine (probed once per process; `index_settings.cache_clear()` to redo).

    While a workshop bundle is in use (basecamp.bundle): its index, which the lab serves itself, unprobed.
    """

    state = bundle.in_use()
    if state is not None:
        return IndexSettings(url=state.url, needs_mirror=True, ca_bundle=None)
    config = pip_config()
    url = configured_index_url(config)
    ca_bundle = configured_ca_bundle(config)
    return IndexSettings(url=url, needs_mirror=needs_mirror(probe(url, ca_bundle)), ca_bundle=ca_bundle)


def poetry_env(settings: IndexSettings | None = None) -> dict[str, str]:
    """Environment variables Poetry needs on this host to reach the index (merge into os.environ)."""
    settings = settings or index_settings()
    env: dict[str, str] = {}
    if settings.needs_mirror:
        env["POETRY_PYPI_MIRROR_URL"] = settings.url
    if settings.ca_bundle is not None:
        env["REQUESTS_CA_BUNDLE"] = str(settings.ca_bundle)
        env["SSL_CERT_FILE"] = str(settings.ca_bundle)
    return env


def run_lock(cmd: list[str], env: dict[str, str], timeout_s: int, why: str) -> str:
    """Run a command that resolves against the package index (`poetry lock`, `uv lock`); its stdout.

    Raises CommandError naming the command, its output and `why` the lab runs it, when it fails or
    takes longer than `timeout_s`.
    """

    with bundle.serving():  # a workshop bundle's index, served for the lock's duration
        return process.run(cmd, timeout=timeout_s, env=env, inherit_env=False,
                           hint=f"{why}: is the package index reachable?").stdout
