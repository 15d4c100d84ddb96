"""Charts: the interactive plotly JSON always, a static PNG beside it when a browser can draw one."""

from __future__ import annotations

import base64
from typing import Any

import plotly.graph_objects as go
import pytest

from basecamp import plots

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _figure() -> go.Figure:
    return go.Figure(go.Bar(x=["01-naive", "06-cache-mounts"], y=[1100, 190]), layout={"height": 300, "title": "t"})


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "static_problem", None)
    monkeypatch.delenv(plots.STATIC_ENV, raising=False)


def test_the_notebooks_renderer_keeps_the_interactive_chart_and_adds_the_static_image() -> None:
    assert plots.RENDERER.split("+") == ["plotly_mimetype", "annapurna_static"]
    assert isinstance(plots.pio.renderers["annapurna_static"], plots.StaticImageRenderer)


def test_without_a_browser_the_chart_stays_interactive_and_nothing_fails(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    bundle = _figure()._repr_mimebundle_()
    assert PLOTLY_MIME in bundle and "image/png" not in bundle
    assert plots.static_problem and "nonexistent" in plots.static_problem
    monkeypatch.delenv("BROWSER_PATH")
    calls: list[Any] = []
    monkeypatch.setattr("kaleido.calc_fig_sync", lambda *a, **k: calls.append(a) or b"\x89PNG")
    assert plots.static_png(_figure()) is None and calls == []  # one failure: no browser start per chart


def test_a_browser_that_dies_on_start_leaves_the_chart_interactive(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/bin/false")
    bundle = _figure()._repr_mimebundle_()
    assert list(bundle) == [PLOTLY_MIME]


def test_static_images_can_be_switched_off(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plots.STATIC_ENV, "0")
    monkeypatch.setattr("kaleido.calc_fig_sync", lambda *a, **k: pytest.fail("no browser when switched off"))
    assert list(_figure()._repr_mimebundle_()) == [PLOTLY_MIME]


def test_the_export_never_asks_for_mathjax_from_a_cdn(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(fig: dict[str, Any], opts: dict[str, Any], kopts: dict[str, Any]) -> bytes:
        seen.update(fig=fig, opts=opts, kopts=kopts)
        return b"\x89PNG fake"

    monkeypatch.setattr("kaleido.calc_fig_sync", fake)
    bundle = _figure()._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == b"\x89PNG fake"
    assert seen["kopts"]["mathjax"] is False
    assert seen["opts"] == {"format": "png", "width": plots.STATIC_WIDTH, "height": 300, "scale": 1}


@pytest.mark.browser
def test_a_real_browser_draws_the_same_png_twice(fresh: None) -> None:
    """The stored image is deterministic on one machine (the chart cells ignore their output all the same)."""
    from tests.browser.conftest import chromium_path

    chromium_path()  # fails with the fix when there is none
    first, second = plots.static_png(_figure()), plots.static_png(_figure())
    assert first is not None, plots.static_problem
    assert first.startswith(b"\x89PNG") and first == second
