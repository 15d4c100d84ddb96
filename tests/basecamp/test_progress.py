"""progress + display: the BuildKit plain-output parser on real captured logs, and the displays."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from basecamp import display as display_mod
from basecamp.display import PlainDisplay, WidgetDisplay, make_display, resolve_mode
from basecamp.errors import BuildError, InputError
from basecamp.progress import (
    ClassicParser,
    Progress,
    ProgressParser,
    StepEvent,
    parse_header,
    parse_log,
)

DATA = Path(__file__).parent / "data"


def load(name: str) -> str:
    return (DATA / name).read_text()


def by_label(parser: ProgressParser) -> dict[str, object]:
    return {s.label: s for s in parser.steps}


# --- headers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stage", "index", "total", "internal", "platform"),
    [
        ("[builder 3/5] RUN poetry install --no-root", "builder", 3, 5, False, None),
        ("[2/3] RUN echo hi", None, 2, 3, False, None),
        ("[stage-0 2/2] RUN --mount=type=cache,target=/cache ls", "stage-0", 2, 2, False, None),
        ("[linux/amd64 builder 2/5] WORKDIR /app", "builder", 2, 5, False, "linux/amd64"),
        ("[linux/arm/v7 1/2] FROM x", None, 1, 2, False, "linux/arm/v7"),
        ("[internal] load build definition from Dockerfile", None, None, None, True, None),
        ("[auth] library/python:pull token", None, None, None, True, None),
        ("exporting to image", None, None, None, True, None),
        ('building with "default" instance using docker driver', None, None, None, True, None),
    ],
)
def test_parse_header(name, stage, index, total, internal, platform):
    step = parse_header(7, name)
    assert (step.stage, step.index, step.total, step.internal, step.platform) == (stage, index, total, internal, platform)
    assert step.name == name
    if not internal:
        assert step.instruction == name.split("] ", 1)[1]


def test_keyword_and_from():
    step = parse_header(1, "[builder 1/5] FROM base:latest AS builder")
    assert step.keyword == "FROM" and step.is_from
    assert parse_header(2, "[internal] load .dockerignore").keyword == ""


# --- captured 20.10 logs --------------------------------------------------------------------------


def test_cold_build():
    p = parse_log(load("buildkit2010_cold.log"))
    steps = by_label(p)
    assert list(steps) == [
        "[other 1/2]", "[builder 2/5]", "[builder 3/5]", "[builder 4/5]", "[builder 5/5]",
        "[other 2/2]", "[runtime 2/3]", "[runtime 3/3]",
    ]
    assert all(s.status == "done" for s in p.steps)
    assert steps["[builder 4/5]"].duration_s == 1.2
    assert steps["[builder 4/5]"].log == ["building hello"]
    # #9 is interrupted by #11 and printed again: one step, all three log lines, one duration.
    assert steps["[builder 5/5]"].log == ["tick 1", "tick 2", "tick 3"]
    assert steps["[builder 5/5]"].duration_s == 1.2
    assert steps["[other 2/2]"].stage == "other"
    assert {s.name for s in p.internal} == {
        "[internal] load build definition from Dockerfile", "[internal] load .dockerignore",
        "[internal] load metadata for annapurna-lab/test-busybox:latest", "[internal] load build context",
        "exporting to image",
    }
    assert p.image_id == "sha256:27b1e458c39e7f44abdd39264e0607463093fecff2cdc562c22d5d515fda84a6"
    assert p.progress() == Progress(done=10, total=10)  # builder 5 + other 2 + runtime 3
    assert p.trailer == [] and p.failed_step() is None and p.error_message is None


def test_cached_build_steps_never_print_done():
    p = parse_log(load("buildkit2010_cached.log"))
    non_from = [s for s in p.steps if not s.is_from]
    assert len(non_from) == 7
    assert all(s.status == "cached" and s.duration_s is None for s in non_from)
    (from_step,) = [s for s in p.steps if s.is_from]
    assert from_step.label == "[builder 1/5]"  # the shared FROM vertex is named after one stage
    assert p.progress() == Progress(10, 10)


def test_partial_build():
    p = parse_log(load("buildkit2010_partial.log"))
    steps = by_label(p)
    status = {label: s.status for label, s in steps.items()}
    assert status == {
        "[other 1/2]": "cached",  # reported DONE, then again in a later block as CACHED
        "[builder 2/5]": "cached",
        "[builder 3/5]": "done",
        "[builder 4/5]": "done",
        "[builder 5/5]": "done",
        "[other 2/2]": "cached",
        "[runtime 2/3]": "done",
        "[runtime 3/3]": "done",
    }
    assert steps["[builder 5/5]"].duration_s == 1.3


def test_failing_build():
    p = parse_log(load("buildkit2010_failing.log"))
    failed = p.failed_step()
    assert failed is not None and failed.label == "[builder 4/4]"
    assert failed.status == "error"
    assert failed.log == ["on stderr", "about to fail"]
    assert failed.error.endswith("exit code: 3")
    assert p.error_message == failed.error
    assert p.failed_name == '[builder 4/4] RUN echo "about to fail" && echo "on stderr" >&2 && exit 3'
    assert by_label(p)["[other 2/2]"].status == "canceled"
    assert p.trailer[1].startswith(" > [builder 4/4] RUN")
    assert p.image_id is None


def test_buildx_format():
    p = parse_log(load("buildx_synthetic_failing.log"))
    assert [s.label for s in p.steps] == ["[builder 1/4]", "[builder 2/4]", "[builder 3/4]", "[other 2/2]", "[builder 4/4]"]
    assert p.vertices[0].internal  # "#0 building with ..."
    steps = by_label(p)
    assert steps["[builder 2/4]"].status == "cached"
    assert steps["[other 2/2]"].status == "canceled" and steps["[other 2/2]"].log == ["slow other"]
    assert steps["[builder 4/4]"].status == "error"
    assert "did not complete successfully: exit code: 3" in p.error_message
    assert p.failed_name.startswith("[builder 4/4] RUN")
    assert p.trailer[-1].startswith("ERROR: failed to solve:")


def test_trailer_only_failure_names_the_step_from_the_summary():
    p = ProgressParser()
    p.feed_text("------\n > [builder 2/3] RUN false:\n------\nERROR: failed to solve: boom\n")
    assert p.failed_name == "[builder 2/3] RUN false"
    assert p.error_message == "failed to solve: boom"


# --- incremental behaviour ------------------------------------------------------------------------


def test_events_one_start_and_one_finish_per_vertex():
    p = ProgressParser()
    events: list[StepEvent] = []
    for line in load("buildkit2010_partial.log").splitlines(keepends=True):
        events += p.feed(line)
    starts = [e.step.vertex for e in events if e.kind == "started"]
    finishes = [e.step.vertex for e in events if e.kind == "finished"]
    assert sorted(starts) == sorted(set(starts)) == sorted(p.vertices)
    assert sorted(finishes) == sorted(set(finishes)) == sorted(p.vertices)
    logs = [e.line for e in events if e.kind == "log" and e.step.label == "[builder 5/5]"]
    assert logs == ["tick 1", "tick 2", "tick 3"]


def test_event_order_and_progress_while_interleaved():
    p = ProgressParser()
    seen = []
    for line in load("buildkit2010_cold.log").splitlines():
        for e in p.feed(line):
            if not e.step.internal:
                seen.append((e.kind, e.step.label, e.progress.done, e.progress.total))
    # builder 2/5 starts before its stage's own 1/5 is ever named: the shared FROM counts as done.
    assert seen[:4] == [
        ("started", "[other 1/2]", 0, 2),
        ("finished", "[other 1/2]", 1, 2),
        ("started", "[builder 2/5]", 2, 7),
        ("finished", "[builder 2/5]", 3, 7),
    ]
    assert seen[-1] == ("finished", "[runtime 3/3]", 10, 10)
    nine = [(k, d) for k, label, d, _ in seen if label == "[builder 5/5]"]
    assert [k for k, _ in nine] == ["started", "log", "log", "log", "finished"]


def test_log_lines_edge_cases():
    p = ProgressParser()
    p.feed("#5 [2/3] RUN echo\n")
    assert p.feed("#5 0.123\r\n")[0].line == ""
    assert p.feed("#5 0.200 3.14 is a number")[0].line == "3.14 is a number"
    assert p.feed("#5 ...") == []
    assert p.feed("#5 sha256:" + "a" * 64) == []  # status line, not log
    assert p.feed("#5 [2/3] RUN echo") == []  # header again
    (done,) = p.feed("#5 DONE 0.3s")
    assert done.kind == "finished" and done.step.duration_s == 0.3
    assert p.steps[0].log == ["", "3.14 is a number"]
    assert p.feed("#5 DONE 0.4s") == []  # reported twice: no second event


def test_error_sticks_over_cancel():
    p = ProgressParser()
    p.feed_text("#3 [a 2/2] RUN x\n#3 ERROR: boom\n#3 CANCELED\n")
    assert p.steps[0].status == "error" and p.steps[0].error == "boom"


# --- classic builder stream ----------------------------------------------------------------------


def classic(name: str) -> ClassicParser:
    ticks = iter(range(10_000))
    p = ClassicParser(clock=lambda: float(next(ticks)))
    p.feed_all(json.loads(line) for line in (DATA / f"classic_{name}.jsonl").read_text().splitlines())
    return p


def test_classic_cached_stream():
    p = classic("cached")
    assert len(p.steps) == 14
    assert [s.stage for s in p.steps[:7]] == ["builder"] * 6 + ["other"]
    cached = [s for s in p.steps if s.status == "cached"]
    assert len(cached) == 11 and all(not s.is_from for s in cached)
    assert all(s.status == "done" for s in p.steps if s.is_from)
    assert p.steps[4].name == '[builder 5/14] RUN echo "building $GREETING" && sleep 1 && echo line2 > /app/out.txt'
    assert p.image_id and p.image_id.startswith("sha256:")
    assert p.progress() == Progress(14, 14)


def test_classic_cold_stream_logs_and_durations():
    p = classic("cold")
    tick = p.steps[5]
    assert tick.log == ["tick 1", "tick 2", "tick 3"] and tick.status == "done"
    assert tick.duration_s is not None and tick.duration_s > 0


def test_classic_failing_stream():
    p = classic("failing")
    failed = p.failed_step()
    assert failed is not None and failed.index == 4 and failed.status == "error"
    assert failed.log == ["about to fail", "on stderr"]  # ANSI colour of stderr removed
    assert p.error_code == 3 and "returned a non-zero code: 3" in p.error


# --- displays -------------------------------------------------------------------------------------


def test_plain_display_in_a_terminal_prints_the_command_and_one_line():
    out = io.StringIO()
    d = PlainDisplay(out)
    d.start(None, "x", command="DOCKER_BUILDKIT=1 docker build -t x .")
    p = ProgressParser()
    for line in load("buildkit2010_partial.log").splitlines():
        for e in p.feed(line):
            d.on_event(e)
    assert out.getvalue() == "$ DOCKER_BUILDKIT=1 docker build -t x .\n"  # no line per step
    d.report(None, "cold 1: 1.0 s, 0 cached, 3 ran")
    assert out.getvalue().splitlines()[-1] == "cold 1: 1.0 s, 0 cached, 3 ran"


def test_plain_display_failure_line():
    out = io.StringIO()
    err = BuildError(["docker", "build"], 1, "boom", failed_step="[builder 4/4] RUN exit 3")
    err.step_exit_code = 3
    PlainDisplay(out).finish(None, err)
    assert out.getvalue() == "FAILED at [builder 4/4] RUN exit 3 (exit code 3)\n"
    out = io.StringIO()
    PlainDisplay(out).finish(None, KeyboardInterrupt())
    assert out.getvalue().startswith("INTERRUPTED")


def test_widget_display_tracks_steps(capsys):
    shown = []
    d = WidgetDisplay(refresh_s=0.0, show=shown.append)
    d.start(None, "annapurna-lab/x:1")
    assert shown == [d.box]
    p = ProgressParser()
    for line in load("buildkit2010_cold.log").splitlines():
        for e in p.feed(line):
            d.on_event(e)
    assert (d.bar.value, d.bar.max) == (10, 10)
    assert d.label.value.startswith("[runtime 3/3]")
    assert "tick 3" in d.log.value and "&quot;" in d.log.value  # escaped HTML
    assert d.pane.selected_index is None  # collapsed while it runs
    err = BuildError(["docker"], 1, "", "[a 1/1] RUN x")
    err.log = load("buildkit2010_failing.log")
    d.finish(None, err)
    assert d.bar.bar_style == "danger" and d.pane.selected_index == 0
    # the widget is replaced by the failure line, the full log open under it
    final = shown[-1]
    assert isinstance(final, display_mod.BuildLog) and final.open and final.line.startswith("FAILED at [a 1/1] RUN x")
    assert "about to fail" in final._repr_html_() and "<details open>" in final._repr_html_()


def test_make_display_modes(monkeypatch):
    monkeypatch.delenv(display_mod.ENV_VAR, raising=False)
    assert resolve_mode() == "plain"  # pytest is no IPython kernel
    assert isinstance(make_display("plain"), PlainDisplay)
    assert isinstance(make_display("widget"), WidgetDisplay)
    assert resolve_mode("none") == "none"
    monkeypatch.setenv(display_mod.ENV_VAR, "widget")
    assert resolve_mode() == "widget"
    monkeypatch.setenv(display_mod.ENV_VAR, "fancy")
    with pytest.raises(InputError, match="ANNAPURNA_PROGRESS"):
        make_display()
    monkeypatch.setattr(display_mod, "in_kernel", lambda: True)
    monkeypatch.setenv(display_mod.ENV_VAR, "auto")
    assert resolve_mode() == "widget"
    monkeypatch.setattr(display_mod, "_widgets_available", lambda: False)
    assert resolve_mode() == "plain" and resolve_mode("widget") == "plain"
