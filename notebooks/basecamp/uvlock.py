"""uv in the lab: its lock file, derived from Poetry's.

Step 8 installs the app's dependencies with uv, from a uv.lock. The lab does not keep a second
lock in the checkout (uv.lock records the index URL of every package, and the checkout never names
an index): it derives one in each scratch copy that a uv step builds, from the copy's own
pyproject.toml ([project] dependencies, the ones Poetry locks), with every version constrained to
the one poetry.lock pins. The constraints go into the copy's pyproject.toml as
`[tool.uv] constraint-dependencies` (between two marker comments), so `uv sync --locked` in the
image sees the same manifest the lock was made from. `lock()` then checks that every package both
locks name has the same version in both.

What `uv sync` did in a build is read by basecamp.installer (`sync_report`), beside Poetry's installer.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp.errors import InputError, LabError
from basecamp.index import has_credentials, index_settings, redact, run_lock
from basecamp.installer import SYNC_MATCH

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.index import IndexSettings
    from basecamp.runs import StepMeasurement
    from basecamp.scratch import Scratch

UV_LOCK = "uv.lock"
#: The Poetry group whose pins constrain uv's lock: the app's runtime dependencies.
MAIN_GROUP = "main"
BLOCK_BEGIN = "# annapurna-lab: uv constraints from poetry.lock (generated, begin)"
BLOCK_END = "# annapurna-lab: uv constraints from poetry.lock (generated, end)"
#: What a step's install instruction contains when uv does the installing.
_COPY_UV_LOCK = re.compile(r"^\s*(?:COPY|ADD)\s(?!.*--from)[^\n]*\buv\.lock\b", re.IGNORECASE | re.MULTILINE)


def normalize(name: str) -> str:
    """PEP 503 name: "Typing_Extensions" -> "typing-extensions"."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _toml(text: str, what: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{what} is not valid TOML: {exc}") from exc


def poetry_pins(lock_text: str, group: str = MAIN_GROUP) -> dict[str, str]:
    """{name: version} of the packages poetry.lock pins for `group` (names normalised)."""
    packages = _toml(lock_text, "poetry.lock").get("package", [])
    assert isinstance(packages, list)
    return {normalize(str(p["name"])): str(p["version"]) for p in packages
            if group in p.get("groups", [group])}


def uv_pins(lock_text: str) -> dict[str, str]:
    """{name: version} of the packages uv.lock pins from an index (the project itself left out)."""
    packages = _toml(lock_text, "uv.lock").get("package", [])
    assert isinstance(packages, list)
    return {normalize(str(p["name"])): str(p["version"]) for p in packages
            if "registry" in p.get("source", {})}


def constraints_block(pins: dict[str, str]) -> str:
    """The `[tool.uv]` table (between marker comments) that pins every package to `pins`."""
    lines = "".join(f'    "{name}=={version}",\n' for name, version in sorted(pins.items()))
    return f"{BLOCK_BEGIN}\n[tool.uv]\nconstraint-dependencies = [\n{lines}]\n{BLOCK_END}\n"


def with_constraints(pyproject_text: str, pins: dict[str, str]) -> str:
    """`pyproject_text` with the lab's constraints block replaced (or appended at the end)."""
    if "[tool.uv]" in _strip_block(pyproject_text):
        raise InputError("pyproject.toml already has a [tool.uv] table: the lab will not merge its constraints into it")
    text = _strip_block(pyproject_text)
    return text + ("" if text.endswith("\n") else "\n") + "\n" + constraints_block(pins)


def _strip_block(text: str) -> str:
    begin, end = text.find(BLOCK_BEGIN), text.find(BLOCK_END)
    if begin < 0 or end < begin:
        return text
    return text[:begin].rstrip("\n") + "\n" + text[end + len(BLOCK_END):].lstrip("\n")


@dataclass
class LockComparison:
    """The versions poetry.lock (main group) and uv.lock pin, side by side."""

    poetry: dict[str, str]
    uv: dict[str, str]

    @property
    def common(self) -> list[str]:
        return sorted(set(self.poetry) & set(self.uv))

    @property
    def mismatched(self) -> dict[str, tuple[str, str]]:
        """{name: (poetry version, uv version)} for the packages both pin, at different versions."""
        return {n: (self.poetry[n], self.uv[n]) for n in self.common if self.poetry[n] != self.uv[n]}

    @property
    def only_uv(self) -> list[str]:
        return sorted(set(self.uv) - set(self.poetry))

    @property
    def only_poetry(self) -> list[str]:
        return sorted(set(self.poetry) - set(self.uv))

    def summary(self) -> str:
        same = len(self.common) - len(self.mismatched)
        return (f"{same} of {len(self.common)} packages at the same version in poetry.lock and uv.lock"
                + (f"; only in uv.lock: {', '.join(self.only_uv)}" if self.only_uv else "")
                + (f"; only in poetry.lock: {', '.join(self.only_poetry)}" if self.only_poetry else ""))


def compare(project: Path) -> LockComparison:
    """poetry.lock's main-group pins vs uv.lock's, in `project`."""
    for name in ("poetry.lock", UV_LOCK):
        if not (project / name).is_file():
            raise InputError(f"{project} has no {name} to compare")
    return LockComparison(poetry_pins((project / "poetry.lock").read_text()),
                          uv_pins((project / UV_LOCK).read_text()))


def find_uv() -> Path:
    """The host's uv: the one next to this Python (the lab group's), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return beside
    found = shutil.which("uv")
    if found is None:
        raise LabError("uv is not installed here: run `./lab prepare` (the lab group installs it)")
    return Path(found)


def uv_env(settings: IndexSettings | None = None) -> dict[str, str]:
    """What uv needs on this host to reach the index: pip's index (unless it is the default) and CA bundle."""

    settings = settings or index_settings()
    env = {"UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    if not settings.is_default:
        if has_credentials(settings.url):
            raise InputError(f"the index URL {redact(settings.url)} carries credentials: uv.lock would record "
                             "them; give the lab a URL without credentials")
        env["UV_DEFAULT_INDEX"] = settings.url
    if settings.ca_bundle is not None:
        env["SSL_CERT_FILE"] = str(settings.ca_bundle)
    return env


def lock(project: Path) -> LockComparison:
    """Derive `project`'s uv.lock from its pyproject.toml, constrained to poetry.lock's pins; check them.

    Writes the constraints block into pyproject.toml, runs `uv lock` with the host's uv, and
    raises LabError when a package both locks pin ends up at a different version.
    """
    pyproject, poetry_lock = project / "pyproject.toml", project / "poetry.lock"
    if not pyproject.is_file() or not poetry_lock.is_file():
        raise InputError(f"{project} needs pyproject.toml and poetry.lock to derive a uv.lock")
    pins = poetry_pins(poetry_lock.read_text())
    pyproject.write_text(with_constraints(pyproject.read_text(), pins))

    cmd = [str(find_uv()), "lock", "--directory", str(project)]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("UV_")}, **uv_env()}
    run_lock(cmd, env, 300, "the lab derives uv.lock from poetry.lock's pins")
    result = compare(project)
    if result.mismatched:
        raise LabError(f"uv.lock and poetry.lock disagree in {project}: "
                       + ", ".join(f"{n} {p} (Poetry) vs {u} (uv)" for n, (p, u) in result.mismatched.items()))
    return result


def needs_uv_lock(dockerfile_text: str) -> bool:
    """True when the Dockerfile copies a uv.lock from the build context."""
    return _COPY_UV_LOCK.search(dockerfile_text) is not None


def prepare_context(app: Scratch, dockerfile: Path, text: str | None = None) -> LockComparison | None:
    """Give the scratch copy a uv.lock when the Dockerfile copies one and the copy has none yet.

    `text`: the Dockerfile's text when the caller has read it already (basecamp.steps.ResolvedStep).
    """
    if not needs_uv_lock(dockerfile.read_text() if text is None else text) or (app.path / UV_LOCK).is_file():
        return None
    return lock(app.path)




def install_step_seconds(build: BuildResult) -> float | None:
    """How long the build's dependency-install step ran (`poetry install` or `uv sync`); None when cached."""
    for s in build.steps:
        if s.keyword == "RUN" and ("poetry install" in s.instruction or SYNC_MATCH in s.instruction):
            return s.duration_s if s.status == "done" else None
    raise InputError(f"{build.tag} has no `poetry install` or `uv sync` step")


# ---------------------------------------------------------------------------------------------
# Step 6 (Poetry) and step 8 (uv) side by side


@dataclass
class ComparisonRow:
    """One scenario (or the image) measured for two steps: medians, spread, and b / a."""

    what: str
    a: float | None
    b: float | None
    a_range: str = ""
    b_range: str = ""
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        """b / a, None when either is unknown or a is 0."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a


def _median(values: list[float | None]) -> float | None:
    import statistics

    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None


def _range(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):.1f}–{max(known):.1f}" if len(known) > 1 else ""


def compare_steps(a: StepMeasurement, b: StepMeasurement) -> list[ComparisonRow]:
    """Per scenario: build wall time and install-step time (medians, min–max); downloads; image size."""
    rows: list[ComparisonRow] = []
    for scenario in a.scenarios:  # in the protocol's order
        sa, sb = a.scenarios.get(scenario), b.scenarios.get(scenario)
        if sa is None or sb is None:
            continue
        wa, wb = [r.wall_s for r in sa.runs], [r.wall_s for r in sb.runs]
        rows.append(ComparisonRow(f"{scenario}: build", _median(list(wa)), _median(list(wb)),
                                  _range(list(wa)), _range(list(wb))))
        ia = [install_step_seconds(r.build) if r.build is not None else None for r in sa.runs]
        ib = [install_step_seconds(r.build) if r.build is not None else None for r in sb.runs]
        if any(v is not None for v in ia + ib):
            rows.append(ComparisonRow(f"{scenario}: install step", _median(ia), _median(ib), _range(ia), _range(ib)))
        da = [float(r.downloads) if r.downloads is not None else None for r in sa.runs]
        db = [float(r.downloads) if r.downloads is not None else None for r in sb.runs]
        rows.append(ComparisonRow(f"{scenario}: downloads", _median(da), _median(db), unit="packages"))
    rows.append(ComparisonRow("image size", a.image.size_bytes / 1e6, b.image.size_bytes / 1e6, unit="MB"))
    return rows


def format_comparison(rows: list[ComparisonRow], a: str = "step 6", b: str = "step 8") -> str:
    """A plain-text table of compare_steps() rows: medians, (min–max), and the ratio b / a."""
    def cell(value: float | None, spread: str) -> str:
        text = "?" if value is None else f"{value:.1f}"
        return f"{text} ({spread})" if spread else text

    body = [["", f"{a}", f"{b}", f"{b} / {a}", "unit"]]
    for r in rows:
        body.append([r.what, cell(r.a, r.a_range), cell(r.b, r.b_range),
                     "-" if r.ratio is None else f"{r.ratio:.2f}", r.unit])
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body)


def plot_comparison(rows: list[ComparisonRow], a: str = "step 6 (Poetry)", b: str = "step 8 (uv)") -> Any:
    """Grouped bars of the time rows (seconds) of compare_steps(): a beside b."""
    import plotly.graph_objects as go

    timed = [r for r in rows if r.unit == "s"]
    fig = go.Figure()
    fig.add_bar(name=a, x=[r.what for r in timed], y=[r.a for r in timed])
    fig.add_bar(name=b, x=[r.what for r in timed], y=[r.b for r in timed])
    fig.update_layout(barmode="group", title="Poetry (step 6) vs uv (step 8): medians of this run",
                      yaxis_title="seconds")
    return fig
