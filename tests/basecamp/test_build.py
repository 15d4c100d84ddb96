"""build: the CLI driver (with a fake CLI, no engine) and real BuildKit / classic builds (engine)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
import sys
import tarfile
import textwrap
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest
from basecamp import config, engine
from basecamp.build import (
    CLASSIC_BUILDER,
    BuildCounts,
    BuildResult,
    build,
    cli_argv,
    dockerfile_stages,
    order_steps,
)
from basecamp.display import NullDisplay
from basecamp.errors import BuildError, InputError
from basecamp.progress import parse_header

# Not `from basecamp import build`: the package's lazy export replaces that attribute with the function.
build_mod = importlib.import_module("basecamp.build")
DATA = Path(__file__).parent / "data"
BUSYBOX = "annapurna-lab/test-busybox:latest"


def ensure_busybox(dk) -> str:
    """The tiny test base: a `docker import` of a rootfs holding only a static busybox."""
    try:
        dk.images.get(BUSYBOX)
        return BUSYBOX
    except docker.errors.ImageNotFound:
        pass
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("the engine tests need a static busybox on the host: apt-get install -y busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "tmp", "etc", "www"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        for applet in ("sh", "echo", "cat", "sleep", "mkdir", "ls", "httpd", "dd", "head", "test", "true", "false", "wc"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    dk.api.import_image(src=buf.getvalue(), repository=BUSYBOX.split(":")[0], tag="latest",
                        changes=[f"LABEL {config.LAB_LABEL}={config.LAB_LABEL_VALUE} {config.MADE_LABEL}={config.LAB_LABEL_VALUE}", "ENV PATH=/bin", 'CMD ["/bin/sh"]'])
    return BUSYBOX


# --- no engine: pieces ----------------------------------------------------------------------------


def test_cli_argv():
    argv = cli_argv(["/usr/bin/docker", "build"], Path("/d/Dockerfile"), Path("/ctx"), "annapurna-lab/s:1",
                    Path("/tmp/iid"), target="runtime", build_args={"A": "1"}, labels={"org.annapurna.lab": "1"},
                    no_cache=True)
    assert argv == [
        "/usr/bin/docker", "build", "--progress=plain", "--iidfile", "/tmp/iid", "-f", "/d/Dockerfile",
        "-t", "annapurna-lab/s:1", "--label", "org.annapurna.lab=1", "--build-arg", "A=1",
        "--target", "runtime", "--no-cache", "/ctx",
    ]


def test_dockerfile_stages_and_order():
    text = (DATA / "multistage.Dockerfile").read_text()
    assert dockerfile_stages(text) == ["builder", "other", "runtime"]
    assert dockerfile_stages("FROM a\nRUN x\nFROM --platform=$X b AS final\nFROM c\n") == ["stage-0", "final", "stage-2"]
    steps = [parse_header(v, n) for v, n in [
        (1, "[runtime 2/3] COPY a b"), (2, "[other 2/2] RUN x"), (3, "[builder 3/5] COPY c d"),
        (4, "[builder 2/5] WORKDIR /app"), (5, "[mystery 1/1] RUN y"),
    ]]
    assert [s.label for s in order_steps(steps, text)] == [
        "[builder 2/5]", "[builder 3/5]", "[other 2/2]", "[runtime 2/3]", "[mystery 1/1]",
    ]


def _result(statuses: dict[str, str]) -> BuildResult:
    steps = []
    for i, (name, status) in enumerate(statuses.items(), 1):
        s = parse_header(i, name)
        s.status = status  # type: ignore[assignment]
        steps.append(s)
    return BuildResult("t", "sha256:x", Path("D"), Path("."), "b", 1.0, steps, "", "2024-01-01T00:00:00+00:00")


def test_result_properties():
    r = _result({"[1/4] FROM base": "cached", "[2/4] COPY pyproject.toml poetry.lock ./": "cached",
                 "[3/4] RUN poetry install --no-root": "done", "[4/4] COPY annapurna ./annapurna": "done"})
    assert [s.index for s in r.cached_steps] == [2]  # FROM is neither cached nor ran
    assert [s.index for s in r.ran_steps] == [3, 4]
    assert r.step_matching("poetry install").index == 3
    assert r.step_matching("POETRY INSTALL").index == 3
    assert r.step_matching("nothing like this") is None
    d = r.as_dict()
    assert d["cached"] == 1 and d["ran"] == 2 and "log" not in d
    json.dumps(d)


# --- no engine: the driver, with a fake BuildKit CLI ----------------------------------------------

FAKE_CLI = textwrap.dedent("""
    import os, sys, time
    args = sys.argv[1:]
    open(os.environ["FAKE_ARGV"], "w").write("\\n".join(args))
    for line in open(os.environ["FAKE_LOG"]):
        sys.stdout.write(line)
        sys.stdout.flush()
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    rc = int(os.environ.get("FAKE_RC", "0"))
    if rc == 0:
        open(args[args.index("--iidfile") + 1], "w").write("sha256:" + "f" * 64)
    sys.exit(rc)
""")


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    script = tmp_path / "fake_docker.py"
    script.write_text(FAKE_CLI)

    def use(log: str, rc: int = 0, sleep: float = 0) -> Path:
        argv_file = tmp_path / "argv.txt"
        cli = engine.BuildCLI([sys.executable, str(script), "build"],
                              {"FAKE_LOG": str(DATA / log), "FAKE_RC": str(rc), "FAKE_SLEEP": str(sleep),
                               "FAKE_ARGV": str(argv_file)}, "fake BuildKit CLI")
        monkeypatch.setattr(engine, "buildkit_cli", lambda: cli)
        return argv_file

    return use


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    return ctx


def test_build_with_fake_cli(fake_cli, context, capsys):
    argv_file = fake_cli("buildkit2010_partial.log")
    r = build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:1", labels={"org.annapurna.step": "5"},
              display="plain")
    assert r.image_id == "sha256:" + "f" * 64  # from --iidfile
    assert r.builder == "fake BuildKit CLI"
    assert [s.label for s in r.steps][:3] == ["[builder 2/5]", "[builder 3/5]", "[builder 4/5]"]
    assert [s.label for s in r.cached_steps] == ["[builder 2/5]", "[other 2/2]"]
    assert len(r.ran_steps) == 5
    assert r.log == (DATA / "buildkit2010_partial.log").read_text()
    assert r.wall_s > 0 and r.started_at.endswith("+00:00")
    assert {s.name for s in r.internal_steps} >= {"exporting to image"}
    argv = argv_file.read_text().splitlines()
    assert "--progress=plain" in argv and argv[-1] == str(context)
    assert "org.annapurna.lab=1" in argv and "org.annapurna.step=5" in argv
    out = capsys.readouterr().out.splitlines()
    # a terminal: the command to copy, then ONE line (no line per step)
    assert out == [f"$ {r.command}", out[-1]] and out[-1].startswith("built annapurna-lab/fake:1 in ")
    assert "--progress" not in r.command and "--iidfile" not in r.command and "--label" not in r.command


def test_each_build_appends_its_time_to_the_runs_build_times_file(fake_cli, context, tmp_path, monkeypatch):
    """$ANNAPURNA_BUILD_TIMES (set by `./lab test`): one JSON line per build, what its summary's build column sums."""
    import json
    import time

    fake_cli("buildkit2010_partial.log", sleep=0.3)  # a build that takes a while: its start is before its end
    times = tmp_path / "build-times.jsonl"
    monkeypatch.setenv("ANNAPURNA_BUILD_TIMES", str(times))
    before = time.time()
    first = build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:1", display="plain")
    second = build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:2", no_cache=True, display="plain")
    lines = [json.loads(line) for line in times.read_text().splitlines()]
    assert [(b["tag"], b["no_cache"], b["wall_s"]) for b in lines] == [
        ("annapurna-lab/fake:1", False, round(first.wall_s, 3)), ("annapurna-lab/fake:2", True, round(second.wall_s, 3))]
    assert first.wall_s >= 0.3 and before - 0.01 <= lines[0]["start"] <= before + 0.2  # when it started, not ended
    assert lines[0]["start"] + first.wall_s <= lines[1]["start"] <= time.time()
    monkeypatch.delenv("ANNAPURNA_BUILD_TIMES")
    build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:3", display="plain")
    assert len(times.read_text().splitlines()) == 2  # unset: nothing written


def test_build_failure_with_fake_cli(fake_cli, context, capsys):
    fake_cli("buildkit2010_failing.log", rc=1)
    with pytest.raises(BuildError) as info:
        build(DATA / "failing.Dockerfile", context, "annapurna-lab/fake:2", display="plain")
    err = info.value
    assert err.returncode == 1 and err.step_exit_code == 3
    assert err.failed_step.startswith("[builder 4/4] RUN echo")
    assert "about to fail" in str(err) and "exit code: 3" in str(err)
    assert "failing instruction: [builder 4/4]" in str(err)
    assert [s.status for s in err.steps if s.label == "[other 2/2]"] == ["canceled"]
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAILED at [builder 4/4] RUN echo")


def test_buildx_failure_with_fake_cli(fake_cli, context):
    fake_cli("buildx_synthetic_failing.log", rc=1)
    with pytest.raises(BuildError) as info:
        build(DATA / "failing.Dockerfile", context, "annapurna-lab/fake:3", display="none")
    assert info.value.step_exit_code == 3 and info.value.failed_step.startswith("[builder 4/4]")


class _InterruptOnFirstLog(NullDisplay):
    def on_event(self, event):
        if event.kind == "log":
            raise KeyboardInterrupt


def test_interrupt_stops_the_cli(fake_cli, context, monkeypatch):
    fake_cli("buildkit2010_cold.log", sleep=60)
    procs = []
    real_popen = build_mod.subprocess.Popen

    def popen(*args, **kwargs):
        procs.append(real_popen(*args, **kwargs))
        return procs[-1]

    monkeypatch.setattr(build_mod.subprocess, "Popen", popen)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:4", display=_InterruptOnFirstLog())
    assert procs and procs[0].poll() is not None  # no orphan
    assert time.monotonic() - t0 < 20


def test_bad_inputs(context, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        build(tmp_path / "nope", context, "a:b", display="none")
    with pytest.raises(InputError, match="not a folder"):
        build(DATA / "multistage.Dockerfile", tmp_path / "nope", "a:b", display="none")
    with pytest.raises(InputError, match="tag"):
        build(DATA / "multistage.Dockerfile", context, "a b", display="none")


def test_classic_fallback_with_fake_client(monkeypatch, context):
    chunks = [json.loads(line) for line in (DATA / "classic_cached.jsonl").read_text().splitlines()]
    calls = {}

    def api_build(**kwargs):
        calls.update(kwargs)
        return iter(chunks)

    fake = SimpleNamespace(api=SimpleNamespace(build=api_build),
                           images=SimpleNamespace(get=lambda tag: SimpleNamespace(id="sha256:classic")))
    monkeypatch.setattr(engine, "buildkit_cli", lambda: None)
    monkeypatch.setattr(engine, "client", lambda: fake)
    r = build(DATA / "multistage.Dockerfile", context, "annapurna-lab/fake:5", display="none")
    assert r.builder == CLASSIC_BUILDER and r.image_id == "sha256:classic"
    assert calls["labels"] == config.made_labels() and calls["decode"] is True
    assert len(r.cached_steps) == 11 and r.ran_steps == []
    assert r.step_matching("tick").index == 6


def test_classic_fallback_failure_with_fake_client(monkeypatch, context):
    chunks = [json.loads(line) for line in (DATA / "classic_failing.jsonl").read_text().splitlines()]
    fake = SimpleNamespace(api=SimpleNamespace(build=lambda **kw: iter(chunks)))
    monkeypatch.setattr(engine, "buildkit_cli", lambda: None)
    monkeypatch.setattr(engine, "client", lambda: fake)
    with pytest.raises(BuildError) as info:
        build(DATA / "failing.Dockerfile", context, "annapurna-lab/fake:6", display="none")
    assert info.value.returncode == 3 and info.value.step_exit_code == 3
    assert info.value.failed_step.startswith("[builder 4/10] RUN echo")


# --- engine ---------------------------------------------------------------------------------------

APP_DOCKERFILE = f"""\
FROM {BUSYBOX} AS builder
WORKDIR /app
COPY token.txt ./
RUN cat token.txt > /app/built.txt && echo built it
FROM {BUSYBOX}
COPY --from=builder /app/built.txt /built.txt
RUN echo runtime step && ls /built.txt
"""


@pytest.fixture(scope="module")
def dk():
    client = engine.client()  # raises EngineError: engine tests fail, never skip
    ensure_busybox(client)
    return client


@pytest.fixture
def project(tmp_path, dk):
    """A Dockerfile (outside the context) and a context whose token makes the first build cold."""
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "token.txt").write_text(uuid.uuid4().hex)
    (tmp_path / "Dockerfile").write_text(APP_DOCKERFILE)
    tags: list[str] = []
    yield SimpleNamespace(dockerfile=tmp_path / "Dockerfile", context=tmp_path / "ctx", tags=tags,
                          tag=lambda name: tags.append(f"annapurna-lab/test-build-{name}:{uuid.uuid4().hex[:8]}") or tags[-1])
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):  # a failed build makes no image
            dk.images.remove(tag, force=True)


@pytest.mark.engine
def test_buildkit_cold_then_cached(project, dk):
    assert engine.buildkit_cli() is not None, "this machine is expected to have a BuildKit CLI"
    tag = project.tag("cold")
    cold = build(project.dockerfile, project.context, tag, labels={"org.annapurna.test": "yes"}, display="none")
    assert cold.image_id == dk.images.get(tag).id
    assert cold.step_matching("cat token.txt").status == "done"
    assert cold.step_matching("cat token.txt").log == ["built it"]
    assert len(cold.ran_steps) >= 2
    labels = dk.images.get(tag).labels
    assert labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE and labels["org.annapurna.test"] == "yes"

    warm = build(project.dockerfile, project.context, tag, labels={"org.annapurna.test": "yes"}, display="none")
    assert warm.image_id == cold.image_id
    assert warm.ran_steps == []
    assert len(warm.cached_steps) == len([s for s in cold.steps if not s.is_from]) == 5
    assert warm.wall_s < cold.wall_s + 5


@pytest.mark.engine
def test_buildkit_failure_names_the_run_and_exit_code(project):
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo going down && exit 3\n")
    with pytest.raises(BuildError) as info:
        build(project.dockerfile, project.context, project.tag("fail"), display="none")
    err = info.value
    assert err.failed_step == "[2/2] RUN echo going down && exit 3"
    assert err.step_exit_code == 3 and err.returncode != 0
    assert "going down" in str(err) and "exit code: 3" in str(err)


@pytest.mark.engine
def test_buildkit_interrupt_leaves_no_cli_running(project, monkeypatch):
    token = uuid.uuid4().hex
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo start {token} && sleep 30 && echo never\n")
    procs = []
    real_popen = build_mod.subprocess.Popen
    monkeypatch.setattr(build_mod.subprocess, "Popen", lambda *a, **k: procs.append(real_popen(*a, **k)) or procs[-1])
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        build(project.dockerfile, project.context, project.tag("interrupt"), display=_InterruptOnFirstLog())
    assert procs[0].poll() is not None  # the CLI is gone...
    assert time.monotonic() - t0 < 25
    deadline = time.monotonic() + 15
    while _processes_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(token) == []  # ...and BuildKit cancelled the RUN (same host: visible in /proc)


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return found


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.engine
def test_classic_fallback_for_real(project, dk, monkeypatch):
    monkeypatch.setattr(engine, "buildkit_cli", lambda: None)
    run = uuid.uuid4().hex
    # The builder stage carries a label of this run, so its leftover image can be found afterwards.
    labelled = APP_DOCKERFILE.replace("WORKDIR /app", f"LABEL org.annapurna.test-run={run}\nWORKDIR /app", 1)
    project.dockerfile.write_text(labelled)
    tag = project.tag("classic")
    try:
        cold = build(project.dockerfile, project.context, tag, display="none")
        assert cold.builder == CLASSIC_BUILDER
        assert cold.image_id == dk.images.get(tag).id
        assert cold.step_matching("cat token.txt").status == "done"
        assert dk.images.get(tag).labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
        warm = build(project.dockerfile, project.context, tag, display="none")
        assert warm.step_matching("cat token.txt").status == "cached"
        assert warm.ran_steps == []
        assert len(warm.cached_steps) == len([s for s in warm.steps if not s.is_from])
    finally:
        # The classic builder leaves the builder stage's image behind, untagged: remove it too.
        leftovers = dk.images.list(filters={"dangling": True, "label": f"org.annapurna.test-run={run}"})
        project.tags.extend(im.id for im in leftovers)


@pytest.mark.engine
def test_a_typo_in_a_run_names_the_instruction_its_exit_code_and_log_tail(project):
    """A learner's typo in an exercise Dockerfile: readable, and shown in a notebook as that message only."""
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo preparing && ecoh typo-here\n")
    with pytest.raises(BuildError) as info:
        build(project.dockerfile, project.context, project.tag("typo"), display="none")
    err = info.value
    assert err.failed_step == "[2/2] RUN echo preparing && ecoh typo-here"
    assert err.step_exit_code == 127  # sh: command not found
    message = str(err)
    assert "failing instruction: [2/2] RUN echo preparing && ecoh typo-here" in message
    assert "preparing" in message and "ecoh" in message and "not found" in message  # the log tail
    assert "exit code: 127" in message
    shown = err._render_traceback_()
    assert shown[0].startswith("BuildError: `") and not any(line.startswith("Traceback") for line in shown)
    assert len(shown) < 60


#: Ctrl-C to a build must end it this soon (the CLI gets 10 s + 5 s to stop, then the cache records are read)
SIGINT_STOP_S = 60

INTERRUPTED_BUILD = textwrap.dedent("""
    import signal
    import sys
    from pathlib import Path
    # Ctrl-C as a kernel or terminal delivers it, even when this run was started in the background
    # (a shell without job control starts background jobs with SIGINT ignored, and Python keeps that)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import faulthandler
    faulthandler.register(signal.SIGUSR1)  # the test asks for our stacks when we are slow to stop
    from basecamp.build import build
    from basecamp.results import Record, record
    dockerfile, context, tag, results = sys.argv[1:]
    record(Record(step="interrupt-test", scenario="before"), Path(results))
    build(Path(dockerfile), Path(context), tag, display="plain")
    record(Record(step="interrupt-test", scenario="after"), Path(results))
""")


@pytest.mark.engine
def test_sigint_mid_build_stops_the_build_and_keeps_the_results_file_whole(project, tmp_path):
    """Ctrl-C / kernel interrupt in another process mid-build: no docker CLI left, results parse."""
    import os
    import signal
    import subprocess

    from basecamp.results import load

    token = uuid.uuid4().hex
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo start-{token} && sleep 60 && echo never\n")
    script, results = tmp_path / "interrupted.py", tmp_path / "results.jsonl"
    script.write_text(INTERRUPTED_BUILD)
    tag = project.tag("sigint")
    log = (tmp_path / "out.txt").open("w+")
    proc = subprocess.Popen([sys.executable, str(script), str(project.dockerfile), str(project.context), tag, str(results)],
                            stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(config.NOTEBOOKS_DIR)})
    deadline = time.monotonic() + 60
    # the docker CLI, not the script (whose own command line names the Dockerfile too)
    while not [args for args in _processes_mentioning(str(project.dockerfile)) if str(script) not in args]:
        assert proc.poll() is None and time.monotonic() < deadline, "the docker CLI never started"
        time.sleep(0.2)
    time.sleep(4)  # BuildKit is inside `sleep 60` now
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        proc.wait(timeout=SIGINT_STOP_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # faulthandler: where is it stuck?
        time.sleep(1)
        proc.kill()
        proc.wait()
    took = time.monotonic() - sent
    log.seek(0)
    out = log.read()
    assert took < SIGINT_STOP_S, f"still running {took:.0f} s after SIGINT; its output and stacks:\n{out}"
    assert proc.returncode != 0 and "KeyboardInterrupt" in out, out
    assert _processes_mentioning(str(project.dockerfile)) == [], "no build left running"
    assert [r.scenario for r in load(path=results)] == ["before"]
    with pytest.raises(docker.errors.ImageNotFound):
        engine.client().images.get(tag)


@pytest.mark.engine
def test_a_kernel_killed_mid_build_leaves_no_build_running_and_the_next_build_works(project, tmp_path):
    """A kernel restart (SIGKILL, nothing of ours runs) mid-build: the CLI is cancelled, not orphaned;
    the engine lock is free; the same Dockerfile then builds (issue 17)."""
    import fcntl
    import os
    import signal
    import subprocess

    from basecamp import enginelock

    token = uuid.uuid4().hex
    # the RUN outlasts every deadline below, so only a cancelled build can pass
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo start-{token} && sleep 600 && echo never\n")
    script, results = tmp_path / "killed.py", tmp_path / "results.jsonl"
    script.write_text(INTERRUPTED_BUILD)
    env = {k: v for k, v in os.environ.items() if k != enginelock.HELD_ENV}  # it takes the lock like a kernel
    proc = subprocess.Popen([sys.executable, str(script), str(project.dockerfile), str(project.context),
                             project.tag("killed"), str(results)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**env, "PYTHONPATH": str(config.NOTEBOOKS_DIR)})
    deadline = time.monotonic() + 60
    while not _processes_mentioning(f"start-{token}"):  # BuildKit runs the RUN step now
        assert proc.poll() is None and time.monotonic() < deadline, "the build never reached its RUN step"
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + SIGINT_STOP_S
    while _processes_mentioning(str(project.dockerfile)) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = _pids_mentioning(str(project.dockerfile))
    for pid in orphans:  # do not leave a failed test's build running for ten minutes
        os.kill(pid, signal.SIGINT)
    assert orphans == [], "the docker CLI outlived its killed kernel"
    while _processes_mentioning(f"start-{token}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(f"start-{token}") == [], "BuildKit still runs the killed kernel's RUN step"
    with enginelock.lock_path().open("a+") as fh:  # free: a dead holder's flock is gone with it
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fh, fcntl.LOCK_UN)
    project.dockerfile.write_text(f"FROM {BUSYBOX}\nRUN echo again-{token}\n")
    result = build(project.dockerfile, project.context, project.tag("after-kill"), display="none")
    assert result.image_id
    # what the killed build made (its context and Dockerfile transfers) is still the lab's: its build window,
    # opened before the build, outlived its process, so cleanup knows the records (basecamp.buildcache)
    from basecamp import buildcache

    claimed = buildcache.claim_late_records()
    assert any("local source" in r.description for r in claimed), [r.description for r in claimed]


def test_build_counts_count_the_wrapped_builds_cached_and_ran_steps() -> None:
    from dataclasses import dataclass

    from basecamp.progress import Step

    def step(vertex: int, instruction: str, status: str) -> Step:
        return Step(vertex, f"[{vertex}/4] {instruction}", None, vertex, 4, instruction, False, status)  # type: ignore[arg-type]

    steps = [step(1, "FROM x", "cached"), step(2, "COPY a b", "cached"), step(3, "RUN one", "done"),
             step(4, "RUN two", "done")]
    result = BuildResult("t", "sha256:1", Path("Dockerfile"), Path("."), "b", 1.0, steps, "", "now")

    @dataclass
    class Wrapped(BuildCounts):
        build: BuildResult

    wrapped = Wrapped(result)
    assert (wrapped.cached, wrapped.ran) == (1, 2)  # the FROM step counts as neither


def test_the_cli_gets_the_parent_death_signal_only_where_setpriv_knows_it(tmp_path, monkeypatch) -> None:
    import importlib
    import os

    mod = importlib.import_module("basecamp.build")
    old = tmp_path / "old" / "setpriv"
    new = tmp_path / "new" / "setpriv"
    for path, helptext in ((old, "--reuid <uid>"), (new, "--pdeathsig <keep|clear|<signal>>")):
        path.parent.mkdir()
        path.write_text(f"#!/bin/sh\necho '{helptext}'\n")
        path.chmod(0o755)
    for folder, wanted in ((new.parent, [str(new), "--pdeathsig", "INT", "--", "docker", "build"]),
                           (old.parent, ["docker", "build"]), (tmp_path / "none", ["docker", "build"])):
        monkeypatch.setenv("PATH", str(folder))
        mod._setpriv_with_pdeathsig.cache_clear()
        assert mod._dies_with_us(["docker", "build"]) == wanted, folder
    mod._setpriv_with_pdeathsig.cache_clear()
    monkeypatch.setenv("PATH", os.defpath)
