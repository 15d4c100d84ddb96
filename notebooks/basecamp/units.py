"""Human-readable sizes, durations and ratios, written the way `docker images` writes them."""

from __future__ import annotations

import math

from basecamp.errors import InputError

#: Decimal units, as the docker CLI uses them (go-units HumanSize): 1 MB = 1,000,000 bytes.
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def fmt_bytes(n: float | None) -> str:
    """A byte count with three significant digits and a decimal unit: "170 MB", "1.12 GB".

    None (unknown) gives "?"; negative counts keep their sign ("-3.4 MB", for differences).
    """
    if n is None:
        return "?"
    if isinstance(n, float) and not math.isfinite(n):
        raise InputError(f"fmt_bytes: {n!r} is not a byte count")
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    unit = 0
    # Round to three significant digits first, so 999.6 kB becomes "1 MB", not "1e+03 kB".
    while unit < len(_BYTE_UNITS) - 1 and float(f"{value:.3g}") >= 1000:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{sign}{round(value)} B"
    return f"{sign}{float(f'{value:.3g}'):g} {_BYTE_UNITS[unit]}"


def fmt_seconds(s: float | None) -> str:
    """A duration: "0.04 s", "12.3 s", "2 min 05 s", "1 h 02 min"; None gives "?"."""
    if s is None:
        return "?"
    if s < 0 or not math.isfinite(s):
        raise InputError(f"fmt_seconds: {s!r} is not a duration")
    if round(s, 2) < 1:
        return f"{s:.2f} s"
    if round(s, 1) < 60:
        return f"{s:.1f} s"
    total = round(s)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def ratio(before: float, after: float) -> float:
    """How many times `after` fits into `before` (1.1 GB -> 170 MB gives about 6.5)."""
    if after <= 0:
        raise InputError(f"ratio: the second value must be positive, got {after!r}")
    return before / after


def fmt_ratio(before: float, after: float) -> str:
    """`ratio` in words: "6.5x smaller" / "1.3x larger" / "the same"."""
    r = ratio(before, after)
    if round(r, 1) == 1.0:
        return "the same"
    if r > 1:
        return f"{r:.1f}x smaller"
    return f"{1 / r:.1f}x larger"


def pct_change(before: float, after: float) -> str:
    """The change from `before` to `after` in percent, signed: "-84%", "+3%"."""
    if before == 0:
        raise InputError("pct_change: `before` must not be zero")
    return f"{(after - before) / before * 100:+.0f}%"
