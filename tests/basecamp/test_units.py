"""units: sizes, durations and ratios as the notebooks print them."""

from __future__ import annotations

import pytest
from basecamp.errors import InputError
from basecamp.units import fmt_bytes, fmt_ratio, fmt_seconds, pct_change, ratio


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (12_345, "12.3 kB"),
        (1_984_172, "1.98 MB"),
        (170_000_000, "170 MB"),
        (959_400_000, "959 MB"),
        (1_120_000_000, "1.12 GB"),
        (999_600, "1 MB"),  # rounds up into the next unit, never "1e+03 kB"
        (999_999_999, "1 GB"),
        (2.5e12, "2.5 TB"),
        (-3_400_000, "-3.4 MB"),
        (None, "?"),
    ],
)
def test_fmt_bytes_is_decimal_like_docker_images(n, text):
    assert fmt_bytes(n) == text


def test_fmt_bytes_rejects_nan():
    with pytest.raises(InputError):
        fmt_bytes(float("nan"))


@pytest.mark.parametrize(
    ("s", "text"),
    [
        (0.0, "0.00 s"),
        (0.044, "0.04 s"),
        (0.996, "1.0 s"),
        (12.34, "12.3 s"),
        (59.96, "1 min 00 s"),
        (125, "2 min 05 s"),
        (3725, "1 h 02 min"),
        (None, "?"),
    ],
)
def test_fmt_seconds(s, text):
    assert fmt_seconds(s) == text


def test_fmt_seconds_rejects_negative():
    with pytest.raises(InputError):
        fmt_seconds(-1)


def test_ratio_and_words():
    assert ratio(1.1e9, 170e6) == pytest.approx(6.47, abs=0.01)
    assert fmt_ratio(1.1e9, 170e6) == "6.5x smaller"
    assert fmt_ratio(100, 130) == "1.3x larger"
    assert fmt_ratio(100, 101) == "the same"
    with pytest.raises(InputError):
        ratio(1, 0)


def test_pct_change():
    assert pct_change(1.1e9, 170e6) == "-85%"
    assert pct_change(100, 103) == "+3%"
    with pytest.raises(InputError):
        pct_change(0, 1)
