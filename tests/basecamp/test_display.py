"""What a learner sees of a build (no engine): the terminal command, one line per build, the log collapsed.

The last tests run the whole measurement protocol (7 builds of 01-naive) through the real `build()`
with a fake BuildKit CLI and a fake engine, capture what a notebook would store (stream text and
each display's text/plain, as nbclient writes them), and hold it to the series' budget of 25 lines.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from basecamp import buildcache, config, disk, engine, images, measure
from basecamp import display as display_mod
from basecamp.build import BuildResult
from basecamp.display import (
    BuildLog,
    PlainDisplay,
    ShellCommand,
    redact_hosts,
    shell_command,
    summary_line,
)
from basecamp.images import ImageInfo
from basecamp.progress import parse_header, parse_log

ROOT = config.REPO_ROOT
#: The budget of stored text lines per cell (docs/lesson-style.md).
LINE_BUDGET = 25


# --- the terminal command -------------------------------------------------------------------------


def lab_argv(*extra: str, context: Path | None = None) -> list[str]:
    """An argv as build.cli_argv makes it for a step built from a scratch copy."""
    return ["/usr/bin/docker", "build", "--progress=plain", "--iidfile", "/tmp/annapurna-build-x/iid",
            "-f", str(ROOT / "dockerfiles" / "01-naive.Dockerfile"), "-t", "annapurna-lab/01-naive:measure-cold",
            "--label", "org.annapurna.lab=1", "--label", "org.annapurna.step=01-naive", *extra,
            str(context or ROOT / ".lab" / "scratch" / "01-naive")]


def test_the_command_drops_the_labs_flags_and_keeps_the_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_mod.shutil, "which", lambda name: "/usr/bin/docker")
    cmd = shell_command(lab_argv("--target", "runtime", "--no-cache"), {"DOCKER_BUILDKIT": "1"})
    assert cmd == ("DOCKER_BUILDKIT=1 docker build -f dockerfiles/01-naive.Dockerfile "
                   "-t annapurna-lab/01-naive:measure-cold --target runtime --no-cache .lab/scratch/01-naive")


def test_the_command_names_the_cli_that_ran_when_path_has_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_mod.shutil, "which", lambda name: "/usr/local/bin/docker")
    cmd = shell_command(lab_argv(), {"DOCKER_BUILDKIT": "1"})
    assert cmd.startswith("DOCKER_BUILDKIT=1 /usr/bin/docker build -f ")


def test_the_command_keeps_build_args_cache_from_and_buildx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_mod.shutil, "which", lambda name: None)
    argv = ["docker", "buildx", "build", "--load", "--progress=plain", "--iidfile=/tmp/x/iid", "-f", "/elsewhere/D",
            "-t", "t:1", "--label=org.annapurna.lab=1", "--build-arg", "CI_RUNNER=a b", "--cache-from", "t:0",
            "/elsewhere/ctx"]
    assert shell_command(argv, {}) == ("docker buildx build --load -f /elsewhere/D -t t:1 "
                                       "--build-arg 'CI_RUNNER=a b' --cache-from t:0 /elsewhere/ctx")


def test_a_secret_is_shown_by_a_file_named_after_it_never_its_temporary_file() -> None:
    argv = lab_argv("--secret", "id=index_url,src=/tmp/annapurna-build-x/secret-index_url")
    cmd = shell_command(argv, {"DOCKER_BUILDKIT": "1"})
    assert "--secret id=index_url,src=index_url.secret" in cmd and "/tmp/" not in cmd


def test_the_command_of_a_real_build_comes_from_its_argv(tmp_path: Path) -> None:
    from basecamp.build import cli_argv

    argv = cli_argv(["/usr/bin/docker", "build"], ROOT / "dockerfiles" / "05-multi-stage.Dockerfile", tmp_path / "ctx",
                    "annapurna-lab/05-multi-stage:latest", tmp_path / "iid", target="runtime", build_args={},
                    labels={"org.annapurna.lab": "1"}, no_cache=False)
    result = BuildResult("t", "sha256:x", Path("D"), Path("."), "b", 1.0, [], "", "2026-01-01T00:00:00+00:00",
                         argv=argv, env={"DOCKER_BUILDKIT": "1"})
    assert result.command.endswith(f"build -f dockerfiles/05-multi-stage.Dockerfile -t annapurna-lab/05-multi-stage:latest "
                                   f"--target runtime {tmp_path / 'ctx'}")
    assert "command" in result.as_dict() and "argv" not in result.as_dict()


# --- one line per build, the log collapsed --------------------------------------------------------


def finished(*steps: tuple[str, str], log: str = "", wall: float = 11.6) -> BuildResult:
    parsed = []
    for vertex, (name, status) in enumerate(steps, start=1):
        step = parse_header(vertex, name)
        step.status = status  # type: ignore[assignment]
        parsed.append(step)
    return BuildResult("annapurna-lab/01-naive:latest", "sha256:abc", Path("D"), Path("."), "b", wall, parsed, log,
                       "2026-01-01T00:00:00+00:00")


def test_a_builds_summary_line_says_time_cached_and_ran() -> None:
    r = finished(("[1/4] FROM python:3.11-bookworm", "cached"), ("[2/4] RUN pip install poetry", "cached"),
                 ("[3/4] COPY . .", "done"), ("[4/4] RUN poetry install", "done"), wall=4.2)
    assert summary_line(r) == "built annapurna-lab/01-naive:latest in 4.2 s: 3 steps, 1 cached, 2 ran"
    run = measure.Run("code-change", 4.2, 1, 2, 0, "sha256:abc", r, index=2)
    assert run.line() == "code-change 2: 4.2 s, 1 cached, 2 ran, 0 downloads"


def test_the_collapsed_log_is_html_details_and_one_line_of_text() -> None:
    log = "".join(f"#6 0.{i:03d} line {i} <b>&\n" for i in range(120))
    out = BuildLog("01-naive: cold 1: 11.6 s, 0 cached, 3 ran", log)
    plain = repr(out)
    assert "\n" not in plain and plain.startswith("01-naive: cold 1: 11.6 s") and "120 lines" in plain
    html = out._repr_html_()
    assert html.startswith("<details><summary>") and html.endswith("</details>")
    assert "line 119 &lt;b&gt;&amp;" in html and "<b>&" not in html  # the whole log, escaped
    bundle = _bundle(out)
    assert bundle["text/plain"] == plain and bundle["text/html"] == html


def test_host_names_never_reach_the_stored_log() -> None:
    log = textwrap.dedent("""\
        #3 [internal] load metadata for registry.example.io/library/python:3.11-bookworm
        #4 [1/4] FROM registry.example.io/library/python:3.11-bookworm
        #6 0.4 Looking in indexes: https://user:pw@mirror.example.org/simple
        #7 1.4 Creating new session for files.example.org
        #7 1.5 [urllib3] Starting new HTTPS connection (1): files.example.org:443
        #7 1.6 Installing annapurna (0.1.0), version 2.0.dev0 from pyproject.toml via 127.0.0.1:3128
        """)
    html = BuildLog("x", log)._repr_html_()
    assert "example" not in html and "user:pw" not in html
    assert "FROM python:3.11-bookworm" in html and "https://***@host.invalid/simple" in html
    assert "connection (1): host.invalid:443" in html and "2.0.dev0 from pyproject.toml via 127.0.0.1:3128" in html
    assert redact_hosts("tick 1.0.dev\n") == "tick 1.0.dev\n"


def test_the_command_is_one_line_of_text_and_copyable_html() -> None:
    bundle = _bundle(ShellCommand("DOCKER_BUILDKIT=1 docker build -t 'a b' ."))
    assert bundle["text/plain"] == "$ DOCKER_BUILDKIT=1 docker build -t 'a b' ."
    assert "<pre" in bundle["text/html"] and "docker build -t &#x27;a b&#x27; .</pre>" in bundle["text/html"]


def _bundle(obj: Any) -> dict[str, str]:
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)
    return data


# --- a whole measurement: what its cell stores ----------------------------------------------------

FAKE_CLI = textwrap.dedent("""
    import os, sys
    args = sys.argv[1:]
    tag = args[args.index("-t") + 1]
    kind = "cold" if "--no-cache" in args else tag.rsplit("measure-", 1)[-1]
    sys.stdout.write(open(os.path.join(os.environ["FAKE_LOGS"], kind + ".log")).read())
    open(args[args.index("--iidfile") + 1], "w").write("sha256:" + "f" * 64)
""")

NAIVE_STEPS = ("[2/4] RUN pip install poetry", "[3/4] COPY . .", "[4/4] RUN poetry install")


def naive_log(statuses: str, tag: str) -> str:
    """A docker 20.10 BuildKit plain log of 01-naive; statuses: c(ached) or d(one) per step after FROM."""
    out = ["#1 [internal] load build definition from 01-naive.Dockerfile", "#1 DONE 0.0s", "",
           "#2 [1/4] FROM registry.example.io/library/python:3.11-bookworm", "#2 DONE 0.0s", ""]
    for vertex, (name, status) in enumerate(zip(NAIVE_STEPS, statuses), start=3):
        out.append(f"#{vertex} {name}")
        if status == "c":
            out.append(f"#{vertex} CACHED")
        else:
            out += [f"#{vertex} {i / 10:.3f} {name.split()[-1]} output line {i}" for i in range(40)]
            out.append(f"#{vertex} DONE 1.5s")
        out.append("")
    out += ["#9 exporting to image", "#9 writing image sha256:" + "f" * 64 + " done",
            f"#9 naming to registry.example.io/{tag} done", "#9 DONE 0.1s", ""]
    return "\n".join(out)


@dataclass
class FakeImage:
    id: str = "sha256:" + "f" * 64
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=lambda: {"Size": 877_000_000})

    def tag(self, repo: str, label: str) -> None:
        pass


class FakeClient:
    class images:
        @staticmethod
        def get(ref: str) -> FakeImage:
            return FakeImage(tags=[ref])

    @staticmethod
    def info() -> dict[str, str]:
        return {"ID": "fake-engine"}


@dataclass
class FakeScratch:
    path: Path
    name: str = "measure-01-naive"
    project: Any = None
    edits: list[str] = field(default_factory=list)

    def edit_code(self) -> None:
        self.edits.append("code")

    def change_dependency(self) -> None:
        self.edits.append("dependency")


@contextlib.contextmanager
def _tracking(note: str = "", client: Any = None, dockerfile_text: str = "") -> Iterator[Any]:
    yield buildcache.Tracking()


@pytest.fixture
def fake_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeScratch:
    """measure_step's engine, cache and disk faked; builds run the real build() against a fake CLI."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for kind, statuses in {"cold": "ddd", "warm": "ccc", "code-change": "cdd", "dependency-change": "cdd"}.items():
        (logs / f"{kind}.log").write_text(naive_log(statuses, f"annapurna-lab/01-naive:measure-{kind}"))
    script = tmp_path / "fake_docker.py"
    script.write_text(FAKE_CLI)
    cli = engine.BuildCLI([sys.executable, str(script), "build"], {"FAKE_LOGS": str(logs)}, "fake BuildKit CLI")
    monkeypatch.setattr(engine, "buildkit_cli", lambda: cli)
    monkeypatch.setattr(engine, "client", lambda *a, **k: FakeClient())
    monkeypatch.setattr(disk, "ensure_disk_space", lambda *a, **k: None)
    monkeypatch.setattr(buildcache, "track", _tracking)
    monkeypatch.setattr(buildcache, "cache_mounts_at_risk", lambda *a, **k: [])
    monkeypatch.setattr(buildcache, "prune_lab_cache_mounts", lambda *a, **k: 0)
    monkeypatch.setattr(buildcache, "remaining_lab_cache_mounts", lambda *a, **k: [])
    monkeypatch.setattr(images, "inspect_image", lambda ref, base=None: ImageInfo(
        ref=ref, id="sha256:" + "f" * 64, size_bytes=877_000_000, compressed_bytes=323_000_000, layers=[],
        base_ref=base))
    monkeypatch.setenv(measure.REPEATS_ENV, "2")
    context = tmp_path / ".lab" / "scratch" / "measure-01-naive"
    context.mkdir(parents=True)
    return FakeScratch(context)


@dataclass
class Stored:
    """A cell's outputs as nbclient stores them: stream text, then each display's data bundle."""

    stdout: str
    displays: list[dict[str, str]]

    def text_lines(self) -> list[str]:
        lines = self.stdout.splitlines()
        for data in self.displays:
            lines += data.get("text/plain", "").splitlines()
        return lines


def run_cell(code: Any, monkeypatch: pytest.MonkeyPatch) -> Stored:
    """Run `code()` as a notebook cell (an IPython shell that says it is a kernel) and capture its outputs."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # the shell the captured display calls go to
    monkeypatch.setattr(display_mod, "in_kernel", lambda: True)
    try:
        with capture_output() as captured:
            code()
    finally:
        InteractiveShell.clear_instance()
    return Stored(captured.stdout, [dict(o.data) for o in captured.outputs])


def test_a_measurement_cell_stores_a_command_per_scenario_one_line_per_build_and_the_logs_collapsed(
        fake_lab: FakeScratch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(display_mod.ENV_VAR, "plain")  # as ./lab test and /work/bin/nbexec run notebooks

    def cell() -> None:
        m = measure.measure_step("01", app=fake_lab, results_path=tmp_path / "results.jsonl")  # type: ignore[arg-type]
        print(m.summary())

    stored = run_cell(cell, monkeypatch)
    lines = stored.text_lines()
    assert len(lines) <= LINE_BUDGET, "\n".join(lines)
    commands = [d["text/plain"] for d in stored.displays if d["text/plain"].startswith("$ ")]
    builds = [d for d in stored.displays if "<details>" in d.get("text/html", "")]
    # ONE line per build (2 cold, warm-up, 2 code changes, warm-up, 2 dependency changes), in order
    assert [d["text/plain"].split(": ", 2)[1] for d in builds] == [
        "cold 1", "cold 2", "warm-up (not measured)", "code-change 1", "code-change 2", "warm-up (not measured)",
        "dependency-change 1", "dependency-change 2"]
    assert all(d["text/plain"].startswith("01-naive: ") and " cached, " in d["text/plain"] for d in builds)
    # one command per distinct build: cold (with --no-cache), warm-up, code change, dependency change
    assert len(commands) == 4 and len(set(commands)) == 4
    assert all(" -f dockerfiles/01-naive.Dockerfile " in c and c.endswith(f" {fake_lab.path}") for c in commands)
    assert "--no-cache -t" not in commands[0] and commands[0].count("--no-cache") == 1
    assert [c.split(" -t ")[1].split()[0].rsplit(":", 1)[1] for c in commands] == [
        "measure-cold", "measure-warm", "measure-code-change", "measure-dependency-change"]
    assert not any("--no-cache" in c for c in commands[1:])
    # every build's full log, collapsed, without host names; its text is one line
    for d in builds:
        assert d["text/plain"].count("\n") == 0 and "</details>" in d["text/html"]
        assert "output line 39" in d["text/html"] or "CACHED" in d["text/html"]
        assert "example" not in d["text/html"]
    assert "run output line 39" not in "\n".join(lines)  # no log line in the stored text
    # the measurement's summary follows
    assert stored.stdout.splitlines()[0].startswith("01-naive: annapurna-lab/01-naive:measure")


def test_a_measurement_in_a_terminal_stays_short(fake_lab: FakeScratch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(display_mod.ENV_VAR, raising=False)  # auto: plain text outside a kernel
    m = measure.measure_step("01", app=fake_lab, results_path=tmp_path / "results.jsonl")  # type: ignore[arg-type]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 + 8, "\n".join(out)  # 4 commands, 8 build lines (2 warm-ups)
    assert sum(line.startswith("$ ") for line in out) == 4
    assert next(line for line in out if not line.startswith("$ ")).startswith("01-naive: cold 1: ")
    assert m.scenarios["cold"].runs[0].build is not None and m.scenarios["cold"].runs[0].build.step_matching("poetry")


def test_a_single_build_shows_its_command_one_line_and_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               fake_lab: FakeScratch) -> None:
    from basecamp.build import build

    def cell() -> None:
        build(ROOT / "dockerfiles" / "01-naive.Dockerfile", fake_lab.path, "annapurna-lab/01-naive:measure-cold",
              display="plain")

    stored = run_cell(cell, monkeypatch)
    assert stored.stdout == ""
    command, built = (d["text/plain"] for d in stored.displays)
    assert command.startswith("$ FAKE_LOGS=") and " -t annapurna-lab/01-naive:measure-cold " in command
    assert built.startswith("built annapurna-lab/01-naive:measure-cold in ") and "3 ran" in built
    assert "<details>" in stored.displays[1]["text/html"]
    assert run_cell(lambda: build(ROOT / "dockerfiles" / "01-naive.Dockerfile", fake_lab.path, "a:measure-warm",
                                  display="none"), monkeypatch).text_lines() == []


def test_plain_display_reports_to_a_stream_without_html() -> None:
    import io

    out = io.StringIO()
    d = PlainDisplay(out, report=False, commands=set())
    d.start(None, "t", command="docker build .")
    d.start(None, "t", command="docker build .")  # the same command again: shown once
    d.finish(finished(("[1/1] RUN x", "done")))  # report=False: the caller shows the line
    d.report(None, "cold 1: 1.0 s")
    assert out.getvalue() == "$ docker build .\ncold 1: 1.0 s\n"


def test_the_fake_logs_parse_as_the_scenarios_need() -> None:
    assert [s.status for s in parse_log(naive_log("cdd", "x")).steps] == ["done", "cached", "done", "done"]


def test_a_cold_measurement_prunes_only_its_own_dockerfiles_cache_mounts(
        fake_lab: FakeScratch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """measure_step hands the measured Dockerfile (its parsed model) to the prune, so another step's cache mount
    stays (issue 17)."""
    from basecamp import dockerparse, steps

    asked: list[Any] = []
    monkeypatch.setattr(buildcache, "prune_lab_cache_mounts",
                        lambda client=None, dockerfile_text=None: asked.append(dockerfile_text) or 0)
    monkeypatch.setenv(display_mod.ENV_VAR, "none")
    measure.measure_step("01", app=fake_lab, scenarios=["cold"], results_path=tmp_path / "r.jsonl")  # type: ignore[arg-type]
    own = dockerparse.parse(steps.dockerfile("01").read_text())
    assert asked and all(model == own for model in asked), asked
    assert buildcache.mount_ids(asked[0]) == set(), "step 1 has no cache mount: its cold runs prune nothing"
