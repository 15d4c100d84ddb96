"""What a lesson shows besides measurements: sentences rendered from numbers, terminal commands, exercises.

The series' promise is that every number a learner reads was measured on their machine. So a sentence
that carries a measured number is never typed into a markdown cell: a code cell renders it with
`say()`, from the same measurement the notebook shows, and the sentence changes when the number does.

- `say(text)`: Markdown output (in JupyterLab it reads like the markdown cells around it).
- `command(*lines)`: the terminal command that does what the cell did, to copy and run by hand.
- `check_prediction(prediction, measured, ...)`: an exercise's check. Without a prediction it says
  how to make one and shows nothing of the answer, so stored outputs never give a solution away.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from basecamp.display import in_kernel
from basecamp.errors import InputError


def _show_markdown(text: str) -> None:

    if in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)


def say(text: str) -> None:
    """Show `text` (Markdown) as prose. Use it for every sentence that carries a measured number."""
    _show_markdown(textwrap.dedent(text).strip())


def command(*lines: str, intro: str = "The same in a terminal:") -> None:
    """Show shell command lines (`$ ...`) a learner can copy: what the cell above did, by hand."""
    if not lines:
        raise InputError("command: give at least one command line")
    body = "\n".join(line if line.startswith(("$", "#")) else f"$ {line}" for line in lines)
    _show_markdown(f"{intro}\n\n```bash\n{body}\n```")


@dataclass(frozen=True)
class PredictionCheck:
    """The outcome of one exercise check: None when no prediction was made yet."""

    question: str
    prediction: Any
    measured: Any
    right: bool | None

    def line(self) -> str:
        if self.right is None:
            return (f"No prediction yet ({self.question}): set `prediction` in the cell above, run it, "
                    "then run this cell again. The answer stays hidden until you do.")
        verdict = "right" if self.right else "not quite"
        return f"{verdict}: you predicted {self.prediction!r}; this run measured {self.measured!r} ({self.question})."


def _close(prediction: Any, measured: Any, tolerance: float | None, relative: bool) -> bool:
    if isinstance(measured, bool) or isinstance(prediction, bool):
        return bool(prediction) == bool(measured)
    if isinstance(measured, (int, float)) and isinstance(prediction, (int, float)):
        if tolerance is None:
            return math.isclose(float(prediction), float(measured))
        allowed = tolerance * abs(float(measured)) if relative else tolerance
        return abs(float(prediction) - float(measured)) <= allowed
    if isinstance(measured, (set, frozenset)) or isinstance(prediction, (set, frozenset)):
        return set(prediction) == set(measured)
    if isinstance(measured, str) and isinstance(prediction, str):
        return prediction.strip().lower() == measured.strip().lower()
    if isinstance(measured, Sequence) and isinstance(prediction, Sequence):
        return list(prediction) == list(measured)
    return bool(prediction == measured)


def check_prediction(prediction: Any, measured: Any, *, question: str, tolerance: float | None = None,
                     relative: bool = False, compare: Callable[[Any, Any], bool] | None = None) -> PredictionCheck:
    """Check a learner's `prediction` against what this run `measured`, and say so in one line.

    `tolerance`: how far a number may be off (absolute, or a fraction of `measured` with
    `relative=True`); strings compare without case; sets as sets. `compare(prediction, measured)`
    replaces the rule. With `prediction=None` nothing of the measurement is shown.
    """
    if not question:
        raise InputError("check_prediction: say what was predicted (question=...)")
    if prediction is None:
        result = PredictionCheck(question, None, None, None)
    else:
        right = compare(prediction, measured) if compare else _close(prediction, measured, tolerance, relative)
        result = PredictionCheck(question, prediction, measured, bool(right))
    print(result.line())
    return result


#: How many lines of a file or diff the plain-text form of a code display keeps (the highlighted HTML
#: keeps all of it): stored outputs stay short in plain viewers and nbval.
CODE_PLAIN_LINES = 20


class CodeListing:
    """A Dockerfile or diff for a notebook: highlighted HTML with every line, a short plain-text form."""

    def __init__(self, text: str, language: str, max_plain_lines: int = CODE_PLAIN_LINES) -> None:
        self.text, self.language, self.max_plain_lines = text, language, max_plain_lines

    def _repr_html_(self) -> str:
        from IPython.display import Code

        return str(Code(self.text, language=self.language)._repr_html_())

    def __repr__(self) -> str:
        lines = self.text.splitlines()
        if len(lines) <= self.max_plain_lines:
            return self.text.rstrip("\n")
        kept = "\n".join(lines[: self.max_plain_lines])
        return f"{kept}\n… {len(lines) - self.max_plain_lines} more lines (the highlighted listing above has them all)"


def show_code(text: str, language: str = "docker") -> None:
    """Display a listing: highlighted in JupyterLab, whole in a terminal (the stored plain text is cut short)."""

    if in_kernel():
        from IPython.display import display

        display(CodeListing(text, language))
    else:
        print(text)
