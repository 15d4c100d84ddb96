"""Your own Dockerfile beside the steps: measured with the same protocol, and read for the article's lessons.

`measure_dockerfile(path, project=mine)` builds a learner's Dockerfile the way `measure_step` builds
a step (basecamp.measure: cold, code change, dependency change, each verified; size, gzipped size,
downloads), then smoke-tests the image with the project's smoke test. The context is a scratch copy
of the whole project folder as `docker build` would send it (its .dockerignore applied,
`scratch.context_copy`); code and dependency changes edit that copy exactly as they edit a step's.
The measurement is recorded under the key "yours" ("yours-<name>" for `Dockerfile.<name>` or
`<name>.Dockerfile`), so `summary_rows([..., "yours"], project=mine)`, the tables and the charts
show it in the same rows as the steps; its `label` says it is your Dockerfile.

`dockerfile_verdict(path)` reads the Dockerfile itself (basecamp.dockerparse, nothing is built) and
says, for each lesson of the article, whether it is applied, with the line that shows it.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from basecamp import lesson
from basecamp.display import in_kernel
from basecamp.dockerparse import Dockerfile, Instruction, Stage, parse
from basecamp.errors import InputError
from basecamp.measure import (
    SMOKE_SCENARIO,
    _check_repeats,
    _Session,
    check_scenarios,
    default_repeats,
)
from basecamp.project import resolve
from basecamp.runs import SCENARIOS
from basecamp.scratch import context_copy
from basecamp.steps import resolve_file

if TYPE_CHECKING:
    from basecamp.display import BuildDisplay
    from basecamp.measure import Log
    from basecamp.project import Project
    from basecamp.runs import StepMeasurement

#: The key of a learner's Dockerfile in the results file and the tables (the steps' keys start with a digit).
KEY = "yours"
#: Files a "dependencies first" COPY may carry without copying the code.
DEPENDENCY_FILES = ("pyproject.toml", "poetry.lock", "poetry.toml", "uv.lock", "requirements.txt")
#: Words in a runtime base image's name that say it is small.
SLIM_WORDS = ("slim", "distroless", "alpine", "minimal")
_SLUG = re.compile(r"[^a-z0-9._-]+")


def own_key(path: str | Path) -> str:
    """"yours" for a file named Dockerfile; "yours-prod" for Dockerfile.prod or prod.Dockerfile."""
    name = Path(path).name
    low = name.lower()
    if low == "dockerfile":
        return KEY
    stem = name[len("dockerfile."):] if low.startswith("dockerfile.") else \
        name[: -len(".dockerfile")] if low.endswith(".dockerfile") else name
    slug = _SLUG.sub("-", stem.lower()).strip("-._")[:30]
    return f"{KEY}-{slug}" if slug else KEY


def is_own_key(key: str) -> bool:
    """Does `key` name a learner's Dockerfile (not a step)?"""
    return key == KEY or key.startswith(f"{KEY}-")


# ---------------------------------------------------------------------------------------------
# The verdict: which of the article's lessons a Dockerfile applies


@dataclass(frozen=True)
class LessonCheck:
    """One lesson of the article, applied or not, and the Dockerfile line that shows it."""

    key: str
    #: What the lesson is, as the table shows it.
    lesson: str
    #: The step of the series that teaches it ("02", ...).
    step: str
    applied: bool
    #: The 1-based line that shows it (applied: where; not applied: the line that misses it), None when no line does.
    line: int | None
    #: That line's text (first line of the instruction), "" when none.
    text: str
    #: Why, in a few words.
    note: str


@dataclass(frozen=True)
class DockerfileVerdict:
    """Which article lessons a Dockerfile applies, read from the file itself, one entry per lesson."""

    path: str
    #: The stage the verdict reads as the image's (`target`, else the last).
    final_stage: str
    checks: tuple[LessonCheck, ...]

    @property
    def applied(self) -> list[str]:
        return [c.key for c in self.checks if c.applied]

    @property
    def missing(self) -> list[str]:
        return [c.key for c in self.checks if not c.applied]

    def check(self, key: str) -> LessonCheck:
        found = next((c for c in self.checks if c.key == key), None)
        if found is None:
            raise InputError(f"no lesson {key!r}: the lessons are {', '.join(c.key for c in self.checks)}")
        return found

    def lines(self) -> str:
        """Plain text: one line per lesson, `yes`/`no`, the lesson, and the line that shows it."""
        out = [f"{Path(self.path).name}: {len(self.applied)} of {len(self.checks)} lessons applied"]
        for c in self.checks:
            where = f"line {c.line}: {_short(c.text)}" if c.line else "—"
            out.append(f"  {'yes' if c.applied else 'no '}  {c.lesson} (step {c.step}) — {where}; {c.note}")
        return "\n".join(out)

    def markdown(self) -> str:
        """A Markdown table: lesson, applied, the line that shows it, why."""
        intro = (f"**{Path(self.path).name}** applies {len(self.applied)} of the article's {len(self.checks)} "
                 "lessons (read from the file, nothing built):")
        rows = [intro, "",
                "| lesson | step | applied | line | why |", "|---|---|---|---|---|"]
        for c in self.checks:
            code = f"{c.line}: `{_short(c.text).replace('|', chr(92) + '|')}`" if c.line else "—"
            rows.append(f"| {c.lesson} | {c.step} | {'yes' if c.applied else '**no**'} | {code} | {c.note} |")
        return "\n".join(rows)


def _short(text: str, width: int = 70) -> str:
    first = text.strip().splitlines()[0].rstrip("\\ ").strip() if text.strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _commands(run: Instruction) -> list[list[str]]:
    """The shell commands of a RUN, as word lists (split at &&, ||, ;, |)."""
    words = run.words if run.args.startswith("[") else None
    if words is not None:
        return [words]
    lexer = shlex.shlex(run.args, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    try:
        for tok in lexer:
            if tok and set(tok) <= set(";&|"):
                out.append([])
            else:
                out[-1].append(tok)
    except ValueError:  # an unclosed quote: plain words are good enough here
        out = [run.args.split()]
    return [c for c in out if c]


def _is_tool(word: str, tool: str) -> bool:
    return word == tool or word.endswith("/" + tool)


def _tool_commands(run: Instruction, *uses: tuple[str, str]) -> list[list[str]]:
    """The commands of a RUN that call one of `uses` (tool, verb), from the tool's word on (options kept)."""
    found = []
    for cmd in _commands(run):
        for i, word in enumerate(cmd):
            if any(_is_tool(word, tool) and verb in cmd[i + 1:] for tool, verb in uses):
                found.append(cmd[i:])
                break
    return found


def _installs(run: Instruction) -> list[list[str]]:
    """The `poetry install` / `uv sync` commands of a RUN (with their options)."""
    return _tool_commands(run, ("poetry", "install"), ("uv", "sync"))


def _exports(run: Instruction) -> list[list[str]]:
    """The `poetry export` commands of a RUN (requirements written for pip, in a build stage)."""
    return _tool_commands(run, ("poetry", "export"))


def _requirement_installs(run: Instruction) -> list[list[str]]:
    """The `pip install -r <file>` commands of a RUN (`pip3`, `python -m pip` too): dependencies, not the project."""
    return [cmd for cmd in _tool_commands(run, ("pip", "install"), ("pip3", "install"))
            if "-r" in cmd or any(w.startswith(("--requirement", "-r")) for w in cmd[1:])]


def _option(cmd: list[str], name: str) -> list[str]:
    """Values of `--name value` / `--name=value` in a command, commas split."""
    values: list[str] = []
    for i, word in enumerate(cmd):
        if word == name and i + 1 < len(cmd):
            values += cmd[i + 1].split(",")
        elif word.startswith(name + "="):
            values += word.split("=", 1)[1].split(",")
    return values


def _main_only(cmd: list[str]) -> bool:
    return "dev" in _option(cmd, "--without") or _option(cmd, "--only") == ["main"] or "--no-dev" in cmd


def _no_root(cmd: list[str]) -> bool:
    return "--no-root" in cmd or "--no-install-project" in cmd


def _cleans_cache(run: Instruction) -> bool:
    """The RUN also deletes a cache (`rm -rf $POETRY_CACHE_DIR`, `poetry cache clear`), or installs without one."""
    for cmd in _commands(run):
        if cmd and cmd[0] == "rm" and any("cache" in w.lower() for w in cmd[1:] if not w.startswith("-")):
            return True
        if any(_is_tool(w, "poetry") for w in cmd) and ("cache" in cmd and "clear" in cmd or "--no-cache" in cmd):
            return True
    return False


def _is_dependency_file(source: str) -> bool:
    """pyproject.toml, poetry.lock... or a pattern that only matches such files (`poetry.lock*`), or a README."""
    name = Path(source).name
    if name.upper().startswith("README"):
        return True
    # a pattern that also matches code (`*`, `*.py`, `src*`) copies code
    return any(fnmatch.fnmatchcase(dep, name) for dep in DEPENDENCY_FILES) and \
        not any(fnmatch.fnmatchcase(code, name) for code in ("main.py", "app", "src"))


def _no_pip_cache_env(df: Dockerfile) -> bool:
    """PIP_NO_CACHE_DIR set (ENV/ARG): pip keeps no download cache."""
    return any(i.keyword in ("ENV", "ARG") and re.search(r"\bPIP_NO_CACHE_DIR[= ]\s*(1|true|on|yes)\b", i.args, re.IGNORECASE)
               for i in df.instructions)


def _is_code_copy(ins: Instruction) -> bool:
    sources = ins.sources
    return bool(sources) and any(s == "." or not _is_dependency_file(s) for s in sources or [])


def _check(key: str, lesson: str, step: str, applied: bool, ins: Instruction | None, note: str) -> LessonCheck:
    return LessonCheck(key=key, lesson=lesson, step=step, applied=applied, line=ins.line if ins else None,
                       text=ins.text if ins else "", note=note)


def _pinned(df: Dockerfile) -> LessonCheck:
    title = "Poetry pinned to one version"
    pinned = re.compile(r"^(poetry|uv)(\[[^\]]*\])?==\S+$")
    loose = None
    for ins in df.instructions:
        if ins.keyword in ("ENV", "ARG") and re.search(r"\bPOETRY_VERSION[= ]\s*\S", ins.args):
            return _check("pinned-poetry", title, "02", True, ins, "POETRY_VERSION set: the installer takes that one")
        if ins.keyword != "RUN":
            continue
        for cmd in _commands(ins):
            if any(pinned.match(w) for w in cmd):
                return _check("pinned-poetry", title, "02", True, ins, "an exact version: every build gets the same tool")
            if "install" in cmd and any(w in ("poetry", "uv") or w.startswith(("poetry>", "poetry<", "poetry~")) for w in cmd):
                loose = loose or ins
    if loose is not None:
        return _check("pinned-poetry", title, "02", False, loose, "no exact version: a new release changes the build")
    return _check("pinned-poetry", title, "02", False, None, "no Poetry install found")


def dockerfile_verdict(path: str | Path, *, target: str | None = None, text: str | None = None) -> DockerfileVerdict:
    """Which of the article's lessons the Dockerfile at `path` applies, each with the line that shows it.

    `target`: the stage built (default: the last). `text`: the Dockerfile's text when it is not in a file.
    Lessons: Poetry pinned; main dependencies only (`--without dev` / `--only main`); Poetry's cache cleaned
    in the same RUN as the install (or kept in a cache mount); dependencies installed (`--no-root`) before
    the code is copied; multi-stage with a slim runtime; a BuildKit cache mount; a non-root USER at the end.
    """
    if text is None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputError(f"{file}: no such Dockerfile (pass the path to your Dockerfile)")
        text = file.read_text()
    df = parse(text)
    final = df.stage(target)
    if final is None:
        raise InputError(f"{path}: " + (f"no stage named {target!r}" if target else "no FROM line"))
    runs = [i for i in df.instructions if i.keyword == "RUN"]
    facts = _Facts(df, runs, [(i, cmd) for i in runs for cmd in _installs(i)])
    checks = [_pinned(df), _main_only_check(facts), _cache_check(facts), _deps_check(facts),
              _multi_stage_check(df, final), _cache_mount_check(runs), _non_root_check(final)]
    return DockerfileVerdict(path=str(path), final_stage=final.name or f"stage {final.index}", checks=tuple(checks))


@dataclass(frozen=True)
class _Facts:
    """What several lessons look at: the Dockerfile, its RUNs, and the install commands in them."""

    df: Dockerfile
    runs: list[Instruction]
    #: (RUN, command) of every `poetry install` / `uv sync` / ... (basecamp.yours._installs).
    installs: list[tuple[Instruction, list[str]]]

    @property
    def first_install(self) -> Instruction | None:
        return self.installs[0][0] if self.installs else None


def _main_only_check(facts: _Facts) -> LessonCheck:
    installs, first_install = facts.installs, facts.first_install
    main = next((i for i, cmd in installs if _main_only(cmd)), None)
    exports = [(i, cmd) for i in facts.runs for cmd in _exports(i)]
    exported = next(((i, cmd) for i, cmd in exports if _main_only(cmd)), None)
    if main is None and not installs and exported is not None:
        added = _option(exported[1], "--with")
        return _check("main-only", "only the main dependencies (--without dev / --only main)", "02", True,
                      exported[0], "`poetry export` leaves the dev tools out of the requirements pip installs"
                      + (f" (main + {', '.join(added)})" if added else ""))
    return _check(
        "main-only", "only the main dependencies (--without dev / --only main)", "02", main is not None,
        main or first_install or (exports[0][0] if exports else None), "dev tools stay out of the image" if main else
        "the install takes every group, dev tools included" if installs else
        "`poetry export` takes every group, dev tools included" if exports else "no `poetry install` found")


def _cache_check(facts: _Facts) -> LessonCheck:
    installs, first_install, runs = facts.installs, facts.first_install, facts.runs
    cleaned = next((i for i, _ in installs if _cleans_cache(i) or any(m.type == "cache" for m in i.mounts)), None)
    later_rm = next((i for i in runs if first_install and i.line > first_install.line and _cleans_cache(i)
                     and not _installs(i)), None)
    pips = [(i, cmd) for i in runs for cmd in _requirement_installs(i)]
    if not installs and pips:  # no Poetry in the image: pip installs the exported requirements
        cached = next((i for i, cmd in pips if "--no-cache-dir" not in cmd and
                       not any(m.type == "cache" for m in i.mounts) and not _no_pip_cache_env(facts.df)), None)
        return _check(
            "cache-cleaned", "Poetry's cache cleaned in the same RUN (or a cache mount)", "03", cached is None,
            cached or pips[0][0], "no Poetry install here: pip installs the requirements without writing its "
            "download cache to a layer (--no-cache-dir)" if cached is None else
            "no Poetry install here, but pip keeps its download cache in the layer (add --no-cache-dir)")
    return _check(
        "cache-cleaned", "Poetry's cache cleaned in the same RUN (or a cache mount)", "03", cleaned is not None,
        cleaned or later_rm or first_install,
        ("kept in a cache mount, never in a layer" if any(m.type == "cache" for m in cleaned.mounts)
         else "deleted before the layer is written") if cleaned else
        "deleted in a later RUN: the install's layer still holds it (step 3b)" if later_rm else
        "the download cache stays in the image" if installs else "no `poetry install` found")


def _deps_check(facts: _Facts) -> LessonCheck:
    code_copies = [i for i in facts.df.instructions if _is_code_copy(i)]
    first_code = code_copies[0] if code_copies else None
    # an install without the project: `poetry install --no-root`, `uv sync --no-install-project`, `pip install -r`
    deps = min((i for i in [*(i for i, cmd in facts.installs if _no_root(cmd)),
                            *(i for i in facts.runs if _requirement_installs(i))]), key=lambda i: i.line, default=None)
    early = deps is not None and first_code is not None and first_code.line > deps.line
    return _check(
        "deps-before-code", "dependencies installed before the code is copied", "04", early,
        deps if early else first_code or facts.first_install,
        f"a code edit reuses the install (the code comes at line {first_code.line})" if early and first_code else
        "the code is copied before the dependencies are installed: a code edit re-runs the install"
        if first_code and (deps is None or first_code.line < deps.line) else "no install without the project found")


def _multi_stage_check(df: Dockerfile, final: Stage) -> LessonCheck:
    base = df.resolved_base(final)
    from_ins = next(i for i in final.instructions if i.keyword == "FROM")
    slim = any(w in base.lower() for w in SLIM_WORDS) or base.lower() == "scratch"
    multi = len(df.stages) > 1
    return _check(
        "multi-stage", "multi-stage, slim runtime", "05", multi and slim, from_ins,
        f"the runtime starts from {base}, the build tools stay behind" if multi and slim else
        f"one stage: Poetry and whatever the install needed ship in the image ({base})" if not multi else
        f"several stages, but the runtime starts from {base}, not a slim image")


def _cache_mount_check(runs: list[Instruction]) -> LessonCheck:
    mount = next((i for i in runs if any(m.type == "cache" for m in i.mounts)), None)
    return _check("cache-mount", "BuildKit cache mount", "06", mount is not None, mount,
                  "downloads survive a dependency change" if mount else
                  "a dependency change downloads every package again")


def _non_root_check(final: Stage) -> LessonCheck:
    user = next((i for i in reversed(final.instructions) if i.keyword == "USER"), None)
    name = user.args.split(":", 1)[0].strip() if user else ""
    non_root = user is not None and name not in ("", "root", "0")
    return _check("non-root", "non-root USER in the final stage", "05", non_root, user,
                  f"the app runs as {name}" if non_root else "the app runs as root")


def show_verdict(verdict: DockerfileVerdict) -> None:
    """The verdict as a table in a notebook (plain lines in a terminal)."""
    lesson.say(verdict.markdown()) if in_kernel() else print(verdict.lines())


# ---------------------------------------------------------------------------------------------
# Measuring it


def measure_dockerfile(
    path: str | Path,
    project: Project | None = None,
    *,
    scenarios: Sequence[str] | None = None,
    repeats: int | None = None,
    target: str | None = None,
    name: str | None = None,
    smoke: bool = True,
    display: BuildDisplay | str | None = None,
    log: Log | None = print,
) -> StepMeasurement:
    """Measure your own Dockerfile with the steps' protocol (basecamp.measure) and smoke-test its image.

    `project` (basecamp.use_project): the project the Dockerfile builds; its folder is the context
    (default: this repo's app). `scenarios` / `repeats`: as for measure_step (default: all, and
    $ANNAPURNA_REPEATS or 2). `target`: the stage to build (default: the last, as `docker build`).
    `name`: the key in the tables (default from the file name: "yours", "yours-prod"). `smoke`: run
    the project's smoke test on the image (recorded; a failure is reported, not raised).
    Returns a StepMeasurement like a step's; `summary_rows([..., key], project=...)` shows it beside the steps.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise InputError(f"{file}: no such Dockerfile (pass the path to your Dockerfile)")
    project = resolve(project)
    key = own_key(file) if name is None else name
    if not is_own_key(key) or _SLUG.sub("-", key) != key:
        raise InputError(f"name {key!r}: start it with {KEY!r} and use lower-case letters, digits, '.', '_' "
                         f"or '-' (e.g. '{KEY}-prod'), so it never takes a step's place")
    wanted = check_scenarios(scenarios or SCENARIOS)
    n = default_repeats() if repeats is None else _check_repeats(repeats)
    resolved = resolve_file(file, key, target, project=project)  # read and parsed once; InputError: no such stage
    app = context_copy(f"measure-{key}", project, file)
    say: Log = log or (lambda _msg: None)
    session = _Session(key, file, app, target, display, say, None, project, source=str(file),
                       missing_base="pull or build it first", resolved=resolved)
    runs = session.protocol(wanted, n)
    smoke_ok: bool | None = None
    if smoke:
        assert session.image is not None and session.image_build is not None
        result = project.smoke_test(session.image.ref)
        smoke_ok = bool(result.ok)
        session.record(SMOKE_SCENARIO, None, session.image_build, size=None, ok=smoke_ok, note=result.summary())
        say(f"{key}: smoke test {'passed' if smoke_ok else 'FAILED'}: {result.summary()}")
    return session.finish(runs, n, smoke_ok)
