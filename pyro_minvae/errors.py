"""User-facing errors: one line naming the file and the fix, printed without a traceback by the CLI."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad input from the user (a file, an option). The message is one line: what, where, how to fix."""


class MissingDependencyError(RuntimeError):
    """A tool or Debian package the requested step needs is not available; the message says how to get it."""
