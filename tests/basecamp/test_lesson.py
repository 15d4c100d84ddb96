"""basecamp.lesson: listings that stay short as stored text, predictions checked without giving answers away."""

from __future__ import annotations

from basecamp import lesson


def test_a_long_listing_keeps_every_line_in_html_and_a_short_plain_text() -> None:
    text = "\n".join(f"RUN echo {i}" for i in range(60))
    listing = lesson.CodeListing(text, "docker")
    plain = repr(listing)
    assert len(plain.splitlines()) == lesson.CODE_PLAIN_LINES + 1
    assert plain.splitlines()[-1].startswith("… 40 more lines")
    html = listing._repr_html_()
    assert "echo" in html and "59" in html


def test_a_short_listing_is_shown_whole() -> None:
    assert repr(lesson.CodeListing("FROM x\nRUN y\n", "docker")) == "FROM x\nRUN y"


def test_without_a_prediction_nothing_of_the_measurement_is_printed(capsys) -> None:  # type: ignore[no-untyped-def]
    result = lesson.check_prediction(None, 14, question="downloads")
    out = capsys.readouterr().out
    assert result.right is None and "14" not in out and "No prediction yet" in out


def test_a_prediction_is_checked_against_the_measurement(capsys) -> None:  # type: ignore[no-untyped-def]
    assert lesson.check_prediction(3, 3, question="q").right is True
    assert lesson.check_prediction(2, 3, question="q").right is False
    assert lesson.check_prediction(2.8, 3, question="q", tolerance=0.1, relative=True).right is True
    assert lesson.check_prediction({"pip", "sh"}, ["sh", "pip"], question="q").right is True
    assert "this run measured 3" in capsys.readouterr().out
