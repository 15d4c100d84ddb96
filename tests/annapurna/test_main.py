"""The app itself: `python -m annapurna.main` serves / and /health on $PORT."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from annapurna import main


def test_handlers_answer() -> None:
    assert main.health() == {"status": "ok"}
    assert "annapurna" in main.root()["message"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_serves_health_on_the_port_from_the_environment() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "annapurna.main"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    assert resp.status == 200
                    assert json.load(resp) == {"status": "ok"}
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the app did not answer within 20 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
