"""running: what a running image costs — the pure parts (no engine) and real runs of a busybox httpd (engine)."""

from __future__ import annotations

import importlib
import uuid

import pytest
from basecamp import config, engine
from basecamp.build import build
from basecamp.errors import InputError
from test_build import BUSYBOX, ensure_busybox

# Not `from basecamp import running`: the package's lazy exports may replace such attributes.
running = importlib.import_module("basecamp.running")
reproducible = importlib.import_module("basecamp.reproducible")
RunSpec, Member = running.RunSpec, reproducible.Member

# --- no engine ------------------------------------------------------------------------------------


def test_spread_median_low_high():
    s = running.spread([0.5, 0.3, 10.2])
    assert (s.median, s.low, s.high, s.n) == (0.5, 0.3, 10.2, 3)
    assert running.spread([1.0, 2.0]).median == 1.5
    assert s.fmt() == "0.50 s (0.30–10.20, 3 runs)"
    with pytest.raises(InputError):
        running.spread([])


TOP = {
    "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
    "Processes": [
        ["root", "301", "12035", "0", "10:00", "?", "00:00:01", "python -m annapurna.main"],  # pids wrap: a child may be lower
        ["root", "12035", "12015", "0", "10:00", "?", "00:00:00", "/bin/sh -c python -m annapurna.main"],
    ],
}


def test_parse_top_puts_the_containers_pid1_first():
    procs = running.parse_top(TOP)
    assert [p.command for p in procs] == ["/bin/sh -c python -m annapurna.main", "python -m annapurna.main"]
    assert procs[1].ppid == procs[0].pid
    alone = running.parse_top({"Titles": ["PID", "PPID", "COMMAND"], "Processes": [["7", "3", "httpd -f"]]})
    assert alone == [running.Process(7, 3, "httpd -f")]
    with pytest.raises(InputError, match="PID/PPID"):
        running.parse_top({"Titles": ["UID", "CMD"], "Processes": []})


def _stop(seconds, codes, grace=10):
    runs = tuple(running.StopRun(s, c, ()) for s, c in zip(seconds, codes, strict=True))
    return running.StopResult(RunSpec(name="x", image="i"), runs, grace)


def test_stop_verdict():
    assert _stop([0.3, 0.4, 0.35], [0, 0, 0]).verdict() == "graceful"
    assert _stop([10.1, 10.2, 10.1], [137, 137, 137]).verdict() == "killed"
    assert _stop([10.1, 10.2, 10.1], [137, 137, 137]).killed == 3
    assert _stop([0.3, 10.1, 0.3], [0, 137, 0]).verdict() == "mixed"
    assert _stop([0.3, 0.4, 0.3], [0, 137, 0]).verdict() == "mixed"  # one SIGKILL is no graceful stop
    # exits 0 but only after half the grace: not graceful
    assert _stop([6.0, 6.0, 6.0], [0, 0, 0]).verdict() == "mixed"
    assert _stop([1.1, 1.05, 1.1], [137, 137, 137], grace=1).verdict() == "killed"


def test_pyc_areas_from_docker_diff():
    changes = [
        {"Kind": 1, "Path": "/usr/local/lib/python3.11/__pycache__/ast.cpython-311.pyc"},
        {"Kind": 1, "Path": "/usr/lib/python3.11/asyncio/__pycache__/base_events.cpython-311.pyc"},
        {"Kind": 1, "Path": "/app/.venv/lib/python3.11/site-packages/fastapi/__pycache__/app.cpython-311.pyc"},
        {"Kind": 1, "Path": "/usr/lib/python3/dist-packages/__pycache__/x.cpython-311.pyc"},
        {"Kind": 1, "Path": "/annapurna/__pycache__/main.cpython-311.pyc"},
        {"Kind": 0, "Path": "/annapurna/__pycache__/old.cpython-311.pyc"},  # changed, not added
        {"Kind": 1, "Path": "/annapurna/__pycache__"},  # the folder
        {"Kind": 1, "Path": "/tmp/x.py"},
    ]
    assert running.written_pyc(changes) == {"stdlib": 2, "dependencies": 2, "app": 1}
    assert running.written_pyc(None) == {"stdlib": 0, "dependencies": 0, "app": 0}


def test_health_log_times():
    log = [
        {"Start": "2026-12-02T14:00:01.123456789Z", "End": "2026-12-02T14:00:01.223456999Z", "ExitCode": 0},
        {"Start": "2026-12-02T14:00:02.5+01:00", "End": "2026-12-02T14:00:02.75+01:00", "ExitCode": 0},
        {"Start": "2026-12-02T14:00:03Z", "End": "2026-12-02T14:00:04Z", "ExitCode": 1},
    ]
    assert running.check_seconds(log) == pytest.approx([0.1, 0.25, 1.0])
    assert running.parse_time("2026-12-02T14:00:00+01:00") == running.parse_time("2026-12-02T13:00:00.000000000Z")
    with pytest.raises(InputError, match="RFC 3339"):
        running.parse_time("yesterday")


def test_compare_members():
    a = {"d": Member(0, 1, ""), "same": Member(3, 1, "aa", "aa"), "touched": Member(3, 1, "bb", "bb"),
         "x.pyc": Member(9, 1, "p1", "body"), "y.pyc": Member(9, 1, "q1", "code1"), "gone": Member(1, 1, "g")}
    b = {"d": Member(0, 2, ""), "same": Member(3, 1, "aa", "aa"), "touched": Member(3, 5, "bb", "bb"),
         "x.pyc": Member(9, 1, "p2", "body"), "y.pyc": Member(9, 1, "q2", "code2"), "new": Member(1, 1, "n")}
    only_a, only_b, content, mtime, header = reproducible.compare_members(a, b)
    assert (only_a, only_b) == (("gone",), ("new",))
    assert content == ("x.pyc", "y.pyc")
    assert mtime == ("d", "touched")
    assert header == ("x.pyc",)
    layer = reproducible.LayerDiff(1, "COPY /app/.venv /app/.venv", False, only_a, only_b, content, mtime, header)
    assert layer.kinds() == {".pyc": 2}
    assert "2 files with other content (2 .pyc) (1 of them .pyc headers only), 2 with only another mtime, " \
           "2 in one build only" in layer.line()


def test_pyc_member_body_skips_the_header(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a.pyc", b"H" * 16 + b"code"), ("b.py", b"H" * 16 + b"code")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 42
            tar.addfile(info, io.BytesIO(data))
    members = reproducible._members(buf.getvalue())
    assert members["a.pyc"].body != members["a.pyc"].digest  # the .pyc's code alone
    assert members["b.py"].body == members["b.py"].digest
    assert members["a.pyc"].mtime == 42 and members["a.pyc"].size == 20


def test_runspec_options_and_command_line():
    spec = RunSpec(name="ro", image="img:1", user="10001", read_only=True, least_privilege=True, tmpfs=("/tmp",))
    assert spec.options() == ["--user", "10001", "--read-only", "--cap-drop", "ALL", "--security-opt",
                              "no-new-privileges", "--tmpfs", "/tmp"]
    assert spec.docker_run() == ("docker run -d -p 127.0.0.1:8000:8000 --user 10001 --read-only --cap-drop ALL "
                                 "--security-opt no-new-privileges --tmpfs /tmp img:1")
    kwargs = spec._run_kwargs()
    assert "labels" not in kwargs  # set at the one call that runs a container (tests/basecamp/test_labels.py)
    assert kwargs["ports"] == {"8000/tcp": ("127.0.0.1", None)}
    assert kwargs["read_only"] and kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges"]
    assert "entrypoint" not in kwargs and "command" not in kwargs
    sh = running.shell_form(RunSpec(name="06", image="img:1"), "python -m annapurna.main")
    assert sh.entrypoint == ("/bin/sh", "-c", "python -m annapurna.main") and sh.name == "06, shell form"
    assert sh.docker_run("s") == ("docker run -d --name s -p 127.0.0.1:8000:8000 --entrypoint /bin/sh img:1 -c "
                                  "'python -m annapurna.main'")
    assert sh._run_kwargs()["command"] == []


def test_repeats_must_be_positive():
    with pytest.raises(InputError):
        running.measure_stop(RunSpec(name="x", image="i"), repeats=0)
    with pytest.raises(InputError):
        running.measure_start(RunSpec(name="x", image="i"), repeats=0)


# --- engine ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def httpd_image(tmp_path_factory):
    """busybox httpd (exec form: PID 1, no SIGTERM handler) serving /health, with an exec-form HEALTHCHECK."""
    dk = engine.client()
    ensure_busybox(dk)
    root = tmp_path_factory.mktemp("httpd")
    (root / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN mkdir -p /www && echo ok > /www/health\n"
        'HEALTHCHECK --interval=1s --timeout=3s CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"]\n'
        'ENTRYPOINT ["httpd", "-f", "-p", "8000", "-h", "/www"]\n'
    )
    tag = f"annapurna-lab/test-running:{uuid.uuid4().hex[:8]}"
    build(root / "Dockerfile", root, tag, display="none")
    yield tag
    dk.images.remove(tag, force=True)


def _containers_of(image: str) -> list:
    return engine.client().containers.list(all=True, filters={"ancestor": image})


@pytest.mark.engine
def test_pid1_without_a_handler_is_killed_after_the_grace(httpd_image):
    r = running.measure_stop(RunSpec(name="httpd", image=httpd_image), repeats=2, grace_s=1)
    assert [run.exit_code for run in r.runs] == [137, 137] and r.verdict() == "killed"
    assert r.pid1.startswith("httpd -f") and len(r.runs[0].processes) == 1
    assert r.seconds.low >= 1
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_pid1_with_a_sigterm_handler_stops_at_once(httpd_image):
    spec = running.shell_form(RunSpec(name="httpd", image=httpd_image),
                              "trap 'exit 0' TERM; httpd -p 8000 -h /www; while :; do sleep 0.1; done")
    r = running.measure_stop(spec, repeats=2, grace_s=5)
    assert [run.exit_code for run in r.runs] == [0, 0] and r.verdict() == "graceful"
    assert r.pid1.startswith("/bin/sh -c trap")
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_start_is_timed_labelled_on_loopback_and_removed(httpd_image, monkeypatch):
    seen = {}
    real = running._wait_ready

    def spy(run, timeout_s=running.READY_TIMEOUT_S):
        run.container.reload()
        seen["labels"] = run.container.labels
        seen["ports"] = run.container.attrs["HostConfig"]["PortBindings"]
        seen["read_only"] = run.container.attrs["HostConfig"]["ReadonlyRootfs"]
        return real(run, timeout_s)

    monkeypatch.setattr(running, "_wait_ready", spy)
    r = running.measure_start(RunSpec(name="httpd ro", image=httpd_image, read_only=True), repeats=2)
    assert len(r.runs) == 2 and 0 < r.seconds.median < 30 and r.pyc_written == 0
    assert seen["labels"][config.MADE_LABEL] == config.LAB_LABEL_VALUE
    assert seen["ports"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert seen["read_only"] is True
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_an_interrupt_removes_the_container(httpd_image, monkeypatch):
    def interrupt(run, timeout_s=0):
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "_wait_ready", interrupt)
    with pytest.raises(KeyboardInterrupt):
        running.measure_start(RunSpec(name="httpd", image=httpd_image))
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_health_reaches_healthy_and_logs_each_check(httpd_image):
    h = running.measure_health(RunSpec(name="httpd", image=httpd_image), timeout_s=30)
    assert h.healthy and h.test[0] == "CMD" and h.seconds_to_healthy is not None
    assert len(h.check_s) >= 3 and all(0 <= s < 3 for s in h.check_s) and set(h.exit_codes) == {0}
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_least_privilege_serves_but_takes_temporary_files_away(httpd_image):
    spec = RunSpec(name="httpd lp", image=httpd_image, read_only=True, least_privilege=True)
    r = running.least_privilege(spec, probe=["busybox", "mktemp"])
    assert r.serves and not r.temp_file and "Read-only file system" in r.temp_error
    fixed = running.least_privilege(RunSpec(name="httpd lp + tmpfs", image=httpd_image, read_only=True,
                                            least_privilege=True, tmpfs=("/tmp",)), probe=["busybox", "mktemp"])
    assert fixed.serves and fixed.temp_file
    assert _containers_of(httpd_image) == []


@pytest.mark.engine
def test_compare_images_finds_the_layer_that_differs(tmp_path):
    dk = engine.client()
    ensure_busybox(dk)
    (tmp_path / "same.txt").write_text("same\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nCOPY same.txt /same.txt\nRUN cat /proc/sys/kernel/random/uuid > /stamp && mkdir /d && echo fixed > /d/fixed\n")
    tags = [f"annapurna-lab/test-repro:{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        ids = [build(tmp_path / "Dockerfile", tmp_path, tag, no_cache=True, display="none").image_id for tag in tags]
        r = reproducible.compare_images("busybox", ids[0], ids[1])
        assert not r.same_image and len(r.layers) == 3
        assert [layer.same for layer in r.layers] == [True, True, False]
        changed = r.layers[2]
        assert "stamp" in changed.content and "d/fixed" not in changed.content
        assert "RUN" in changed.created_by or "date" in changed.created_by
    finally:
        for tag in tags:
            dk.images.remove(tag, force=True)


def test_engine_held_quiet_says_nothing_while_it_waits(monkeypatch):
    from basecamp import enginelock

    said = []
    monkeypatch.setattr(enginelock, "exclusive", lambda what, say=print: (say(f"busy: {what}"), said)[1])
    monkeypatch.setattr("builtins.print", lambda *a, **k: said.append(a))
    running.engine_held("x", quiet=True)
    assert said == []
    running.engine_held("x")
    assert said and "busy: x" in said[0][0]
