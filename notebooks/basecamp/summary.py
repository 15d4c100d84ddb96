"""The series side by side: every step's latest measurement, measuring what is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from basecamp.article import CLAIMS
from basecamp.units import fmt_bytes

if TYPE_CHECKING:
    from basecamp.project import Project


def ensure_measured(step: str, project: Project | None = None, **kwargs: Any) -> Any:
    """The latest recorded measurement of `step` (of `project`, default the repo's app), or a fresh one
    (full protocol, or what `kwargs` say) when none exists."""
    from basecamp.measure import measure_step, measured

    found = measured(step, project=project)
    return found if found is not None else measure_step(step, project=project, **kwargs)


def summary_rows(steps: list[str] | None = None, *, project: Project | None = None,
                 **measure_kwargs: Any) -> list[dict[str, Any]]:
    """One row per step (basecamp.measure row format), measuring any step never measured here.

    `project` (basecamp.use_project): another Poetry project's rows (default: the repo's app).
    `measure_kwargs` go to measure_step for the steps it must measure (e.g. scenarios, repeats).
    """
    from basecamp.measure import all_steps, latest_rows

    wanted = steps or all_steps()
    for step in wanted:
        # the anti-pattern only has a size to show: one cold build is its whole protocol
        kwargs = {"scenarios": ["cold"], **measure_kwargs} if step.startswith("03b") else measure_kwargs
        ensure_measured(step, project, **kwargs)
    return latest_rows(wanted, project=project)


def scratch_dependency() -> str:
    """The package a simulated dependency change adds (its normalised name)."""
    from basecamp.scratch import DEPENDENCY, _dependency_name

    return _dependency_name(DEPENDENCY)


def _timing(row: dict[str, Any], key: str) -> str:
    med = row.get(f"{key}_median_s")
    if med is None:
        return "—"
    return f"{med:.1f} s ({row[f'{key}_min_s']:.1f}–{row[f'{key}_max_s']:.1f})"


def article_table(rows: list[dict[str, Any]]) -> str:
    """A text table: our sizes and times (median, min–max) with the article's published size beside."""
    head = ["step", "size", "article", "gzipped", "cold", "code change", "dependency change"]
    body = []
    for r in rows:
        claim = CLAIMS.get(r["step"])
        body.append([
            r["step"], fmt_bytes(r.get("size_bytes")),
            fmt_bytes(claim.size_bytes) if claim and claim.size_bytes else "—",
            fmt_bytes(r.get("compressed_bytes")), _timing(r, "cold"), _timing(r, "code_change"),
            _timing(r, "dependency_change"),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)])


def compare_widget(rows: list[dict[str, Any]]) -> Any:
    """Pick a metric and the steps to compare; the chart redraws. Without widgets: the chart alone."""
    from basecamp.plots import METRICS, plot_compare

    try:
        import ipywidgets as widgets
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return plot_compare(rows)
    if get_ipython() is None:
        return plot_compare(rows)
    steps = [r["step"] for r in rows]
    metric = widgets.Dropdown(options=list(METRICS), value="size", description="metric")
    chosen = widgets.SelectMultiple(options=steps, value=tuple(steps), description="steps", rows=len(steps))
    out = widgets.Output()

    def redraw(_change: Any = None) -> None:
        picked = [r for r in rows if r["step"] in chosen.value]
        out.clear_output(wait=True)
        with out:
            if picked:
                display(plot_compare(picked, metric.value))
            else:
                print("pick at least one step")

    metric.observe(redraw, names="value")
    chosen.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([metric, chosen]), out])
