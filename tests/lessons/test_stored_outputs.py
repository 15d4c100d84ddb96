"""Stored outputs stay short: no cell keeps more than 25 lines of text (docs/lesson-style.md, 'Outputs').

Counted: stream text (stdout and stderr) and the text/plain of display_data and execute_result. A
build's full BuildKit log belongs in the collapsed HTML the lab's build display stores, not in text.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbscan
import pytest

MAX_LINES = 25


def long_output_findings(path: Path, limit: int = MAX_LINES) -> list[nbscan.Finding]:
    out = []
    for i, cell in nbscan.cells(nbscan.load(path), "code"):
        n = nbscan.text_output_lines(cell)
        if n > limit:
            first = nbscan.source(cell).strip().split("\n")[0][:80]
            out.append(nbscan.Finding(nbscan.where(path, i), f"{n} lines of stored text output (at most {limit}); the cell starts: {first}",
                                      "show a summary line per build and the result table; put long logs in the lab's collapsed "
                                      "display (the build helpers' default), or print less — then re-execute the notebook"))
    return out


@pytest.mark.parametrize("path", nbscan.notebook_paths(), ids=lambda p: p.name)
def test_no_cell_stores_more_than_25_lines_of_text(path: Path) -> None:
    found = long_output_findings(path)
    if found:
        pytest.fail(nbscan.report(found, "cells with long stored text outputs"), pytrace=False)


def _nb(tmp_path: Path, outputs: list[dict]) -> Path:
    nb = {"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# 99 · x"},
                    {"cell_type": "code", "id": "c", "metadata": {}, "source": "build()", "execution_count": 1,
                     "outputs": outputs}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_probe.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_stream_chunks_and_plain_text_are_counted_together(tmp_path: Path) -> None:
    outputs = [{"output_type": "stream", "name": "stdout", "text": ["line\n"] * 10 + ["half a "]},
               {"output_type": "stream", "name": "stdout", "text": "line\n" + "line\n" * 9},
               {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "a\nb\nc\nd\ne\nf", "text/html": "<p>" + "x<br>\n" * 99}}]
    path = _nb(tmp_path, outputs)
    assert nbscan.text_output_lines(json.loads(path.read_text())["cells"][1]) == 26  # 10 + (1 joined) + 9 + 6; HTML not counted
    found = long_output_findings(path)
    assert [f.where for f in found] == ["99_probe.ipynb cell 1"] and "26 lines" in found[0].found


def test_25_lines_pass(tmp_path: Path) -> None:
    outputs = [{"output_type": "stream", "name": "stdout", "text": "line\n" * 20},
               {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "1\n2\n3\n4\n5"}}]
    assert long_output_findings(_nb(tmp_path, outputs)) == []
