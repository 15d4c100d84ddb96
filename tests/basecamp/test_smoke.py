"""smoke: the HTTP probe (no engine) and smoke tests of a busybox httpd image (engine)."""

from __future__ import annotations

import http.server
import importlib
import socket
import threading
import types
import typing
import uuid

import pytest
from basecamp import config, engine
from basecamp.build import build
from basecamp.errors import InputError
from basecamp.smoke import smoke_test
from test_build import BUSYBOX, ensure_busybox

# Not `from basecamp import smoke`: the package's lazy exports may replace such attributes.
smoke_mod = importlib.import_module("basecamp.smoke")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/health" else 404
        body = b'{"status": "ok"}' if code == 200 else b"nope"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_get_statuses(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # must be ignored for 127.0.0.1
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert smoke_mod._get(f"http://127.0.0.1:{port}/health") == smoke_mod._Answer(200, '{"status": "ok"}')
        assert smoke_mod._get(f"http://127.0.0.1:{port}/other") == smoke_mod._Answer(404, "nope")
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert smoke_mod._get(f"http://127.0.0.1:{free}/health").status is None


def test_path_must_be_absolute():
    with pytest.raises(InputError):
        smoke_test("whatever", path="health")


class _Routes(http.server.BaseHTTPRequestHandler):
    """Answers from the class's ROUTES: {path: (status, body or redirect target)}; 404 elsewhere."""

    ROUTES: typing.ClassVar[dict] = {}

    def do_GET(self):
        status, text = self.ROUTES.get(self.path, (404, "nope"))
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", text)
        body = text.encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _FakeContainer:
    """What smoke_test asks of a container, with the port published to a local server."""

    def __init__(self, host_port):
        self.status = "running"
        self.attrs = {"NetworkSettings": {"Ports": {"8000/tcp": [{"HostPort": str(host_port)}]}}, "State": {}}
        self.removed = False

    def start(self):
        pass

    def reload(self):
        pass

    def logs(self, tail):
        return b""

    def remove(self, force):
        self.removed = True


@pytest.fixture
def served(monkeypatch):
    """A local server standing in for the container: set its routes, get (fake container, server)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("R", (_Routes,), {"ROUTES": {}}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    container = _FakeContainer(server.server_address[1])
    client = types.SimpleNamespace(images=types.SimpleNamespace(get=lambda ref: None),
                                   containers=types.SimpleNamespace(create=lambda *a, **k: container))
    monkeypatch.setattr(engine, "client", lambda: client)
    yield container, server.RequestHandlerClass
    server.shutdown()
    server.server_close()


CANDIDATES = ["/health", "/healthz", "/", "/docs"]


def test_the_first_path_to_answer_2xx_wins(served):
    container, handler = served
    handler.ROUTES.update({"/healthz": (200, '{"ok": true}'), "/docs": (200, "docs")})
    r = smoke_test("img", paths=CANDIDATES, timeout_s=5)
    assert r.ok and (r.path, r.status, r.body) == ("/healthz", 200, '{"ok": true}') and container.removed
    assert r.url.endswith("/healthz") and r.tried == tuple(CANDIDATES)
    assert "HTTP 200 from /healthz (asked /health first: no 2xx)" in r.summary()
    handler.ROUTES["/health"] = (204, "")
    first = smoke_test("img", paths=CANDIDATES, timeout_s=5)
    assert first.path == "/health" and "from /health (the first of /health, /healthz, /, /docs)" in first.summary()


def test_a_redirect_counts_when_it_ends_in_2xx(served):
    _, handler = served
    handler.ROUTES.update({"/": (307, "/docs"), "/docs": (200, "docs")})
    r = smoke_test("img", paths=["/health", "/"], timeout_s=5)
    assert r.ok and r.path == "/" and r.body == "docs"


def test_404_on_every_path_is_not_serving(served):
    _, handler = served
    handler.ROUTES.update({"/": (302, "/nowhere")})
    r = smoke_test("img", paths=CANDIDATES, timeout_s=0.6)
    assert not r.ok and r.path == "" and "timed out" in r.error
    assert "last answers: /health 404, /healthz 404, / 404, /docs 404; pass the path your app serves" in r.error


def test_paths_must_be_a_list_of_absolute_paths():
    with pytest.raises(InputError, match="list of paths"):
        smoke_test("whatever", paths="/health")
    with pytest.raises(InputError, match="'docs' must start with '/'"):
        smoke_test("whatever", paths=["/health", "docs"])


# --- engine ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def httpd_image(tmp_path_factory):
    """busybox httpd serving /www on port 8000 after a 1 s start-up delay; /health says ok."""
    dk = engine.client()
    ensure_busybox(dk)
    root = tmp_path_factory.mktemp("httpd")
    (root / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN mkdir -p /www && echo ok > /www/health\nEXPOSE 8000\n"
        'CMD ["sh", "-c", "echo starting; sleep 1; exec httpd -f -v -p 8000 -h /www"]\n'
    )
    tag = f"annapurna-lab/test-httpd:{uuid.uuid4().hex[:8]}"
    build(root / "Dockerfile", root, tag, display="none")
    yield tag
    dk.images.remove(tag, force=True)


def _containers_of(image: str) -> list:
    return engine.client().containers.list(all=True, filters={"ancestor": image})


@pytest.mark.engine
def test_smoke_ok(httpd_image):
    r = smoke_test(httpd_image, timeout_s=30)
    assert r.ok and r.status == 200 and r.body == "ok\n" and r.error == ""
    assert isinstance(r.host_port, int) and r.url == f"http://127.0.0.1:{r.host_port}/health"
    assert 0.9 < r.seconds_to_ready < 30  # the app sleeps 1 s before listening
    assert "starting" in r.logs
    assert _containers_of(httpd_image) == []
    assert "HTTP 200" in r.summary()


@pytest.mark.engine
def test_smoke_published_on_loopback_only_and_labelled(httpd_image, monkeypatch):
    seen = {}
    real_get = smoke_mod._get

    def spy(url):
        if not seen:
            (c,) = _containers_of(httpd_image)
            seen["labels"] = c.labels
            seen["ports"] = c.attrs["HostConfig"]["PortBindings"]
        return real_get(url)

    monkeypatch.setattr(smoke_mod, "_get", spy)
    assert smoke_test(httpd_image, timeout_s=30).ok
    assert seen["labels"][config.LAB_LABEL] == config.LAB_LABEL_VALUE
    assert seen["ports"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}


@pytest.mark.engine
def test_smoke_timeout_reports_last_status(httpd_image):
    r = smoke_test(httpd_image, path="/missing", timeout_s=3)
    assert not r.ok and r.status == 404 and "timed out" in r.error
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_smoke_container_exits_early(httpd_image):
    r = smoke_test(httpd_image, command=["sh", "-c", "echo config missing; exit 4"], timeout_s=20)
    assert not r.ok and r.exit_code == 4 and "exited early" in r.error
    assert "config missing" in r.logs
    assert r.seconds_to_ready < 15
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_smoke_interrupt_removes_container(httpd_image, monkeypatch):
    def interrupt(url):
        raise KeyboardInterrupt

    monkeypatch.setattr(smoke_mod, "_get", interrupt)
    with pytest.raises(KeyboardInterrupt):
        smoke_test(httpd_image, timeout_s=30)
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_smoke_missing_image():
    engine.client()  # an engine must answer: this test fails, never skips, without one
    with pytest.raises(InputError, match="no image"):
        smoke_test("annapurna-lab/does-not-exist:never")


INTERRUPTED_SMOKE = """
import signal
import sys
from basecamp.smoke import smoke_test
# Ctrl-C as a kernel or terminal delivers it, even when this run was started in the background
# (a shell without job control starts background jobs with SIGINT ignored, and Python keeps that)
signal.signal(signal.SIGINT, signal.default_int_handler)
print("starting", flush=True)
smoke_test(sys.argv[1], path="/missing", timeout_s=120)
"""


@pytest.mark.engine
def test_sigint_mid_smoke_test_removes_its_container(httpd_image, tmp_path):
    """Kernel interrupt in another process while a smoke test waits: its container is gone afterwards."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "smoke.py"
    script.write_text(INTERRUPTED_SMOKE)
    proc = subprocess.Popen([sys.executable, str(script), httpd_image], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(config.NOTEBOOKS_DIR)})
    deadline = time.monotonic() + 60
    while not _containers_of(httpd_image):
        assert proc.poll() is None and time.monotonic() < deadline, "the smoke test never started a container"
        time.sleep(0.2)
    (running,) = _containers_of(httpd_image)
    assert running.labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    time.sleep(1.5)  # mid-poll
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in out
    assert _containers_of(httpd_image) == [], "no lab container from this run remains"


# --- a remote engine: asked through a probe container (issue 13) ------------------------------------


class _FakeProbe:
    """A probe container whose `exec_run` runs the command here (so PROBE_SCRIPT itself is tested)."""

    def __init__(self):
        self.removed = False
        self.execs = 0

    def exec_run(self, cmd, demux=False):
        import subprocess
        import sys

        assert cmd[:2] == ["python3", "-c"]
        self.execs += 1
        proc = subprocess.run([sys.executable, *cmd[1:]], capture_output=True, timeout=30, check=False)
        return proc.returncode, proc.stdout

    def start(self):
        pass

    def remove(self, force):
        self.removed = True


@pytest.fixture
def remote_served(monkeypatch):
    """A remote engine: the app (a local server) is reached only at its bridge address, through the probe."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("R", (_Routes,), {"ROUTES": {}}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = _FakeContainer(None)
    app.attrs = {"NetworkSettings": {"Ports": {}, "IPAddress": "127.0.0.1"}, "State": {}}
    probe = _FakeProbe()
    runs = []

    def create(image, **kwargs):
        runs.append((image, kwargs))
        return probe if image == smoke_mod.PROBE_IMAGE else app

    client = types.SimpleNamespace(images=types.SimpleNamespace(get=lambda ref: None),
                                   containers=types.SimpleNamespace(create=create))
    monkeypatch.setattr(engine, "client", lambda: client)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.213.13.2:2375")
    monkeypatch.setattr(smoke_mod, "_get", lambda url: pytest.fail(f"asked {url} from the client"))
    yield app, probe, runs, server
    server.shutdown()
    server.server_close()


def test_a_remote_engines_app_is_asked_through_the_probe(remote_served):
    app, probe, runs, server = remote_served
    server.RequestHandlerClass.ROUTES.update({"/healthz": (200, '{"ok": true}')})
    r = smoke_test("img", port=server.server_address[1], paths=["/health", "/healthz"], timeout_s=10)
    assert r.ok and (r.path, r.status, r.body) == ("/healthz", 200, '{"ok": true}')
    assert r.url == f"http://127.0.0.1:{server.server_address[1]}/healthz" and r.host_port is None
    assert probe.execs >= 2 and probe.removed and app.removed
    (probe_image, probe_kw), (app_image, app_kw) = runs
    assert probe_image == smoke_mod.PROBE_IMAGE and app_image == "img"
    assert app_kw["ports"] is None, "nothing is published for a remote engine"
    assert probe_kw["labels"][config.MADE_LABEL] == app_kw["labels"][config.MADE_LABEL] == config.LAB_LABEL_VALUE


def test_a_remote_engines_404_is_reported_like_a_local_one(remote_served):
    _, probe, _, server = remote_served
    r = smoke_test("img", port=server.server_address[1], paths=["/health"], timeout_s=0.8)
    assert not r.ok and "last answers: /health 404" in r.error and probe.removed


def test_probe_get_says_nothing_answered_when_nothing_listens():
    probe = _FakeProbe()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert smoke_mod._probe_get(probe, f"http://127.0.0.1:{free}/health") == smoke_mod._Answer(None, "")
