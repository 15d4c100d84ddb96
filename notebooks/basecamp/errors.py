"""One exception family for the lab. Every message says what was run and what it printed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LabError(Exception):
    """Base of every error the lab raises on purpose; notebooks catch this one."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the error's name and its message, nothing else."""
        return [f"{type(self).__name__}: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


class CommandError(LabError):
    """An external command (docker CLI, debootstrap, poetry, ...) exited non-zero."""

    def __init__(self, command: Sequence[str], returncode: int, output: str = "", hint: str = "") -> None:
        self.command = list(command)
        self.returncode = returncode
        self.output = output
        self.hint = hint
        tail = "\n".join(output.rstrip().splitlines()[-25:])
        message = f"`{' '.join(self.command)}` exited with {returncode}"
        if tail:
            message += f"; last lines of its output:\n{tail}"
        if hint:
            message += f"\n{hint}"
        super().__init__(message)


class EngineError(LabError):
    """No Docker engine answers, or it cannot be started here. The message says how to fix it."""


class BuildError(CommandError):
    """A `docker build` failed; carries the failing instruction and the last log lines."""

    def __init__(
        self,
        command: Sequence[str],
        returncode: int,
        output: str = "",
        failed_step: str | None = None,
    ) -> None:
        self.failed_step = failed_step
        #: The failing RUN's own exit code (127: command not found), when the log says it.
        self.step_exit_code: int | None = None
        #: The build's whole log, and its steps as basecamp.progress read them (set by basecamp.build).
        self.log = output
        self.steps: list[Any] = []
        hint = f"failing instruction: {failed_step}" if failed_step else ""
        super().__init__(command, returncode, output, hint)


class InputError(LabError, ValueError):
    """A bad argument from a notebook or the command line: names the input and what is allowed."""
