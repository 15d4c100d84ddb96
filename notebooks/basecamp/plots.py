"""Interactive plotly charts for the notebooks: hover for details, click the legend to hide parts.

Every chart a notebook shows carries two representations in one output: plotly's JSON, which
JupyterLab (and VS Code) draw interactively with the plotly.js they bundle, and a static PNG that
kaleido renders with a Chrome/Chromium already on the machine, which a code-hosting site or a plain
notebook viewer shows instead. Without a usable browser the PNG is left out and nothing else changes.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import logging
import os
import shlex
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

from basecamp import config
from basecamp.article import CLAIMS
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.images import ImageInfo

if TYPE_CHECKING:  # the measured steps' rows (basecamp.runs sits on the measurement floor, above this one)
    from basecamp.runs import MeasuredRow

log = logging.getLogger(__name__)

#: The renderer the notebooks use: interactive JSON plus the static image beside it.
RENDERER = "plotly_mimetype+annapurna_static"
#: Set to 0 to store charts without their static image (no browser is started then).
STATIC_ENV = "ANNAPURNA_STATIC_CHARTS"
STATIC_WIDTH = 800
STATIC_TIMEOUT_S = 60.0
#: Why the last static export failed (None: it worked, or none was tried); later charts skip the export.
static_problem: str | None = None


#: Chromium's own network habits, off: it resolves no host name at all (every lookup fails inside the browser, so no
#: DNS query leaves) and makes no background requests. A static chart is a local page with plotly.js inlined: it
#: needs no network, and the offline test (tests/offline) counts every packet that tries to leave.
CHART_BROWSER_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
    "--disable-background-networking",
    "--dns-prefetch-disable",
    "--no-pings",
    "--disable-domain-reliability",
)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chart_browser() -> Path | None:
    """A launcher for this machine's Chromium with CHART_BROWSER_FLAGS (None: no Chromium found).

    kaleido starts the browser with a fixed command line; the launcher (a shell script in the lab's folder)
    adds the flags. The browser is `$BROWSER_PATH` when set, as kaleido's own lookup does, else the first on PATH.
    """
    target = os.environ.get("BROWSER_PATH") or next(filter(None, map(shutil.which, _BROWSER_NAMES)), None)
    if not target or not os.access(target, os.X_OK):
        return None  # kaleido's own lookup then says what is missing
    launcher = config.LAB_HOME / "tools" / "chart-browser"
    text = "#!/bin/sh\n# basecamp.plots: the chart browser, with no network habits\nexec " + shlex.join(
        [target, *CHART_BROWSER_FLAGS]) + ' "$@"\n'
    if not launcher.is_file() or launcher.read_text() != text:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        tmp = launcher.with_suffix(f".{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(launcher)
    return launcher


class _ChartBrowser:
    """One headless browser for every static chart of a process.

    `kaleido.calc_fig_sync` starts and stops a Chromium per call (measured here: about 6 s a chart);
    kept open, a chart takes about 0.4 s after a start of about 5 s. The browser lives on its own
    event loop in a daemon thread, every call has a timeout, and it is closed when the process exits.
    """

    def __init__(self, timeout_s: float) -> None:
        import kaleido

        self.timeout_s = timeout_s
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="annapurna-chart-browser").start()
        path = chart_browser()
        self.kaleido = kaleido.Kaleido(mathjax=False, timeout=timeout_s, n=1, **({"path": str(path)} if path else {}))
        try:
            self._call(self.kaleido.open())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise
        atexit.register(self.close)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=self.timeout_s)

    def png(self, fig_dict: dict[str, Any], opts: dict[str, Any]) -> Any:
        return self._call(self.kaleido.calc_fig(fig_dict, opts=opts))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser is gone already: nothing left to close
            self._call(self.kaleido.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


_browser: _ChartBrowser | None = None


def static_png(fig: go.Figure | dict[str, Any], width: int = STATIC_WIDTH) -> bytes | None:
    """The chart as PNG bytes, or None when no browser can draw it (the reason stays in `static_problem`).

    Uses kaleido's own browser control rather than `plotly.io.to_image`: that one always adds MathJax
    from a CDN to the page the browser renders, and the lab never reaches outside this machine (no
    chart uses LaTeX). plotly.js comes from the installed plotly package.
    """
    global static_problem, _browser
    if os.environ.get(STATIC_ENV, "1") == "0" or static_problem is not None:
        return None
    fig_dict = fig.to_plotly_json() if isinstance(fig, go.Figure) else fig
    layout = fig_dict.get("layout", {})
    opts = {"format": "png", "width": layout.get("width") or width, "height": layout.get("height") or 500, "scale": 1}
    try:
        if _browser is None:
            _browser = _ChartBrowser(STATIC_TIMEOUT_S)
        png = _browser.png(fig_dict, opts)
    except Exception as exc:  # noqa: BLE001 — no kaleido, no browser, a browser that does not start: keep the chart interactive-only
        static_problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.info("charts are stored without a static image: %s", static_problem)
        return None
    return png if isinstance(png, bytes) and png.startswith(b"\x89PNG") else None


class StaticImageRenderer(MimetypeRenderer):  # type: ignore[misc]  # plotly ships no types
    """A plotly renderer that adds `image/png` to the output bundle, or nothing when it cannot."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        png = static_png(fig_dict)
        return {"image/png": base64.b64encode(png).decode("ascii")} if png else {}


pio.renderers["annapurna_static"] = StaticImageRenderer()
# JupyterLab (and VS Code) render the plotly MIME type with the plotly.js they bundle: charts work
# offline and a stored notebook does not carry a copy of plotly.js per chart. JupyterLab's plotly
# renderer takes the whole output: it shows the stored PNG until the pointer enters, then the live chart.
if "PLOTLY_RENDERER" not in os.environ:
    pio.renderers.default = RENDERER

MB = 1e6
BASE_COLOR = "#9aa5b1"
OWN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_layers(*images: ImageInfo, title: str = "Where the bytes are: image size by layer") -> go.Figure:
    """One horizontal bar per image: the base image's layers in grey, each added layer in colour.

    Empty layers (ENV, WORKDIR, ...) are left out; hover a segment for its instruction and size.
    """
    fig = go.Figure()
    for img in images:
        base = sum(l.size_bytes for l in img.layers if l.from_base)
        fig.add_bar(
            y=[img.ref], x=[base / MB], orientation="h", name="base image", legendgroup="base",
            marker_color=BASE_COLOR, showlegend=img is images[0],
            hovertemplate=f"base image layers<br>%{{x:.1f}} MB<extra>{img.ref}</extra>",
        )
        own = [l for l in img.layers if not l.from_base and l.size_bytes > 0]
        for i, layer in enumerate(own):
            fig.add_bar(
                y=[img.ref], x=[layer.size_bytes / MB], orientation="h",
                name=_short(layer.created_by, 40), marker_color=OWN_COLORS[i % len(OWN_COLORS)],
                hovertemplate=f"{_short(layer.created_by, 90)}<br>%{{x:.1f}} MB<extra>{img.ref}</extra>",
            )
    bases = sorted({f"{img.base_ref}{' (stand-in)' if img.labels.get(config.STANDIN_LABEL) == 'true' else ''}"
                    for img in images if img.base_ref})
    fig.update_layout(
        barmode="stack", title=f"{title}<br><sup>base: {'; '.join(bases) or 'unknown'}</sup>", xaxis_title="uncompressed size (MB)", height=220 + 60 * len(images),
        legend={"orientation": "h", "y": -0.35}, margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def plot_rebuild(builds: Sequence[BuildResult], names: Sequence[str], title: str = "Time per Dockerfile step") -> go.Figure:
    """Grouped bars: each Dockerfile step's time in each build; cached steps show as 0 s, marked CACHED."""
    fig = go.Figure()
    for build, name in zip(builds, names, strict=True):
        steps = [s for s in build.steps if not s.internal]
        fig.add_bar(
            x=[_short(s.name, 45) for s in steps],
            y=[0.0 if s.status == "cached" else (s.duration_s or 0.0) for s in steps],
            text=["CACHED" if s.status == "cached" else f"{s.duration_s or 0:.1f}s" for s in steps],
            name=f"{name} ({build.wall_s:.1f} s total)",
            hovertext=[s.name for s in steps], hoverinfo="text+y",
        )
    builders = sorted({b.builder for b in builds})
    fig.update_layout(barmode="group", title=f"{title}<br><sup>built with {'; '.join(builders)}</sup>",
                      yaxis_title="seconds", height=420,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


#: What `plot_compare` can show: (label, is a time). A time's metric is its scenario's name.
METRICS = {
    "size": ("image size, uncompressed (MB)", False),
    "gzipped": ("image size, docker save | gzip (MB)", False),
    "cold": ("cold build (s, median, bars = min-max)", True),
    "code-change": ("rebuild after a code change (s)", True),
    "dependency-change": ("rebuild after a dependency change (s)", True),
    "version-bump": ("rebuild after a version bump (s)", True),
}


def _size_trace(rows: Sequence[MeasuredRow], metric: str, visible: bool) -> go.Bar:
    sizes = [(r.size_bytes, r.size) if metric == "size" else (r.compressed_bytes, r.gzipped) for r in rows]
    return go.Bar(x=[r.step for r in rows], y=[None if n is None else n / MB for n, _ in sizes],
                  name=METRICS[metric][0], visible=visible, marker_color="#1f77b4", text=[t for _, t in sizes])


def _metric_trace(rows: Sequence[MeasuredRow], metric: str, visible: bool) -> go.Bar:
    label, is_time = METRICS[metric]
    if not is_time:
        return _size_trace(rows, metric, visible)
    cells = [r.cells(metric) for r in rows]
    med = [c.median_s for c in cells]
    lo = [None if c.median_s is None or c.min_s is None else c.median_s - c.min_s for c in cells]
    hi = [None if c.median_s is None or c.max_s is None else c.max_s - c.median_s for c in cells]
    return go.Bar(
        x=[r.step for r in rows], y=med, name=label, visible=visible, marker_color="#ff7f0e",
        error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
        hovertext=[f"{c.runs} runs; cached/ran steps: {c.cached}/{c.ran}" for c in cells],
    )


def plot_compare(rows: Sequence[MeasuredRow], metric: str = "size", *, article: bool = True,
                 title: str = "The steps side by side") -> go.Figure:
    """Bars per step for one metric, with a menu to switch metric; the article's sizes beside ours.

    `rows` are `basecamp.readback.latest_rows()` (or `StepMeasurement.row()`s).
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    fig = go.Figure()
    names = list(METRICS)
    for name in names:
        fig.add_trace(_metric_trace(rows, name, visible=name == metric))
    steps = [r.step for r in rows]
    claimed = [CLAIMS[s].size_bytes if s in CLAIMS else None for s in steps]
    article_sizes = [size / MB if size else None for size in claimed]
    if article and any(article_sizes):
        fig.add_trace(go.Bar(x=steps, y=article_sizes, name="the article (python:3.11-buster bases)",
                             marker_color=BASE_COLOR, visible=metric == "size"))
    n = len(names)
    has_article = len(fig.data) > n
    buttons = []
    for i, name in enumerate(names):
        vis = [j == i for j in range(n)] + ([name == "size"] if has_article else [])
        buttons.append({"label": name, "method": "update",
                        "args": [{"visible": vis}, {"yaxis": {"title": {"text": METRICS[name][0]}}}]})
    builders = sorted({r.builder for r in rows} - {""})
    bases = sorted({r.base for r in rows} - {""})
    fig.update_layout(
        title=f"{title}<br><sup>built with {'; '.join(builders) or '?'} on {'; '.join(bases) or '?'}</sup>",
        barmode="group", height=450, yaxis_title=METRICS[metric][0],
        updatemenus=[{"buttons": buttons, "active": names.index(metric), "x": 1.0, "xanchor": "right", "y": 1.15}],
        legend={"orientation": "h", "y": -0.2}, margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig
