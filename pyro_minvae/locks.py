"""One writer per output folder: ``with run_lock(folder, "train"):`` refuses a second process (or a second call in
this process) that wants to write into the same folder, naming the holder's pid.

The lock is a POSIX record lock (``fcntl.lockf``) on ``<folder>/.pyro-minvae.lock``, so the kernel drops it when
its process dies: a lock file left by a killed run (its pid no longer running) is simply taken over. Record locks
are per process, not inherited by forked workers, and do not conflict inside one process, hence the in-process
table of held folders (which also answers for this process: closing *any* descriptor of a locked file drops a
record lock, so this process never reads its own lock file). The file holds ``{"pid", "host", "what", "since"}``
as JSON for the message and is removed on release; an acquirer checks that the file it locked is still the one at
the path (another releaser may have unlinked it in between) and retries otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import UserInputError

LOCK_NAME = ".pyro-minvae.lock"

_HELD: dict[str, dict] = {}  # resolved folder -> the holder's info, for the folders this process holds
_HELD_GUARD = threading.Lock()


class FolderInUseError(UserInputError):
    """Another run (``pid``) is writing into the folder."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


def lock_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / LOCK_NAME


def read_holder(folder: str | os.PathLike) -> dict:
    """The lock file's JSON (``{}`` when absent or unreadable)."""
    with _HELD_GUARD:
        mine = _HELD.get(str(Path(folder).resolve()))
    return dict(mine) if mine is not None else _read_file(folder)


def _read_file(folder: str | os.PathLike) -> dict:
    try:
        return json.loads(lock_path(folder).read_text())
    except (OSError, ValueError):
        return {}


def _busy(folder: Path, holder: dict, what: str) -> FolderInUseError:
    pid = holder.get("pid")
    who = f"{holder.get('what') or 'pyro-minvae'} (pid {pid if pid is not None else 'unknown'}"
    if holder.get("since"):
        who += f", since {holder['since']}"
    who += ")"
    return FolderInUseError(
        f"{folder}: another {who} is writing into this folder; wait for it to finish or give "
        f"this {what} another output folder",
        pid,
    )


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the folder's lock for the ``with`` block (``what``: the command, e.g. ``"train"``, shown to others).

    Creates ``folder`` if needed. Raises :class:`FolderInUseError` (a ``UserInputError``) when another live process
    or an enclosing ``run_lock`` in this process holds it. Yields the folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"{folder}: cannot create it ({exc.strerror or exc}); choose a writable folder") from None
    key = str(folder.resolve())
    with _HELD_GUARD:
        if key in _HELD:
            raise _busy(folder, _HELD[key], what)
        _HELD[key] = {"pid": os.getpid(), "what": what, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    fd = None
    try:
        fd = _acquire(folder, _HELD[key])
        yield folder
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                lock_path(folder).unlink()
            os.close(fd)  # closing drops the record lock
        with _HELD_GUARD:
            _HELD.pop(key, None)


def assert_free(folder: str | os.PathLike, what: str) -> None:
    """Raise :class:`FolderInUseError` if another process (or this one) holds ``folder``'s lock; creates nothing.

    For early checks before slow work; :func:`run_lock` is what actually excludes others.
    """
    folder = Path(folder)
    with _HELD_GUARD:
        mine = _HELD.get(str(folder.resolve()))
    if mine is not None:
        raise _busy(folder, mine, what)
    try:
        fd = os.open(lock_path(folder), os.O_RDWR)
    except OSError:
        return  # no lock file (or not readable: run_lock will say so)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a probe: closing the descriptor drops it again
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            raise _busy(folder, _read_file(folder), what) from None
    finally:
        os.close(fd)


def _acquire(folder: Path, info: dict) -> int:
    path = lock_path(folder)
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserInputError(
                f"{folder}: cannot create its lock file ({exc.strerror or exc}); choose a writable folder"
            ) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise UserInputError(
                    f"{folder}: cannot lock it ({exc.strerror or exc}); choose a local folder"
                ) from None
            raise _busy(folder, _read_file(folder), info["what"]) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file after we opened it: lock the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**info, "host": socket.gethostname()}).encode(), 0)
        return fd
    raise UserInputError(f"{folder}: could not take its lock (it keeps changing); try again")
