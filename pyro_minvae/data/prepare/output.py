"""The output folder of ``prepare folder`` / ``prepare ntcd-timit``: checked, locked, written aside, swapped in.

A prepare command writes its whole index (manifest, converted audio, lip arrays) into a hidden staging folder
next to ``--out`` and swaps it in only when complete (:func:`pyro_minvae.atomic.replace_directory`), so an
interrupted or failed run leaves the previous index as it was. Because the swap replaces the folder as a whole,
``--out`` must be new, empty or an earlier index (it holds ``manifest.jsonl`` and ``.done.json`` and nothing
but the entries in :data:`INDEX_ENTRIES`); anything else - the recordings themselves, a folder holding them,
a user's other files, a file - is refused with one line before anything is written. Two prepare runs into one
``--out`` at the same time: the second is refused (a lock file next to the folder while the first one runs).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Iterator

from ...atomic import current_umask, os_error_message, replace_directory
from ...errors import Interrupted, UserInputError

# What an index written by a prepare command holds at its top level.
INDEX_ENTRIES = frozenset({"manifest.jsonl", ".done.json", "audio", "lips", "landmarks"})


def _inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies below it (both resolved)."""
    return a == b or b in a.parents


def check_output_folder(out_dir: Path, inputs: Path | None = None) -> None:
    """Refuse an ``out_dir`` whose replacement would lose something (module docstring); one-line
    ``UserInputError`` naming the folder and the fix."""
    out_dir = Path(out_dir)
    if inputs is not None and _inside(Path(inputs).resolve(), out_dir.resolve()):
        raise UserInputError(
            f"{out_dir}: the output folder holds the input folder {inputs} (the index replaces "
            "its output folder as a whole); choose another --out"
        )
    if out_dir.is_symlink():  # the swap would replace the link, not the folder it points to
        raise UserInputError(f"{out_dir}: is a symbolic link; give the folder it points to as --out")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserInputError(f"{out_dir}: exists and is not a folder; choose another --out")
    if not out_dir.exists():
        return
    try:
        names = {p.name for p in out_dir.iterdir()}
    except OSError as exc:
        raise UserInputError(os_error_message(exc, out_dir, "cannot read the output folder")) from None
    if not names:
        return
    if not {"manifest.jsonl", ".done.json"} <= names:
        raise UserInputError(
            f"{out_dir}: the folder exists and is not an index written by `pyro-minvae prepare` "
            "(it would be replaced as a whole); choose a new or empty --out"
        )
    other = sorted(names - INDEX_ENTRIES)
    if other:
        raise UserInputError(
            f"{out_dir}: this index also holds {other[0]!r}, which `prepare` did not write (the "
            "folder is replaced as a whole); move it elsewhere or choose another --out"
        )


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` next to ``out_dir`` (refuse at once when another run holds it); removed afterwards."""
    path = out_dir.parent / f".{out_dir.name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UserInputError(os_error_message(exc, out_dir.parent, "cannot write in the folder")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserInputError(
                f"{out_dir}: another `pyro-minvae prepare` is writing this folder now; wait for "
                "it to finish or choose another --out"
            ) from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)


def _remove_stale(out_dir: Path) -> None:
    """Staging folders of earlier runs that were killed (``kill -9``, power loss); call with the lock held."""
    for p in out_dir.parent.glob(f".{out_dir.name}.*.partial"):
        shutil.rmtree(p, ignore_errors=True)
    shutil.rmtree(out_dir.parent / f".{out_dir.name}.partial", ignore_errors=True)  # older versions' name


@contextlib.contextmanager
def staged_output(out_dir: Path, inputs: Path | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder next to ``out_dir``; on success it replaces ``out_dir``, on any error or
    interruption it is removed and ``out_dir`` is left as it was. ``inputs`` (the folder being indexed) must not
    lie inside ``out_dir``."""
    out_dir = Path(os.path.abspath(out_dir))  # "." or "x/.." have no name to stage and lock next to
    check_output_folder(out_dir, inputs)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(os_error_message(exc, out_dir.parent, "cannot create it")) from None
    with _lock(out_dir):
        check_output_folder(out_dir, inputs)  # again, now that no other run can change it
        _remove_stale(out_dir)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
        except OSError as exc:
            raise UserInputError(os_error_message(exc, out_dir.parent, "cannot write in the folder")) from None
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes a private 0700 folder
        try:
            yield staging
            replace_directory(staging, out_dir)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and not staging.exists():  # the signal came right after the swap
                raise Interrupted(
                    getattr(exc, "signum", signal.SIGINT), f"{out_dir} holds the new index (it was complete)"
                ) from None
            shutil.rmtree(staging, ignore_errors=True)
            raise
