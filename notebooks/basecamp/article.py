"""What the article published, quoted so notebooks can put it beside what we measure.

R. Albertazzi, "Blazing fast Python Docker builds with Poetry" (2023). Only sizes were published;
the article reports no build times in seconds. Its bases were python:3.11-buster / -slim-buster.
"""

from __future__ import annotations

from dataclasses import dataclass

from basecamp.errors import InputError


@dataclass(frozen=True)
class Claim:
    """One published number, with the article's own words for it."""

    step: str
    size_bytes: int | None
    says: str


CLAIMS = {
    "01-naive": Claim("01-naive", 1_100_000_000, "the naive image is 1.1 GB; any change rebuilds everything after the copy"),
    "02-warming-up": Claim("02-warming-up", 959_000_000, "pinning Poetry, copying only what is needed and --without dev: 959 MB"),
    "03-poetry-cache": Claim("03-poetry-cache", None, "deleting Poetry's cache in the same RUN keeps it out of the image"),
    "04-deps-before-code": Claim("04-deps-before-code", None, "a code change no longer re-installs dependencies: builds got crazy fast"),
    "05-multi-stage": Claim("05-multi-stage", 170_000_000, "a slim runtime with only the venv: 170 MB, 6x smaller than 1.1 GB"),
    "06-cache-mounts": Claim("06-cache-mounts", None, "a cache mount keeps downloads across builds without putting them in the image"),
}


def claim(step: str) -> Claim:
    """The article's claim for a step name such as "05-multi-stage"."""
    return CLAIMS[step]


#: Every figure the article published, as it printed them: the only numbers with units a markdown
#: cell of the series may carry (tests/test_lesson_text.py), since they were not measured here.
PUBLISHED = {
    "01-naive": "1.1 GB",
    "02-warming-up": "959 MB",
    "05-multi-stage": "170 MB",
    "05-ratio": "6x",
}


def figure(key: str) -> str:
    """The article's figure as it printed it: "1.1 GB" for "01-naive", "6x" for "05-ratio"."""
    try:
        return PUBLISHED[key]
    except KeyError:

        raise InputError(f"the article published no figure {key!r}; it has {', '.join(PUBLISHED)}") from None
