"""The series as a book: every notebook executed headless, written as a static HTML site.

`python -m basecamp report` (`./lab report`) runs `notebooks/NN_*.ipynb` in order with nbclient
(cwd notebooks/, ANNAPURNA_PROGRESS=plain: no widget state is needed), into copies — the repo's
notebooks are never written — and writes to the output folder (default `.lab/report/`):

- `index.html`: each notebook with pass/fail and duration, the summary table and chart;
- `NN_name.html`: one page per notebook (nbconvert's lab template, no CDN script);
- `plotly.min.js`: plotly.js, once, from the installed plotly package; every page loads it by a
  relative path, so the charts are interactive and work offline;
- `ipynb/NN_name.ipynb`: the executed copies; `report.json`: what ran, how long, what failed.

A notebook that fails still gets its page (outputs up to the failing cell); the report's exit
status is then 1 and the failure names the notebook, the cell and the error.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from basecamp import config
from basecamp.bench import all_steps
from basecamp.errors import InputError
from basecamp.plots import plot_compare
from basecamp.readback import latest_rows
from basecamp.runs import MeasuredRow
from basecamp.summary import article_cells
from basecamp.units import fmt_seconds

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
PLOTLY_JS = "plotly.min.js"
#: Seconds one cell may run before the report calls it failed (a notebook measures whole builds).
DEFAULT_CELL_TIMEOUT = 1800
Log = Callable[[str], None]

# nbconvert's lab template without its CDN scripts (require.js, MathJax, mermaid, the widget
# manager): plotly.js comes from the page's folder instead, and a link back to the index on top.
_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}<script src="plotly.min.js"></script>{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
<nav class="book-nav" style="padding:0.5em 0 1em 0">&larr; <a href="index.html">the series</a></nav>
{%- endblock body_header -%}
"""


@dataclass
class CellFailure:
    """Where a notebook stopped: the cell (1-based, markdown cells counted), its first line, the error."""

    cell: int
    execution_count: int | None
    first_line: str
    error: str

    def describe(self) -> str:
        prompt = f" (In [{self.execution_count}])" if self.execution_count else ""
        return f"cell {self.cell}{prompt} `{self.first_line}`: {self.error}"


@dataclass
class NotebookRun:
    """One notebook of the report: where its page is, how long it ran, and how it failed if it did."""

    name: str
    page: str
    seconds: float
    failure: CellFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class BookReport:
    """What `build_book` wrote and ran."""

    out: Path
    runs: list[NotebookRun] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def index(self) -> Path:
        return self.out / "index.html"

    @property
    def failures(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]


def default_out() -> Path:
    return config.LAB_HOME / "report"


def discover(chosen: Sequence[str] | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    """The series' notebooks `NN_*.ipynb` in order; `chosen` picks by prefix ("01", "15_summary")."""
    folder = notebooks_dir or config.NOTEBOOKS_DIR
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not chosen:
        return found
    picked: list[Path] = []
    for want in chosen:
        key = want.strip().removesuffix(".ipynb")
        hits = [p for p in found if p.stem == key or p.stem.split("_", 1)[0] == key]
        if not hits:
            names = ", ".join(p.stem for p in found) or "none"
            raise InputError(f"no notebook {want!r} in {folder}: choose from {names}")
        picked += [p for p in hits if p not in picked]
    return sorted(picked)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")]
    text = lines[0].strip() if lines else source.strip().splitlines()[0] if source.strip() else ""
    return text if len(text) <= 80 else text[:77] + "..."


def _failure(nb: Any, current: int | None, exc: BaseException) -> CellFailure:
    """The failing cell: the first with an error output, else the one that was running."""
    index = current
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            index = i
            break
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None)
    if evalue is None:
        evalue = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    error = f"{ename}: {evalue}".strip().rstrip(":")
    if index is None:
        return CellFailure(0, None, "", error)
    cell = nb.cells[index]
    return CellFailure(index + 1, cell.get("execution_count"), _first_line(cell.source), error)


def execute(path: Path, timeout: int = DEFAULT_CELL_TIMEOUT) -> tuple[Any, float, CellFailure | None]:
    """Run a copy of the notebook at `path` top to bottom; the repo's file is only read."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    current: dict[str, int] = {}

    def on_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        nb, timeout=timeout, kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}}, on_cell_start=on_start,
    )
    started = time.perf_counter()
    failure = None
    try:
        with _env(ANNAPURNA_PROGRESS="plain"):
            client.execute()
    except Exception as exc:  # noqa: BLE001 - any failure of a notebook is reported, then the next one runs
        failure = _failure(nb, current.get("index"), exc)
    return nb, time.perf_counter() - started, failure


def plotly_div(figure: dict[str, Any]) -> str:
    """A chart as a `<div>` plus its `Plotly.newPlot` script; plotly.js itself is loaded by the page."""
    import plotly.io as pio

    return str(pio.to_html(figure, include_plotlyjs=False, full_html=False, validate=False, default_width="100%"))


def _widget_outputs(model_id: str, state: dict[str, Any], seen: set[str] | None = None) -> list[dict[str, Any]]:
    """The outputs an ipywidgets tree captured (its Output widgets), in display order."""
    seen = seen if seen is not None else set()
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    model = state[model_id].get("state", {})
    found = list(model.get("outputs", []))
    for child in model.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            found += _widget_outputs(child.removeprefix("IPY_MODEL_"), state, seen)
    return found


def _static_outputs(output: dict[str, Any], widget_state: dict[str, Any]) -> list[dict[str, Any]]:
    """One output as the static page shows it: charts as plotly divs, widgets as what they captured."""
    import nbformat

    data = output.get("data", {})
    if PLOTLY_MIME in data:
        new = dict(output)
        new["data"] = {"text/html": plotly_div(data[PLOTLY_MIME])}
        return [nbformat.from_dict(new)]
    if WIDGET_VIEW_MIME in data:
        note = ('<p class="book-widget-note"><em>Interactive controls run in JupyterLab '
                "(<code>./lab start</code>); here: what they showed when the notebook ran.</em></p>")
        inner = _widget_outputs(data[WIDGET_VIEW_MIME].get("model_id", ""), widget_state)
        converted = [o for x in inner for o in _static_outputs(x, widget_state)]
        head = nbformat.v4.new_output("display_data", data={"text/html": note})
        return [head, *converted]
    return [output]


def make_static(nb: Any) -> Any:
    """The notebook with plotly and widget outputs turned into HTML that needs only plotly.js."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for out in cell.get("outputs", []) for o in _static_outputs(out, state)]
    nb.metadata.pop("widgets", None)
    return nb


def render_page(nb: Any, title: str) -> str:
    """One notebook as a standalone page (nbconvert's lab template, local plotly.js, no CDN)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"book.html.j2": _PAGE_TEMPLATE})])
    exporter.template_file = "book.html.j2"
    body, _ = exporter.from_notebook_node(make_static(nb), resources={"metadata": {"name": title}})
    return str(body)


def write_plotly_js(out: Path) -> Path:
    """plotly.js from the installed plotly package, once per report."""
    from plotly.offline import get_plotlyjs

    path = out / PLOTLY_JS
    path.write_text(get_plotlyjs(), encoding="utf-8")
    return path


_INDEX_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:0.3em 0.7em;text-align:left}
th{background:#f3f3f3}td.num{text-align:right}.ok{color:#1a7f37;font-weight:bold}.failed{color:#c62828;font-weight:bold}
code{background:#f6f8fa;padding:0 0.2em}.failure{font-family:monospace;white-space:pre-wrap}
"""


def _summary_html(rows: Sequence[MeasuredRow]) -> str:
    if not rows:
        return "<p>No step has been measured yet.</p>"
    head, body = article_cells(rows)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in line) + "</tr>" for line in body)
    return f'<table id="summary"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def render_index(report: BookReport, rows: Sequence[MeasuredRow]) -> str:
    """The index: every notebook with pass/fail and duration, then the summary table and chart."""
    lines = []
    for run in report.runs:
        status = '<span class="ok">passed</span>' if run.ok else '<span class="failed">FAILED</span>'
        why = f'<div class="failure">{html.escape(run.failure.describe())}</div>' if run.failure else ""
        lines.append(f'<tr class="notebook"><td><a href="{html.escape(run.page)}">{html.escape(run.name)}</a></td>'
                     f'<td>{status}{why}</td><td class="num">{fmt_seconds(run.seconds)}</td></tr>')
    chart = ""
    if rows:
        chart = plotly_div(plot_compare(rows).to_plotly_json())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    passed = sum(r.ok for r in report.runs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>annapurna: the series</title>
<script src="{PLOTLY_JS}"></script><style>{_INDEX_CSS}</style></head>
<body>
<h1>annapurna: blazing fast Python Docker builds with Poetry, measured</h1>
<p>The notebooks of this report executed on this machine ({when}): {passed} of {len(report.runs)} passed
in {fmt_seconds(report.wall_s)}. Every number below was measured in that run or an earlier one here
(<code>.lab/results/</code>).</p>
<h2>The notebooks</h2>
<table id="notebooks"><thead><tr><th>notebook</th><th>result</th><th>duration</th></tr></thead>
<tbody>{"".join(lines)}</tbody></table>
<h2>Summary: the steps side by side</h2>
<p>Size, gzipped size, and build times as median (min–max) in seconds; the article's published size beside ours.</p>
{_summary_html(rows)}
<div id="summary-chart">{chart}</div>
</body></html>
"""


def _summary_rows() -> list[MeasuredRow]:
    return latest_rows(all_steps())


def build_book(
    notebooks: Sequence[Path], out: Path | None = None, *, timeout: int = DEFAULT_CELL_TIMEOUT, log: Log = print,
) -> BookReport:
    """Execute `notebooks` in order and write the site to `out`; failures are recorded, not raised."""
    import nbformat

    out = out or default_out()
    (out / "ipynb").mkdir(parents=True, exist_ok=True)
    write_plotly_js(out)
    report = BookReport(out=out)
    started = time.perf_counter()
    for path in notebooks:
        log(f"running {path.name} ...")
        nb, seconds, failure = execute(path, timeout)
        nbformat.write(nb, out / "ipynb" / path.name)
        page = f"{path.stem}.html"
        (out / page).write_text(render_page(nb, path.stem), encoding="utf-8")
        run = NotebookRun(path.stem, page, seconds, failure)
        report.runs.append(run)
        log(f"  {'passed' if run.ok else 'FAILED'} in {fmt_seconds(seconds)}"
            + (f" — {failure.describe()}" if failure else ""))
    report.wall_s = time.perf_counter() - started
    report.index.write_text(render_index(report, _summary_rows()), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(
        {"wall_s": report.wall_s, "runs": [asdict(r) | {"ok": r.ok} for r in report.runs]}, indent=1) + "\n",
        encoding="utf-8")
    return report
