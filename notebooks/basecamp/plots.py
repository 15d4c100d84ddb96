"""Interactive plotly charts for the notebooks: hover for details, click the legend to hide parts."""

from __future__ import annotations

import os
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio

from basecamp.build import BuildResult
from basecamp.images import ImageInfo

# JupyterLab (and VS Code) render this MIME type with the plotly.js they bundle: charts work
# offline and a stored notebook does not carry a copy of plotly.js per chart.
if "PLOTLY_RENDERER" not in os.environ:
    pio.renderers.default = "plotly_mimetype"

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
    fig.update_layout(
        barmode="stack", title=title, xaxis_title="uncompressed size (MB)", height=220 + 60 * len(images),
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
    fig.update_layout(barmode="group", title=title, yaxis_title="seconds", height=420,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
