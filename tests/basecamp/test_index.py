"""basecamp.index: where the package index is and whether Poetry needs the mirror plugin for it."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from basecamp import index
from basecamp.index import IndexSettings


@dataclass
class FakeIndex:
    """A loopback index: serves /simple/pip/ and, when `json_ok`, the per-release JSON page."""

    json_ok: bool = True
    seen: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    state = FakeIndex()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.path)
            state.auth.append(self.headers.get("Authorization"))
            ok = self.path == "/simple/pip/" or (state.json_ok and self.path == "/pypi/pip/24.0/json")
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"{}" if ok else b"not here")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    index.index_settings.cache_clear()
    yield
    index.index_settings.cache_clear()


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/simple"


def test_parse_pip_config_list() -> None:
    text = "global.index-url='https://mirror.example/simple'\n:env:.cert='/x/ca.crt'\ninstall.timeout=\"5\"\nnoise\n"
    assert index.parse_pip_config_list(text) == {
        "global.index-url": "https://mirror.example/simple",
        ":env:.cert": "/x/ca.crt",
        "install.timeout": "5",
    }


def test_index_url_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    assert index.configured_index_url({"global.index-url": "https://conf.example/simple"}) == "https://env.example/simple"


def test_index_url_from_config_install_before_global(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    config = {"global.index-url": "https://global.example/simple", "install.index-url": "https://install.example/simple"}
    assert index.configured_index_url(config) == "https://install.example/simple"
    assert index.configured_index_url({"global.index-url": "https://global.example/simple"}) == "https://global.example/simple"


def test_index_url_defaults_to_pips_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from pip._internal.models.index import PyPI

    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert index.configured_index_url({}) == PyPI.simple_url == index.default_index_url()
    assert IndexSettings(PyPI.simple_url + "/", True, None).is_default


def test_ca_bundle_order_and_missing_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first, second = tmp_path / "a.crt", tmp_path / "b.crt"
    first.write_text("a")
    second.write_text("b")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"):
        monkeypatch.delenv(name, raising=False)
    assert index.configured_ca_bundle({}) is None
    assert index.configured_ca_bundle({"global.cert": str(second)}) == second
    monkeypatch.setenv("PIP_CERT", str(second))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.crt"))
    assert index.configured_ca_bundle({}) == second
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(first))
    assert index.configured_ca_bundle({}) == first


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://idx.example/simple", "https://idx.example/pypi/pip/24.0/json"),
        ("https://idx.example/simple/", "https://idx.example/pypi/pip/24.0/json"),
        ("http://idx.example:8080/repo/simple", "http://idx.example:8080/repo/pypi/pip/24.0/json"),
        ("https://idx.example/root/pypi/+simple/", None),
    ],
)
def test_json_api_url(url: str, expected: str | None) -> None:
    assert index.json_api_url(url) == expected


def test_credentials_detected_and_redacted() -> None:
    assert index.has_credentials("https://user:secret@idx.example/simple")
    assert index.has_credentials("https://token@idx.example/simple")
    assert not index.has_credentials("https://idx.example/simple")
    assert index.redact("https://user:secret@idx.example:8443/simple") == "https://***@idx.example:8443/simple"
    assert index.redact("https://idx.example/simple") == "https://idx.example/simple"


def test_probe_json_missing_needs_mirror(fake_index: FakeIndex) -> None:
    fake_index.json_ok = False
    result = index.probe(fake_index.url, timeout=3)
    assert (result.simple_status, result.json_status) == (200, 404)
    assert index.needs_mirror(result)


def test_probe_full_api_needs_no_mirror(fake_index: FakeIndex) -> None:
    result = index.probe(fake_index.url, timeout=3)
    assert (result.simple_status, result.json_status) == (200, 200)
    assert not index.needs_mirror(result)


def test_probe_nothing_answers() -> None:
    result = index.probe(closed_port_url(), timeout=2)
    assert (result.simple_status, result.json_status) == (0, 0)
    assert not index.needs_mirror(result)


def test_probe_sends_credentials_as_basic_auth(fake_index: FakeIndex) -> None:
    url = fake_index.url.replace("http://", "http://user:pw@")
    result = index.probe(url, timeout=3)
    assert result.simple_status == 200
    assert "pw" not in result.simple_url
    assert fake_index.auth[0] == "Basic " + base64.b64encode(b"user:pw").decode()


def test_index_settings_from_env(monkeypatch: pytest.MonkeyPatch, fake_index: FakeIndex, tmp_path: Path) -> None:
    fake_index.json_ok = False
    bundle = tmp_path / "ca.crt"
    bundle.write_text("pem")
    monkeypatch.setenv("PIP_INDEX_URL", fake_index.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setattr(index, "pip_config", dict)
    settings = index.index_settings()
    assert settings == IndexSettings(url=fake_index.url, needs_mirror=True, ca_bundle=bundle)
    assert index.index_settings() is settings  # cached
    assert not settings.is_default


def test_poetry_env() -> None:
    settings = IndexSettings(url="https://idx.example/simple", needs_mirror=True, ca_bundle=Path("/etc/ca.pem"))
    assert index.poetry_env(settings) == {
        "POETRY_PYPI_MIRROR_URL": "https://idx.example/simple",
        "REQUESTS_CA_BUNDLE": "/etc/ca.pem",
        "SSL_CERT_FILE": "/etc/ca.pem",
    }
    assert index.poetry_env(IndexSettings(url="https://idx.example/simple", needs_mirror=False, ca_bundle=None)) == {}


def test_pip_config_reads_what_pip_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `pip config list`, pointed at a file of ours (PIP_CONFIG_FILE is read last, so it wins)."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://idx.example/simple/\ntimeout = 7\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    config = index.pip_config()
    assert config["global.index-url"] == "https://idx.example/simple/"
    assert config["global.timeout"] == "7"


def test_run_lock_returns_stdout_and_names_the_failure() -> None:
    from basecamp.errors import CommandError
    from basecamp.index import run_lock

    assert run_lock(["sh", "-c", "echo locked"], {}, 30, "why") == "locked\n"
    with pytest.raises(CommandError) as failed:
        run_lock(["sh", "-c", "echo out; echo err >&2; exit 3"], {}, 30, "the lab relocks")
    assert failed.value.returncode == 3
    assert failed.value.output == "out\nerr\n"
    assert failed.value.hint == "the lab relocks: is the package index reachable?"
    with pytest.raises(CommandError, match="timed out after 1 s"):
        run_lock(["sleep", "5"], {}, 1, "why")
