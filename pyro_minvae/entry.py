"""How every entry point ends on a user's mistake or a stop signal: one line and an exit status, no traceback.

The ``pyro-minvae`` command (``cli/main.py``) and the scripts in ``scripts/`` share :func:`user_error_ending`, so a
missing checkpoint, a full disk or Ctrl-C reads the same wherever it happens. A bug (any other exception) still
shows its traceback.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from .errors import Interrupted, MissingDependencyError, UserInputError

# Operating-system errors that are about the user's files or environment (full disk, permissions, a name too long
# for the filesystem, a link loop), not bugs: one line naming the file, with the fix for that errno.
_NAME_HINTS = {
    errno.ENAMETOOLONG: "shorten the name (at most 255 bytes per file or folder name)",
    errno.ELOOP: "a symbolic link points back at itself; fix or remove the link",
}
_MORE_ENV_ERRNOS = {errno.ENXIO, errno.ETXTBSY, errno.ENODEV, errno.EMFILE, errno.ENFILE}

USER_ERROR_STATUS = 2


@dataclass(frozen=True)
class Ending:
    """The one line to print on stderr and the process's exit status."""

    message: str
    exit_code: int


def user_error_ending(exc: BaseException) -> Ending | None:
    """The ending for ``exc`` if it is the user's or the environment's doing, else ``None`` (a bug: re-raise it).

    ``UserInputError`` / ``MissingDependencyError``: ``error: <message>``, status 2. ``Interrupted`` (Ctrl-C or
    SIGTERM once the stop handlers are installed): its own line, status 128 + signal. ``KeyboardInterrupt`` from
    Python's default handler: status 130. ``OSError`` with an environment errno (full disk, permissions, ...):
    ``error: FILE: reason; fix``, status 2.
    """
    if isinstance(exc, (UserInputError, MissingDependencyError)):
        return Ending(f"error: {exc}", USER_ERROR_STATUS)
    if isinstance(exc, Interrupted):
        return Ending(str(exc), exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        stop = Interrupted()  # Ctrl-C before the stop handlers were installed: the same line and status
        return Ending(str(stop), stop.exit_code)
    if isinstance(exc, OSError):
        from .atomic import ENV_ERRNOS, write_error_hint  # the fix differs per errno (full disk vs read-only)

        if exc.errno not in ENV_ERRNOS | frozenset(_NAME_HINTS) | _MORE_ENV_ERRNOS:
            return None
        where = f"{exc.filename}: " if exc.filename else ""
        hint = _NAME_HINTS.get(exc.errno) or write_error_hint(exc.errno)
        return Ending(f"error: {where}{exc.strerror or exc}; {hint}", USER_ERROR_STATUS)
    return None


def run_script(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main(argv)`` as the CLI runs a command; return the exit status for ``sys.exit``.

    Ctrl-C and SIGTERM raise :class:`~pyro_minvae.errors.Interrupted` from here on (so atomic writes clean up and
    the script's finished work stays); user errors and stops end with :func:`user_error_ending`'s line.
    """
    from .parallel import raise_on_stop_signals

    raise_on_stop_signals()
    try:
        status = int(main(argv) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at interpreter exit
        return status
    except BrokenPipeError:  # the reader of stdout went away (``script | head``): stop quietly, as click does
        _discard_stdout()
        return 1
    except BaseException as exc:
        ending = user_error_ending(exc)
        if ending is None:
            raise
        print(ending.message, file=sys.stderr, flush=True)
        return ending.exit_code


def _discard_stdout() -> None:
    """Point stdout at the null device, so that flushing what is still buffered at exit cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
