"""User-facing errors: one line naming the file and the fix, printed without a traceback by the CLI."""

from __future__ import annotations

import math
import signal


class UserInputError(ValueError):
    """Bad input from the user (a file, an option). The message is one line: what, where, how to fix."""


class MissingDependencyError(RuntimeError):
    """A tool or Debian package the requested step needs is not available; the message says how to get it."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM after keeping its finished work.

    ``signum`` is the signal; the CLI exits with ``exit_code`` (128 + signum: 130 for SIGINT, 143 for SIGTERM) and
    prints ``str(exc)``, which says what was kept and how to resume.
    """

    def __init__(self, signum: int = signal.SIGINT, message: str = ""):
        super().__init__(message)
        self.signum = int(signum)
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name if self.signum in iter(signal.Signals) else f"signal {self.signum}"
        return f"interrupted ({name})" + (f"; {self.message}" if self.message else "")


def is_positive_number(value) -> bool:
    """Whether an option's ``value`` is a finite number > 0 (an int or a float, not a bool)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def flatten(text: object) -> str:
    """``text`` as one line: runs of whitespace (newlines included) become one space."""
    return " ".join(str(text).split())


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A one-line reason for ``exc``: a user error's own message; otherwise ``"Type: message"``; its lines joined,
    cut to about ``limit`` characters.

    Used wherever a failure is reported in a list (batch enhancement, evaluation rows, worker deaths) rather than
    raised.
    """
    text = flatten(exc)
    if len(text) > limit:
        text = text[:limit].rstrip() + " ..."
    if isinstance(exc, (UserInputError, MissingDependencyError)):
        return text or type(exc).__name__
    name = type(exc).__name__
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
