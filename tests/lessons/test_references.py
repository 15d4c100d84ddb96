"""Every reference points at something that exists: notebooks, Dockerfiles, steps, sections.

Checked in every notebook (markdown cells and the string literals of code cells), README.md, docs/*.md
and notebooks/*.md: `NN_name.ipynb` file names, `dockerfiles/...Dockerfile` paths and bare
`NN-name.Dockerfile` names, "notebook NN" / "notebooks NN, MM and KK", "step N" / "step 3b" (a step
Dockerfile dockerfiles/NN-*.Dockerfile must exist), step ids given to calls such as
`bc.measure_step("08")`, and relative markdown links `[text](target#anchor)`: the file must exist and
the anchor must be a heading of the target (GitHub's slug rules) or an explicit `<a id=...>`.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbscan
import pytest


def _fail_on(found: list[nbscan.Finding]) -> None:
    if found:
        pytest.fail(nbscan.report(found, "references to something that does not exist"), pytrace=False)


@pytest.mark.parametrize("path", nbscan.notebook_paths(), ids=lambda p: p.name)
def test_a_notebook_refers_only_to_what_exists(path: Path) -> None:
    _fail_on(nbscan.notebook_reference_findings(path))


@pytest.mark.parametrize("path", nbscan.documents(), ids=lambda p: str(p.relative_to(nbscan.ROOT)))
def test_a_document_refers_only_to_what_exists(path: Path) -> None:
    _fail_on(nbscan.document_reference_findings(path))


# ---------------------------------------------------------------- the checker itself, on a tiny tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "dockerfiles" / "extras").mkdir(parents=True)
    for name in ("01-naive", "03-poetry-cache", "03b-cache-deleted-later", "08-uv"):
        (tmp_path / "dockerfiles" / f"{name}.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "dockerfiles" / "extras" / "12-ci-runner.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "glossary.md").write_text("# Glossary\n\n## Cache mount\n\n## Stand-in\n\n<a id=\"cold\"></a>\n")
    _write_nb(tmp_path / "notebooks" / "01_naive.ipynb", [("markdown", "# 01 · Naive\n\n## Build it, live — and measure it")])
    _write_nb(tmp_path / "notebooks" / "15_summary.ipynb", [("markdown", "# 15 · Summary")])
    return tmp_path


def _write_nb(path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = {"cells": [{"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": text,
                     **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                    for i, (kind, text) in enumerate(cells)],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _found(tree: Path, *cells: tuple[str, str]) -> list[str]:
    path = _write_nb(tree / "notebooks" / "02_probe.ipynb", list(cells))
    return [f.found for f in nbscan.notebook_reference_findings(path, root=tree)]


def test_good_references_pass(tree: Path) -> None:
    prose = ("See `15_summary.ipynb`, notebooks 01, 02 and 15, notebook 15, steps 1–3 and step 3b, "
             "`dockerfiles/08-uv.Dockerfile`, `12-ci-runner.Dockerfile`, "
             "[a mount](glossary.md#cache-mount), [cold](glossary.md#cold), "
             "[the build](01_naive.ipynb#build-it-live--and-measure-it), [above](#a-section), "
             "[docs](https://docs.docker.com/#nowhere).")
    assert _found(tree, ("markdown", "# 02 · Probe\n\n## A section"), ("markdown", prose),
                  ("code", 'bc.measure_step("08")\nprint("step 8 is uv; see 01_naive.ipynb")')) == []


@pytest.mark.parametrize("text, expected", [
    ("`07_summary.ipynb` puts them side by side", "07_summary.ipynb"),
    ("built from `dockerfiles/09-uv.Dockerfile`", "dockerfiles/09-uv.Dockerfile"),
    ("built from `10-hardened-runtime.Dockerfile`", "10-hardened-runtime.Dockerfile"),
    ("notebooks 01, 07 and 13", "notebook 07"),
    ("as notebook 14 shows", "notebook 14"),
    ("measured against step 9", "step 9"),
    ("unlike step 4b", "step 4b"),
    ("steps 08–10 go beyond the article", "step 10"),
    ("a [mount](glossary.md#cache-mounts)", "#cache-mounts"),
    ("the [guide](../docs/instructor-guide.md)", "does not exist"),
    ("[back up](#no-such-section)", "#no-such-section"),
])
def test_a_broken_reference_in_markdown_is_caught(tree: Path, text: str, expected: str) -> None:
    found = _found(tree, ("markdown", "# 02 · Probe"), ("markdown", text))
    assert any(expected in f for f in found), (text, found)


def test_references_in_code_strings_and_step_ids_are_caught(tree: Path) -> None:
    found = _found(tree, ("code", 'bc.measure_step("09")\nbc.say(f"see [it]({x}glossary.md#nope) and 07_summary.ipynb")'))
    assert any("measure_step('09')" in f for f in found), found
    assert any("07_summary.ipynb" in f for f in found), found


def test_a_literal_without_spaces_is_a_value_not_a_reference(tree: Path) -> None:
    assert _found(tree, ("code", 'p = tmp / "07-exercise.Dockerfile"\np.write_text("FROM scratch")')) == []


def test_a_shell_regex_in_a_code_string_is_not_a_link(tree: Path) -> None:
    code = 'sh = r"""grep -E \'^(virtualenvs[.](create|in-project)) \' x"""'
    assert _found(tree, ("code", code)) == []


def test_fenced_code_in_a_document_is_not_a_reference(tree: Path) -> None:
    doc = tree / "notebooks" / "notes.md"
    doc.write_text("```\nsee 07_summary.ipynb\n```\n\nBut [this](missing.md) is.\n\n`[shown](as-code.md)`\n")
    found = nbscan.document_reference_findings(doc, root=tree)
    assert [f.where for f in found] == ["notebooks/notes.md line 5"], found


@pytest.mark.parametrize("heading, slug", [
    ("Build it, live — and measure it", "build-it-live--and-measure-it"),
    ("The build context: what `COPY . .` really sends", "the-build-context-what-copy---really-sends"),
    ("Exercise: no `--locked`", "exercise-no---locked"),
    ("Cached and ran", "cached-and-ran"),
    ("[Stand-in](x.md) images", "stand-in-images"),
])
def test_github_slugs(heading: str, slug: str) -> None:
    assert nbscan.github_slug(heading) == slug


def test_repeated_headings_get_numbered_anchors() -> None:
    assert {"key-points", "key-points-1"} <= nbscan.anchors_of_text("## Key points\n\n## Key points\n")
