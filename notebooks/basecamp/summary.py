"""The series side by side: every step's latest measurement, measuring what is missing."""

from __future__ import annotations

import base64
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from basecamp import forensics
from basecamp.article import CLAIMS
from basecamp.bench import all_steps
from basecamp.errors import InputError
from basecamp.measure import measure_step, scenarios_for
from basecamp.readback import latest_rows, measured
from basecamp.results import CI, CONTEXT, RUNNING, load
from basecamp.running import RESULTS_STEP
from basecamp.runs import SCENARIOS, MeasuredRow, ScenarioCells
from basecamp.scratch import DEPENDENCY, _dependency_name
from basecamp.steps import step_name
from basecamp.tables import SCENARIO_TITLES, aligned
from basecamp.units import fmt_bytes
from basecamp.yours import is_own_key

if TYPE_CHECKING:
    from basecamp.project import Project


def ensure_measured(step: str, project: Project | None = None, **kwargs: Any) -> Any:
    """The latest recorded measurement of `step` (of `project`, default the repo's app), or a fresh one
    (full protocol, or what `kwargs` say) when none exists."""
    found = measured(step, project=project, scenarios=kwargs.get("scenarios"))
    return found if found is not None else measure_step(step, project=project, **kwargs)


def summary_rows(steps: list[str] | None = None, *, project: Project | None = None,
                 **measure_kwargs: Any) -> list[MeasuredRow]:
    """One row per step (basecamp.runs.MeasuredRow), measuring any step never measured here.

    `project` (basecamp.use_project): another Poetry project's rows (default: the repo's app).
    A key "yours" (or "yours-<name>") is a learner's Dockerfile measured with `measure_dockerfile`: its
    latest measurement is read back beside the steps (basecamp.yours).
    `measure_kwargs` go to measure_step for the steps it must measure (e.g. scenarios, repeats).
    """
    wanted = steps or all_steps()
    for step in wanted:
        if is_own_key(step):  # a learner's Dockerfile: read back, never measured here (no path to build)
            if measured(step, project=project, scenarios=measure_kwargs.get("scenarios")) is None:
                raise InputError(f"{step!r} was never measured for this project: measure it first, "
                                 "`bc.measure_dockerfile('path/to/Dockerfile', project=...)`")
            continue
        # the anti-pattern only has a size to show: one cold build is its whole protocol
        kwargs = {**measure_kwargs, "scenarios": scenarios_for(step_name(step), measure_kwargs.get("scenarios"))}
        ensure_measured(step, project, **kwargs)
    return latest_rows(wanted, project=project, scenarios=measure_kwargs.get("scenarios"))


def scratch_dependency() -> str:
    """The package a simulated dependency change adds (its normalised name)."""
    return _dependency_name(DEPENDENCY)


def _timing(cells: ScenarioCells) -> str:
    if cells.median_s is None or cells.min_s is None or cells.max_s is None:
        return "—"
    return f"{cells.median_s:.1f} s ({cells.min_s:.1f}–{cells.max_s:.1f})"


def article_cells(rows: Sequence[MeasuredRow]) -> tuple[list[str], list[list[str]]]:
    """The header and cells of `article_table` (the report's index renders them as HTML)."""
    head = ["step", "size", "article", "gzipped", *(SCENARIO_TITLES[s] for s in SCENARIOS)]
    body = []
    for r in rows:
        claim = CLAIMS.get(r.step)
        body.append([
            r.step, fmt_bytes(r.size_bytes),
            fmt_bytes(claim.size_bytes) if claim and claim.size_bytes else "—",
            fmt_bytes(r.compressed_bytes), *(_timing(r.cells(s)) for s in SCENARIOS),
        ])
    return head, body


#: Under `article_table`: what its columns mean.
ARTICLE_LEGEND = (
    "size: the image uncompressed; article: the size the article published for its step (—: none);\n"
    "gzipped: `docker save | gzip`; times: median of the runs (fastest–slowest), —: not measured."
)


def article_table(rows: Sequence[MeasuredRow]) -> str:
    """A text table: our sizes and times (median, min–max) with the article's published size beside."""
    head, body = article_cells(rows)
    return text_table(head, body) + "\n\n" + ARTICLE_LEGEND


def compare_widget(rows: Sequence[MeasuredRow]) -> Any:
    """Pick a metric and the steps to compare; the chart redraws. Without widgets: the chart alone.

    The widget's output also carries the first chart as a static PNG (`basecamp.plots.static_png`),
    which a plain notebook viewer shows where it cannot run widgets; JupyterLab shows the widget.
    """
    # imported here: plotly (and the widgets below) cost seconds, and only the chart needs them
    import plotly.io as pio

    from basecamp.plots import METRICS, plot_compare, static_png  # here, not above: it loads plotly

    try:
        import ipywidgets as widgets
        from IPython import get_ipython
    except ImportError:
        return plot_compare(rows)
    if get_ipython() is None:
        return plot_compare(rows)

    class ChartBox(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
        """The controls and the chart; its output bundle adds the first chart's static image."""

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            png = static_png(plot_compare(rows))
            if png and isinstance(bundle, dict):
                bundle["image/png"] = base64.b64encode(png).decode("ascii")
            return bundle

    steps = [r.step for r in rows]
    metric = widgets.Dropdown(options=list(METRICS), value="size", description="metric")
    chosen = widgets.SelectMultiple(options=steps, value=tuple(steps), description="steps", rows=len(steps))
    out = widgets.Output()

    def redraw(_change: Any = None) -> None:
        picked = [r for r in rows if r.step in chosen.value]
        out.clear_output(wait=True)
        with out:
            if picked:  # interactive only: a static image per redraw would start a browser each time
                pio.show(plot_compare(picked, metric.value), renderer="plotly_mimetype")
            else:
                print("pick at least one step")

    metric.observe(redraw, names="value")
    chosen.observe(redraw, names="value")
    redraw()
    return ChartBox([widgets.HBox([metric, chosen]), out])


def text_table(head: list[str], body: list[list[str]], groups: list[tuple[str, int]] | None = None) -> str:
    """Rows of cells as plain text: columns aligned, a rule under the header; `groups`: titles over
    runs of columns, (title, number of columns) from the left."""
    return "\n".join(aligned(head, body, groups or ()))


def _ratio(num: float | None, den: float | None) -> str:
    return f"{num / den:.1f}x" if num and den else "—"


def ratios_table(rows: Sequence[MeasuredRow], first: str = "01-naive", best: str = "06-cache-mounts") -> str:
    """Each step against the naive image and against the article's final step, as ratios from one results file.

    Under "01-naive ÷ step": how many times smaller than the naive image. Under "step ÷ 06-cache-mounts":
    the step's size or median time over step 6's (below 1.0x: smaller or faster than step 6).
    """
    by = {r.step: r for r in rows}
    a, b = by.get(first), by.get(best)
    head = ["step", "size", "size", "size", *(SCENARIO_TITLES[s] for s in SCENARIOS)]
    groups = [("", 2), (f"{first} ÷ step", 1), (f"step ÷ {best}", 1 + len(SCENARIOS))]
    body = [[
        r.step, fmt_bytes(r.size_bytes), _ratio(a.size_bytes if a else None, r.size_bytes),
        _ratio(r.size_bytes, b.size_bytes if b else None),
        *(_ratio(r.cells(s).median_s, b.cells(s).median_s if b else None) for s in SCENARIOS),
    ] for r in rows]
    legend = (f"{first} ÷ step: how many times smaller than {first} the step's image is.\n"
              f"step ÷ {best}: the step's size or median time over step {best[:2]}'s "
              f"(below 1.0x: smaller or faster than {best[:2]}); —: not measured.")
    return text_table(head, body, groups) + "\n\n" + legend


def _latest_batch(step: str, first: str) -> list[Any]:
    """The records of `step` written by its notebook's latest run: from the last `first`-scenario run 1 on."""
    records = load(step)
    starts = [i for i, r in enumerate(records) if r.scenario == first and r.run in (1, None)]
    return records[starts[-1]:] if starts else []


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def beyond_table() -> str:
    """What notebooks 07, 12 and 13 measured that is not a step's size or build time, from the results file.

    Rows appear once the notebook ran on this machine: the build context (07), a fresh CI runner with
    and without an imported cache (12), and the bytes each image wastes in shadowed or deleted files (13).
    """
    body: list[list[str]] = []
    context = {r.scenario: r for r in load("07-build-context") if r.kind == CONTEXT}
    root, ignored = context.get("context: repo root"), context.get("context: repo root + .dockerignore")
    if root and ignored:
        body.append(["07 build context", "context size: repo root vs with .dockerignore",
                     f"{fmt_bytes(root.size_bytes)} vs {fmt_bytes(ignored.size_bytes)}",
                     _ratio(root.size_bytes, ignored.size_bytes)])
    without = context.get("notebook-edit without .dockerignore")
    with_ = context.get("notebook-edit with .dockerignore")
    if without and with_:
        body.append(["07 build context", "steps re-run after a notebook edit: without vs with .dockerignore",
                     f"{without.ran_steps} vs {with_.ran_steps}", "—"])
    batch = [r for r in _latest_batch("12-ci-cache", "ci-plain") if r.kind == CI]
    plain = _median([r.wall_s for r in batch if r.scenario == "ci-plain" and r.wall_s is not None])
    imported = _median([r.wall_s for r in batch if r.scenario == "ci-import" and r.wall_s is not None])
    if plain and imported:
        body.append(["12 CI cache", "fresh runner, median build: cold vs imported layer cache",
                     f"{plain:.1f} s vs {imported:.1f} s", _ratio(plain, imported)])
    dance = [r.downloads for r in batch if r.scenario == "ci-dance" and r.downloads is not None]
    plain_dl = [r.downloads for r in batch if r.scenario == "ci-plain" and r.downloads is not None]
    if dance and plain_dl:
        body.append(["12 CI cache", "packages downloaded: empty cache mount vs danced one",
                     f"{max(plain_dl)} vs {max(dance)}", "—"])
    for f in forensics.latest_forensics():
        body.append([f"13 forensics {f['step']}", "bytes in shadowed or deleted-later files; efficiency",
                     f"{fmt_bytes(f['wasted_bytes'])} wasted; {f['efficiency']:.2%}", "—"])
    if not body:
        return "nothing measured yet beyond the steps: run notebooks 07, 12 and 13"
    legend = ("ratio: the first value over the second (—: a ratio would not mean much).\n"
              "efficiency (13): 1 − wasted bytes ÷ the bytes of every file in every layer.")
    return text_table(["notebook", "what", "measured here", "ratio"], body) + "\n\n" + legend


#: The columns of `running_table`: (scenario prefix, spec-name suffix, header); notebook 11 writes them.
RUNNING_COLUMNS = (
    ("stop: ", "", "stop s"),
    ("stop: ", ", shell form", "stop s, shell form"),
    ("start: ", "", "start s"),
    ("start: ", ", as root", "start s, as root"),
    ("start: ", ", read-only", "start s, read-only"),
)


def running_table() -> str:
    """What notebook 11 measured on the running images, one row per step, from the results file.

    Each cell is the median of the latest measurement of that scenario (`basecamp.running.record_running`);
    —: not measured. "reproducible": two `--no-cache` builds of the step gave the same image id.
    """
    latest = {r.scenario: r for r in load(RESULTS_STEP) if r.kind == RUNNING}
    steps = sorted({s.split(": ", 1)[1].split(",")[0] for s in latest if ": " in s})
    if not steps:
        return "nothing measured yet on the running images: run notebook 11"
    body = []
    for step in steps:
        row = [step]
        for prefix, suffix, _ in RUNNING_COLUMNS:
            rec = latest.get(f"{prefix}{step}{suffix}")
            row.append(f"{rec.wall_s:.2f}" if rec is not None and rec.wall_s is not None else "—")
        rep = latest.get(f"reproducible: {step}")
        row.append("—" if rep is None or rep.ok is None else ("yes" if rep.ok else "no"))
        body.append(row)
    head = ["step", *[h for _, _, h in RUNNING_COLUMNS], "reproducible"]
    legend = ("stop s: `docker stop` (grace 10 s) with the ENTRYPOINT as written, and as a shell form (/bin/sh -c);\n"
              "start s: `docker run` to the first HTTP 200 on /health, as shipped, as root, and with --read-only;\n"
              "medians of notebook 11's latest run; reproducible: two --no-cache builds gave one image id; —: not measured.")
    return text_table(head, body) + "\n\n" + legend
