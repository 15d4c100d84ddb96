"""hadolint on the Dockerfiles: parsing, ignore pragmas and their justification, and the repo's own files."""

from __future__ import annotations

import stat

import pytest
from basecamp import config, lint
from basecamp.errors import CommandError

REPORTS = lint.lint_dockerfiles()


def test_parse_findings_reads_hadolints_json() -> None:
    text = ('[{"code":"DL3042","column":1,"file":"x.Dockerfile","level":"warning","line":14,'
            '"message":"Avoid use of cache directory with pip."}]')
    assert lint.parse_findings(text) == [lint.Finding("x.Dockerfile", 14, 1, "DL3042", "warning",
                                                      "Avoid use of cache directory with pip.")]
    assert lint.parse_findings("") == []
    with pytest.raises(CommandError, match="not hadolint's JSON"):
        lint.parse_findings("Segmentation fault")


def test_a_failing_hadolint_is_a_command_error(tmp_path) -> None:
    fake = tmp_path / "hadolint"
    fake.write_text("#!/bin/sh\necho 'hadolint: cannot read the file' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(CommandError, match=r"(?s)exited with 3.*cannot read the file"):
        lint.hadolint([tmp_path / "Dockerfile"], binary=str(fake))
    with pytest.raises(CommandError):
        lint.hadolint([tmp_path / "missing.Dockerfile"])  # the real one: a missing file is its failure


def test_real_hadolint_finds_and_obeys_ignore_pragmas(tmp_path) -> None:
    path = tmp_path / "x.Dockerfile"
    path.write_text("FROM python:3.11-slim-bookworm\nRUN pip install poetry==2.5.1\n"
                    "WORKDIR /app\n# DL3042: justified here\n# hadolint ignore=DL3042\nRUN pip install black==24.1.0\n")
    found = lint.hadolint([path])
    assert [(f.code, f.line) for f in found] == [("DL3042", 2)]


def test_ignores_need_a_comment_above_that_names_each_rule() -> None:
    text = ("# why the RUN\n# DL3042: pip's cache stays in the builder stage.\n# hadolint ignore=DL3042\nRUN x\n"
            "# why\n# hadolint ignore=DL3013,DL3042\nRUN y\n"
            "# hadolint ignore=DL3059\nRUN z\n")
    first, second, third = lint.find_ignores(text, "f")
    assert first.codes == ("DL3042",) and first.line == 3 and first.justified
    assert second.codes == ("DL3013", "DL3042") and not second.justified, "'# why' names neither rule"
    assert third.justification == "" and not third.justified


def test_final_means_step_five_and_later() -> None:
    assert lint.is_final(config.DOCKERFILES_DIR / "05-multi-stage.Dockerfile")
    assert not lint.is_final(config.DOCKERFILES_DIR / "03b-cache-deleted-later.Dockerfile")
    assert not lint.is_final(config.DOCKERFILES_DIR / "extras" / "09-x.Dockerfile")


def test_every_dockerfile_is_linted() -> None:
    lessons = [p for p in sorted(config.DOCKERFILES_DIR.rglob("*.Dockerfile")) if p.parent.name != "bases"]
    assert [r.path for r in REPORTS] == [p.resolve() for p in lessons]
    assert any(r.final for r in REPORTS) and any(not r.final for r in REPORTS)


@pytest.mark.parametrize("report", REPORTS, ids=[r.name for r in REPORTS])
def test_final_dockerfiles_are_clean_and_every_ignore_is_justified(report) -> None:
    """CI fails here when a Dockerfile regresses: fix the finding, or ignore it with a reason above the pragma."""
    assert report.problems == []


def test_every_rule_the_dockerfiles_break_is_explained() -> None:
    seen = {f.code for r in REPORTS for f in r.findings} | {c for r in REPORTS for ig in r.ignores for c in ig.codes}
    assert seen, "the early steps keep findings on purpose"
    assert {code for code in seen if not lint.explain_rule(code)} == set(), "add them to basecamp.lint.RULES"


def test_format_rows_makes_one_line_per_finding() -> None:
    rows = lint.findings_rows(REPORTS)
    text = lint.format_rows(rows)
    assert len(text.splitlines()) == len(rows) + 2
    assert sum(len(r.findings) for r in REPORTS) == sum(1 for r in rows if r["rule"] != "—")


def test_format_report_folds_the_clean_files_that_are_not_final() -> None:
    reports = [
        lint.LintReport(path=config.DOCKERFILES_DIR / "05-multi-stage.Dockerfile", final=True),
        lint.LintReport(path=config.DOCKERFILES_DIR / "extras" / "a.Dockerfile", final=False),
        lint.LintReport(path=config.DOCKERFILES_DIR / "extras" / "b.Dockerfile", final=False),
    ]
    text = lint.format_report(reports)
    assert "05-multi-stage.Dockerfile" in text.splitlines()[2]
    assert text.splitlines()[-1] == "clean, not final (2): extras/a.Dockerfile, extras/b.Dockerfile"
    assert len(text.splitlines()) == 4
