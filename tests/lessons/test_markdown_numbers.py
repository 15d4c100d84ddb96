"""No sentence can contradict a measurement: no measured-looking quantity typed into markdown.

A size, time, ratio, percentage or count (of wheels, packages, downloads, modules, files, layers)
measured on the learner's machine is rendered by a code cell (`bc.say(f"...")`) from the measurement itself, never typed into a markdown cell, where it goes stale
on the next machine (docs/lesson-style.md, issue 20 §1). Allowed in markdown: the article's published
figures (basecamp.article.PUBLISHED), a notebook's `**Time:**` line in its first cell, version numbers,
fenced code, and the short, justified list below. The literal parts of the text a code cell gives to
`bc.say(...)` are scanned too (the parts an f-string formats in come from measurements and are not).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbscan
import pytest
from basecamp.article import PUBLISHED

#: Quantities that may stand in markdown although they look measured: each is a documented constant,
#: not a measurement, and may stand only in a line that also holds `near`. Keep this list short.
EXCEPTIONS = [
    nbscan.Allowed("10 s", near="stop",
                   why="docker stop's documented default grace period before SIGKILL (`-t, --time=10`, "
                       "docker-container-stop(1) of docker.io 20.10; docs.docker.com/reference/cli/docker/container/stop/)"),
    nbscan.Allowed("10 seconds", near="stop", why="the same documented default, spelt out"),
]

#: The instructor guide's schedule plans the workshop's time slots: minutes and hours there are a
#: plan for the day, not measurements of this machine. Sizes, seconds, ratios and percentages stay banned.
SCHEDULE_UNITS = ("min", "mins", "minute", "minutes", "hour", "hours", "h")


def _documents(root: Path = nbscan.ROOT) -> list[Path]:
    notebooks = nbscan.notebook_paths(root)
    others = [root / "notebooks" / "glossary.md", root / "docs" / "instructor-guide.md"]
    return notebooks + [p for p in others if p.is_file()]


def findings_for(path: Path, root: Path = nbscan.ROOT) -> list[nbscan.Finding]:
    label = path if path.suffix == ".ipynb" else path.relative_to(root)
    allow = _is_planned_duration if path.name == "instructor-guide.md" else None
    return nbscan.markdown_number_findings(path, PUBLISHED.values(), EXCEPTIONS, label=label, allow=allow)


def _is_planned_duration(q: nbscan.Quantity) -> bool:
    """A schedule's slot: "a 90-minute workshop" anywhere, "20 min" in a table row or a heading. In prose
    ("the series ran in 13 minutes") a duration is a measurement like any other."""
    if re.fullmatch(r"\d+-(?:minute|hour)", q.text):
        return True  # "a 90-minute workshop", "a 3-hour workshop": the length of a plan
    unit_ok = re.fullmatch(r"[\d.,–\s-]+(?:to\s+\d+\s*)?(" + "|".join(SCHEDULE_UNITS) + ")", q.text) is not None
    return unit_ok and q.context.startswith(("|", "#"))


def guide_time_findings(guide: Path, root: Path = nbscan.ROOT) -> list[nbscan.Finding]:
    """A table of the guide whose header has a 'running' column must give each notebook the running time its
    own first cell gives (`**Time:** … about M min running`): both come from the same ./lab report."""
    said = {}
    for path in nbscan.notebook_paths(root):
        first = nbscan.source(nbscan.load(path)["cells"][0]) if nbscan.load(path).get("cells") else ""
        m = re.search(r"^\*\*Time:\*\*.*?about\s+(\d+)\s*min(?:utes)?\s+running", first, re.MULTILINE)
        if m:
            said[path.name[:2]] = int(m.group(1))
    out, column = [], None
    for n, line in enumerate(guide.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.lstrip().startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None:
            column = next((i for i, c in enumerate(cells) if "running" in c.lower()), -1)
            continue
        if column < 0 or column >= len(cells) or re.fullmatch(r"[-: ]*", "".join(cells)):
            continue
        nb = re.search(r"\b(\d{2})_[A-Za-z]", cells[0])
        minutes = re.search(r"(\d+)\s*min", cells[column])
        if nb and minutes and nb.group(1) in said and int(minutes.group(1)) != said[nb.group(1)]:
            out.append(nbscan.Finding(
                f"{guide.relative_to(root)} line {n}",
                f"notebook {nb.group(1)} runs {minutes.group(0)!r} here, but its **Time:** line says about "
                f"{said[nb.group(1)]} min running",
                "make the guide and the notebook's first cell agree (both from the same ./lab report), or have the "
                "guide point to the notebooks' Time lines instead of repeating them"))
    return out


@pytest.mark.parametrize("path", _documents(), ids=lambda p: p.name)
def test_no_measured_number_is_typed_into_markdown(path: Path) -> None:
    found = findings_for(path)
    if found:
        pytest.fail(nbscan.report(found, "measured-looking quantities typed into markdown") + (
            "\n(Allowed: the article's figures " + ", ".join(PUBLISHED.values()) + ", the first cell's **Time:** line, "
            "fenced code, and the exceptions in tests/lessons/test_markdown_numbers.py — each with its reason.)"),
            pytrace=False)


def test_the_instructor_guide_gives_the_notebooks_own_running_times() -> None:
    guide = nbscan.ROOT / "docs" / "instructor-guide.md"
    if not guide.is_file():
        pytest.skip("no docs/instructor-guide.md in this checkout")
    found = guide_time_findings(guide)
    if found:
        pytest.fail(nbscan.report(found, "running times that contradict the notebooks' own"), pytrace=False)


def test_the_series_has_notebooks_to_scan() -> None:
    assert len(nbscan.notebook_paths()) >= 10, "tests/lessons found no notebooks/NN_*.ipynb: is the checkout complete?"


# ---------------------------------------------------------------- the scanner itself


def _notebook(tmp_path: Path, *markdown: str, name: str = "99_probe.ipynb") -> Path:
    nb = {"cells": [{"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": text}
                    for i, text in enumerate(markdown)],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / name
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def _scan(path: Path) -> list[nbscan.Finding]:
    return nbscan.markdown_number_findings(path, PUBLISHED.values(), EXCEPTIONS)


def test_a_planted_size_is_caught_with_notebook_cell_and_text(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "# 99 · Probe\n\n**Time:** 5 min reading · about 2 min running",
                     "Nothing here.", "## Size\n\nSo the image weighs 877 MB, as measured.")
    found = _scan(path)
    assert len(found) == 1, found
    assert found[0].where == "99_probe.ipynb cell 2 line 3"
    assert "'877 MB'" in found[0].found and "the image weighs 877 MB" in found[0].found
    assert "bc.say" in found[0].fix


@pytest.mark.parametrize("text, quantity", [
    ("Poetry's cache left inside the image: **141M**", "141M"),
    ("the venv takes `108 MB`", "108 MB"),
    ("it loads in 0.7 s", "0.7 s"),
    ("the cold build took 38 seconds", "38 seconds"),
    ("a 2.5 min build", "2.5 min"),
    ("uv is 6.5× faster", "6.5×"),
    ("uv is 3x faster", "3x"),
    ("3 times smaller than step 1", "3 times"),
    ("ten times smaller than step 1", "ten times smaller"),
    ("efficiency is 99.8 %", "99.8 %"),
    ("24 GiB of memory, 4 kB pages, 200 bytes", "24 GiB"),
    ("the table shows 0.4 s / 3.9 s", "0.4 s"),
    ("on a cold build both download the same 14 wheels", "14 wheels"),
    ("a dependency change costs +12 MB, a code change -3.9 s", "12 MB"),
    ("(-3.9 s against step 6)", "3.9 s"),
    ("0 of 806 modules compiled", "806 modules"),
])
def test_measured_looking_quantities_are_caught(tmp_path: Path, text: str, quantity: str) -> None:
    found = _scan(_notebook(tmp_path, text))
    assert found and quantity in found[0].found, (text, found)


@pytest.mark.parametrize("text", [
    "The article's image weighs **1.1 GB**, its final one 170 MB: 6x smaller. Step 2: 959 MB.",
    "Python 3.11, Poetry 2.5.1, uv 0.13, Docker 20.10's BuildKit; `python:3.11-slim-bookworm`.",
    "It runs as uid 10001 and serves port 8000; HTTP 200; steps 3b and 05; exit code 127.",
    "```dockerfile\nRUN du -sh /root  # 877 MB here\n```",
    "~~~\n3 s\n~~~",
    "See [the docs](https://docs.docker.com/build/cache/?size=10MB).",
    "`docker stop` waits 10 s before it sends SIGKILL.",
])
def test_what_is_allowed_passes(tmp_path: Path, text: str) -> None:
    assert _scan(_notebook(tmp_path, text)) == []


def test_a_number_typed_into_say_text_is_caught_a_formatted_one_is_not(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "# 99 · Probe")
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "code", "id": "s", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": 'bc.say(f"""\nOurs weighs **{bc.fmt_bytes(size)}** MB.\nThe cache held 33 MB.\n""")'})
    path.write_text(json.dumps(nb))
    found = _scan(path)
    assert [(f.where, f.found.split("'")[1]) for f in found] == [("99_probe.ipynb cell 1 line 3", "33 MB")], found


def test_the_time_line_is_allowed_only_in_the_first_cell(tmp_path: Path) -> None:
    line = "**Time:** 10 min reading · about 2 min running"
    assert _scan(_notebook(tmp_path, f"# 99 · Probe\n\n{line}")) == []
    found = _scan(_notebook(tmp_path, "# 99 · Probe", line))
    assert [f.where for f in found] == ["99_probe.ipynb cell 1 line 1", "99_probe.ipynb cell 1 line 1"]


def test_an_exception_holds_only_beside_its_context(tmp_path: Path) -> None:
    assert _scan(_notebook(tmp_path, "The smoke test waited 10 s for the app.")), "10 s without 'stop' is a measurement"


def test_every_exception_says_why() -> None:
    assert len(EXCEPTIONS) <= 8, "keep the exception list short: render numbers with bc.say instead"
    for e in EXCEPTIONS:
        assert len(e.why) > 20 and e.near, e


def test_the_instructor_guide_may_plan_minutes_but_not_measure(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    guide = tmp_path / "docs" / "instructor-guide.md"
    guide.write_text("## A 3-hour workshop\n\n| 0:00 | 20 min | 01 |\n| 0:20 | **10 min break** | |\n\n"
                     "A 90-minute workshop leaves 45–60 min for 01.\n\n"
                     "The naive image is 877 MB; a rebuild takes 12 s, uv is 2x faster.\n")
    found = findings_for(guide, root=tmp_path)
    assert [f.found.split("'")[1] for f in found] == ["45–60 min", "877 MB", "12 s", "2x"], found
    assert found[1].where == "docs/instructor-guide.md line 8"


def test_the_guide_s_running_times_are_checked_against_the_time_lines(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks", "# 01 · N\n\n**Time:** 10 min reading · about 3 min running", name="01_naive.ipynb")
    _notebook(tmp_path / "notebooks", "# 02 · W\n\n**Time:** 8 min reading · about 2 min running", name="02_warming_up.ipynb")
    guide = tmp_path / "docs" / "instructor-guide.md"
    guide.write_text("| notebook | running | note |\n|---|---|---|\n| [`01_naive`](x) | 2 min | |\n"
                     "| [`02_warming_up`](y) | 2 min | |\n\n| time | slot | notebook |\n|---|---|---|\n| 0:00 | 20 min | `01_naive` |\n")
    found = guide_time_findings(guide, root=tmp_path)
    assert [f.where for f in found] == ["docs/instructor-guide.md line 3"] and "about 3 min running" in found[0].found
