"""Every notebook is a lesson (docs/lesson-style.md): questions, objectives and time on top, key points at
the bottom; every step notebook has an exercise that asks for a prediction and checks it against a
measurement, with the solution hidden; the summary has a questionnaire; nbval's directives are cell
tags with a reason, never comments a learner reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbscan
import pytest

FIRST_CELL_BLOCKS = ("**Questions**", "**Objectives**", "**Time:**")


def _is_bullet(line: str) -> bool:
    return re.match(r"^[-*+]\s+\S", line) is not None  # top-level bullets only


def top_and_bottom_findings(path: Path) -> list[nbscan.Finding]:
    nb = nbscan.load(path)
    cells = nb.get("cells", [])
    out = []
    if not cells:
        return [nbscan.Finding(path.name, "has no cells", "write the lesson")]
    first, last = cells[0], cells[-1]
    number = path.name[:2]
    if first.get("cell_type") != "markdown":
        out.append(nbscan.Finding(nbscan.where(path, 0), "the first cell is not markdown",
                                  f"start with a markdown cell: '# {number} · Title', then {', '.join(FIRST_CELL_BLOCKS)}"))
    else:
        text = nbscan.source(first)
        if not text.startswith(f"# {number} · "):
            out.append(nbscan.Finding(nbscan.where(path, 0), f"the title is {text.splitlines()[0] if text else ''!r}",
                                      f"the first line must be '# {number} · Title' (the file's number, a middle dot)"))
        positions = []
        for block in FIRST_CELL_BLOCKS:
            pos = text.find(block)
            if pos < 0:
                out.append(nbscan.Finding(nbscan.where(path, 0), f"no {block} block",
                                          "add it (docs/lesson-style.md, 'The shape'): **Questions** 2–3 questions, "
                                          "**Objectives** 2–4 things the learner can do, **Time:** R min reading · about M min running"))
            positions.append(pos)
        present = [p for p in positions if p >= 0]
        if present != sorted(present):
            out.append(nbscan.Finding(nbscan.where(path, 0), "the blocks are out of order",
                                      f"order them {' then '.join(FIRST_CELL_BLOCKS)}"))
    last_index = len(cells) - 1
    if last.get("cell_type") != "markdown" or not re.match(r"^\s*## Key points\s*$", nbscan.source(last).split("\n")[0] if nbscan.source(last) else ""):
        out.append(nbscan.Finding(nbscan.where(path, last_index), "the last cell is not a markdown '## Key points' cell",
                                  "end the notebook with a markdown cell: '## Key points', then 3–5 bullets"))
    else:
        bullets = [line for line in nbscan.source(last).split("\n") if _is_bullet(line)]
        if not 3 <= len(bullets) <= 5:
            out.append(nbscan.Finding(nbscan.where(path, last_index), f"'## Key points' has {len(bullets)} bullets",
                                      "give 3–5 bullets ('- ...'), one idea each"))
    return out


def is_step_notebook(nb: dict) -> bool:
    return any("measure_step(" in nbscan.source(c) for _, c in nbscan.cells(nb, "code"))


_PREDICTION = re.compile(r"^\s*prediction\s*=\s*None\b", re.MULTILINE)
_EXERCISE = re.compile(r"^\s{0,3}## Exercise\b", re.MULTILINE)
_REVEALING = ("this run measured", "right:", "not quite:")


def exercise_findings(path: Path) -> list[nbscan.Finding]:
    """A step notebook's exercise (and any notebook's): heading, `prediction = None`, a later check_prediction cell whose stored
    outputs do not reveal the answer, and a <details> solution in a markdown cell after it."""
    nb = nbscan.load(path)
    has_exercise = any(_EXERCISE.search(nbscan.source(c)) for _, c in nbscan.cells(nb, "markdown"))
    if not is_step_notebook(nb) and not has_exercise:
        return []  # an exercise is required in a step notebook; any exercise, anywhere, has the form below
    shape = ("docs/lesson-style.md, 'Exercises': '## Exercise: …' (markdown), `prediction = None  # your answer: …` "
             "(code), a later code cell with bc.check_prediction(prediction, measured, question=…), then a markdown "
             "cell with <details><summary>Solution …</summary> … </details>")
    headings = [i for i, c in nbscan.cells(nb, "markdown") if _EXERCISE.search(nbscan.source(c))]
    if not headings:
        return [nbscan.Finding(path.name, "a step notebook (it calls measure_step) without an '## Exercise' heading",
                               f"add an exercise: {shape}")]
    out = []
    predictions = [i for i, c in nbscan.cells(nb, "code") if _PREDICTION.search(nbscan.source(c)) and i > headings[0]]
    if not predictions:
        out.append(nbscan.Finding(nbscan.where(path, headings[0]),
                                  "no code cell after the exercise heading assigns `prediction = None`",
                                  f"let the learner write the prediction into `prediction` ({shape})"))
        return out
    checks = [i for i, c in nbscan.cells(nb, "code") if "check_prediction(" in nbscan.source(c) and i > predictions[0]]
    if not checks:
        out.append(nbscan.Finding(nbscan.where(path, predictions[0]), "no later code cell calls check_prediction(",
                                  f"check the prediction against this run's measurement ({shape})"))
        return out
    check = checks[0]
    out += check_output_findings(path, check, nb["cells"][check])
    if not any("<details>" in nbscan.source(c) for i, c in nbscan.cells(nb, "markdown") if i > check):
        out.append(nbscan.Finding(nbscan.where(path, check), "no <details> solution in a markdown cell after the check cell",
                                  "put the solution, collapsed, after the check: <details><summary>Solution (open it after "
                                  "you predicted)</summary> … </details> (the reasoning, no measured number)"))
    return out


_NO_PREDICTION = "No prediction yet"


def check_output_findings(path: Path, index: int, cell: dict) -> list[nbscan.Finding]:
    """The check cell's stored outputs sit right under the question: they must be what check_prediction
    prints with `prediction = None` and nothing else a learner could read the answer from (the lab's
    collapsed HTML displays and bc.command's terminal lines are not text outputs and pass)."""
    out = []
    here = nbscan.where(path, index)
    rerun = ("store the cell as run with `prediction = None` (check_prediction then prints only how to predict): "
             "clear the prediction, re-execute the notebook")
    stored = nbscan.text_outputs(cell)
    for words in _REVEALING:
        if words in stored.lower():
            out.append(nbscan.Finding(here, f"the check cell's stored output reveals the answer ({words!r})", rerun))
            return out
    if _NO_PREDICTION not in stored:
        out.append(nbscan.Finding(here, "the check cell's stored output lacks check_prediction's 'No prediction yet' line",
                                  rerun + " (a cell never executed stores nothing)"))
    other = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            text = o.get("text", "")
            other += [line for line in ("".join(text) if isinstance(text, list) else text).splitlines()
                      if line.strip() and not line.startswith(_NO_PREDICTION)]
        elif o.get("output_type") in ("display_data", "execute_result"):
            data = o.get("data", {})
            md = data.get("text/markdown", "")
            md = "".join(md) if isinstance(md, list) else md
            plain = data.get("text/plain", "")
            plain = "".join(plain) if isinstance(plain, list) else plain
            if md:
                if not md.startswith("The same in a terminal:"):
                    other.append(md.strip().splitlines()[0])
            elif plain and "text/html" not in data and not data.keys() - {"text/plain"} and not (
                    plain.startswith("PredictionCheck(") and "measured=None" in plain):
                other.append(plain.strip().splitlines()[0])
        elif o.get("output_type") == "error":
            other.append(f"{o.get('ename')}: {o.get('evalue')}")
    for line in other:
        out.append(nbscan.Finding(here, f"the check cell also stores {line[:100]!r} under the question",
                                  "print nothing else there (build with display='none'; show the measured value "
                                  "only through check_prediction): it can give the answer away before the learner predicts"))
    return out


_QUESTIONNAIRE = re.compile(r"^\s{0,3}#{2,3}\s.*\b(questionnaire|quiz|check your understanding|test yourself)\b",
                            re.IGNORECASE | re.MULTILINE)


def questionnaire_findings(path: Path) -> list[nbscan.Finding]:
    """The summary notebook's questionnaire: 5–8 questions, each answer in a <details> block, from the
    questionnaire's heading to the next '## ' heading."""
    nb = nbscan.load(path)
    start = next((i for i, c in nbscan.cells(nb, "markdown") if _QUESTIONNAIRE.search(nbscan.source(c))), None)
    if start is None:
        return [nbscan.Finding(path.name, "the summary has no questionnaire",
                               "add a markdown section '## Questionnaire' with 5–8 questions covering the series, "
                               "each answer hidden in <details><summary>Answer</summary> … </details>")]
    text = nbscan.source(nb["cells"][start])
    body = text[_QUESTIONNAIRE.search(text).end():]
    for cell in nb["cells"][start + 1:]:
        src = nbscan.source(cell)
        if cell.get("cell_type") == "markdown" and re.match(r"^\s{0,3}## ", src):
            break
        if cell.get("cell_type") == "markdown":
            body += "\n" + src
    answers = body.count("<details>")
    closed = body.count("</details>")
    numbered = len(re.findall(r"^\s{0,3}(?:(?:\*\*|__)?Q?\d+[.):](?:\*\*|__)?|#{3,4})\s+\S",  # 1. / **1.** / Q1: / ###
                              nbscan.without_fenced_code(body), re.MULTILINE))
    out = []
    if not 5 <= answers <= 8:
        out.append(nbscan.Finding(nbscan.where(path, start), f"the questionnaire has {answers} answers in <details>",
                                  "ask 5–8 questions, each followed by its answer in <details><summary>Answer</summary> … </details>"))
    if answers != closed:
        out.append(nbscan.Finding(nbscan.where(path, start), f"{answers} <details> but {closed} </details>", "close every <details>"))
    if numbered and numbered != answers:
        out.append(nbscan.Finding(nbscan.where(path, start), f"{numbered} numbered questions but {answers} hidden answers",
                                  "give every question its own <details> answer"))
    return out


def nbval_findings(path: Path) -> list[nbscan.Finding]:
    nb = nbscan.load(path)
    out = []
    for i, cell in nbscan.cells(nb, "code"):
        if "NBVAL_" in nbscan.source(cell):
            out.append(nbscan.Finding(nbscan.where(path, i), "a `# NBVAL_...` comment in the code",
                                      "remove the comment and tag the cell instead (metadata.tags: ['nbval-ignore-output'], "
                                      "metadata.annapurna.output_varies: why)"))
    for i, cell in nbscan.cells(nb):
        meta = cell.get("metadata", {})
        if "nbval-ignore-output" in meta.get("tags", []):
            reason = meta.get("annapurna", {}).get("output_varies")
            if not (isinstance(reason, str) and reason.strip()):
                out.append(nbscan.Finding(nbscan.where(path, i), "tagged nbval-ignore-output without a reason",
                                          "say why its output varies in metadata.annapurna.output_varies"))
    return out


def _fail_on(found: list[nbscan.Finding], what: str) -> None:
    if found:
        pytest.fail(nbscan.report(found, what), pytrace=False)


NOTEBOOKS = nbscan.notebook_paths()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_top_and_bottom_of_the_lesson(path: Path) -> None:
    _fail_on(top_and_bottom_findings(path), "problems with the lesson's first or last cell")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_step_notebook_has_an_honest_exercise(path: Path) -> None:
    _fail_on(exercise_findings(path), "problems with the exercise")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.endswith("_summary.ipynb")], ids=lambda p: p.name)
def test_the_summary_has_a_questionnaire(path: Path) -> None:
    _fail_on(questionnaire_findings(path), "problems with the questionnaire")


def test_there_is_a_summary_notebook() -> None:
    assert [p for p in NOTEBOOKS if p.name.endswith("_summary.ipynb")], "no notebooks/NN_summary.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_directives_are_tags_with_a_reason(path: Path) -> None:
    _fail_on(nbval_findings(path), "nbval directives a learner would read, or without a reason")


def test_step_notebooks_are_found() -> None:
    steps = [p.name for p in NOTEBOOKS if is_step_notebook(nbscan.load(p))]
    assert "01_naive.ipynb" in steps and len(steps) >= 6, steps


# ---------------------------------------------------------------- the checks themselves


def _write(tmp_path: Path, cells: list[tuple[str, str]], name: str = "05_probe.ipynb", outputs: dict | None = None,
           metadata: dict | None = None) -> Path:
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for i, (kind, text) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"c{i}", "metadata": (metadata or {}).get(i, {}), "source": text}
        if kind == "code":
            cell |= {"execution_count": None, "outputs": (outputs or {}).get(i, [])}
        nb["cells"].append(cell)
    path = tmp_path / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


GOOD = [
    ("markdown", "# 05 · Probe\n\n**Questions**\n- why?\n\n**Objectives**\n- build\n\n**Time:** 5 min reading · about 2 min running"),
    ("code", 'm = bc.measure_step("05")'),
    ("markdown", "## Exercise: guess\n\nHow many?"),
    ("code", "prediction = None  # your answer: a number"),
    ("code", "bc.check_prediction(prediction, 3, question='how many')"),
    ("markdown", "<details><summary>Solution (open it after you predicted)</summary>\n\nBecause.\n</details>"),
    ("markdown", "## Key points\n\n- one\n- two\n- three"),
]


def _all(path: Path) -> list[str]:
    return [f.found for f in top_and_bottom_findings(path) + exercise_findings(path) + nbval_findings(path)]


def test_a_good_lesson_passes(tmp_path: Path) -> None:
    assert _all(_write(tmp_path, GOOD, outputs={4: [NONE_YET]})) == []


NONE_YET = {"output_type": "stream", "name": "stdout",
            "text": "No prediction yet (how many): set `prediction` in the cell above, run it, then run this cell again. "
                    "The answer stays hidden until you do.\n"}


def test_a_check_stored_with_no_prediction_passes(tmp_path: Path) -> None:
    command = {"output_type": "display_data", "metadata": {},
               "data": {"text/markdown": "The same in a terminal:\n\n```bash\n$ docker build .\n```", "text/plain": "<Markdown>"}}
    log = {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<details>log</details>", "text/plain": "<HTML>"}}
    result = {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {
        "text/plain": "PredictionCheck(question='how many', prediction=None, measured=None, right=None)"}}
    assert _all(_write(tmp_path, GOOD, outputs={4: [NONE_YET, command, log, result]})) == []


@pytest.mark.parametrize("stored, expected", [
    ([{"output_type": "stream", "name": "stdout", "text": "right: you predicted 3; this run measured 3 (how many).\n"}], "reveals the answer"),
    ([NONE_YET, {"output_type": "stream", "name": "stdout", "text": "after a README edit, 0 steps ran\n"}], "0 steps ran"),
    ([], "lacks check_prediction's 'No prediction yet' line"),
    ([NONE_YET, {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": "So **3** ran.", "text/plain": "<M>"}}], "So **3** ran."),
])
def test_a_check_output_that_can_give_the_answer_away_is_caught(tmp_path: Path, stored: list, expected: str) -> None:
    found = _all(_write(tmp_path, GOOD, outputs={4: stored}))
    assert any(expected in f for f in found), found


@pytest.mark.parametrize("drop, expected", [
    (0, "the first cell is not markdown"),
    (2, "without an '## Exercise' heading"),
    (3, "assigns `prediction = None`"),
    (4, "calls check_prediction("),
    (5, "no <details> solution"),
    (6, "'## Key points'"),
])
def test_a_missing_part_is_caught(tmp_path: Path, drop: int, expected: str) -> None:
    cells = [c for i, c in enumerate(GOOD) if i != drop]
    assert any(expected in f for f in _all(_write(tmp_path, cells))), _all(_write(tmp_path, cells))


def test_an_exercise_outside_a_step_notebook_has_the_same_form(tmp_path: Path) -> None:
    no_step = [c for i, c in enumerate(GOOD) if i != 1]
    assert _all(_write(tmp_path, no_step, outputs={3: [NONE_YET]})) == []
    broken = [c for i, c in enumerate(no_step) if i != 2]  # no `prediction = None`
    assert any("prediction = None" in f for f in _all(_write(tmp_path, broken)))
    assert exercise_findings(_write(tmp_path, [GOOD[0], GOOD[6]])) == [], "no step, no exercise: nothing required"


def test_a_solution_before_the_check_does_not_count(tmp_path: Path) -> None:
    cells = GOOD[:4] + [GOOD[5], GOOD[4], GOOD[6]]
    assert any("no <details> solution" in f for f in _all(_write(tmp_path, cells)))


def test_first_cell_blocks_and_key_point_count(tmp_path: Path) -> None:
    cells = [("markdown", "# 5 · Probe\n\n**Objectives**\n**Questions**"), ("markdown", "## Key points\n\n- one\n- two")]
    found = _all(_write(tmp_path, cells))
    assert any("the title is" in f for f in found) and any("no **Time:** block" in f for f in found)
    assert any("out of order" in f for f in found) and any("has 2 bullets" in f for f in found)


def test_nbval_comments_and_reasonless_tags_are_caught(tmp_path: Path) -> None:
    cells = [("code", "# NBVAL_IGNORE_OUTPUT\nprint(1)"), ("code", "print(2)")]
    found = _all(_write(tmp_path, cells, metadata={1: {"tags": ["nbval-ignore-output"]}}))
    assert any("NBVAL_" in f for f in found) and any("without a reason" in f for f in found)
    ok = _write(tmp_path, [("code", "print(2)")], metadata={0: {"tags": ["nbval-ignore-output"], "annapurna": {"output_varies": "timings"}}})
    assert nbval_findings(ok) == []


def test_a_questionnaire_is_counted(tmp_path: Path) -> None:
    answer = "<details><summary>Answer</summary>\n\nYes.\n</details>"
    five = "## Questionnaire\n\n" + "\n\n".join(f"{n}. Question {n}?\n\n{answer}" for n in range(1, 6))
    assert questionnaire_findings(_write(tmp_path, [("markdown", five), ("markdown", "## Key points")], name="15_summary.ipynb")) == []
    three = "## Questionnaire\n\n" + "\n\n".join(f"**{n}.** Question {n}?\n\n{answer}" for n in range(1, 4)) + "\n\n**4.** Unanswered?"
    found = [f.found for f in questionnaire_findings(_write(tmp_path, [("markdown", three)], name="15_summary.ipynb"))]
    assert any("3 answers" in f for f in found) and any("4 numbered questions" in f for f in found)
    assert questionnaire_findings(_write(tmp_path, [("markdown", "# 13 · Summary")], name="15_summary.ipynb"))
