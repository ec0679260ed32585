"""Atomic file writes: write to a temporary name in the same directory, then rename.

A killed process or a full disk never leaves a partially written output under the final name.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import re
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import UserInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on error delete it.

    ``suffix`` defaults to the final path's suffix so format-sniffing writers (soundfile, numpy) work.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix if suffix is not None else final.suffix,
                                   dir=final.parent)
    except OSError as exc:
        raise UserInputError(f"{final}: cannot create it ({exc.strerror or exc}); choose a writable folder") \
            from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, Exception) and _is_write_failure(exc):
            reason = (exc.strerror if isinstance(exc, OSError) else None) or "write failed"
            raise UserInputError(f"{final}: could not be written ({reason}); nothing was saved under that name; "
                                 "free disk space or choose a writable folder") from exc
        raise


def _is_write_failure(exc: Exception) -> bool:
    """Errors of the file system (full disk, quota, permissions) as the writers we use report them."""
    if isinstance(exc, OSError):
        return True
    if type(exc).__name__ in ("LibsndfileError", "SoundFileRuntimeError"):  # soundfile
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("PytorchStreamWriter", "inline_container",
                                                                         "file write failed"))


def remove_stale_temps(path: str | os.PathLike, suffix: str | None = None) -> int:
    """Delete the temporary files that writers of ``path`` killed mid-write (``kill -9``, power loss) left next to
    it; returns how many. Call it only where no other process is writing ``path`` at the same time."""
    final = Path(path)
    suffix = suffix if suffix is not None else final.suffix
    pattern = re.compile(re.escape(f".{final.name}.") + r"[A-Za-z0-9_]{8}" + re.escape(suffix))
    removed = 0
    if final.parent.is_dir():
        for p in final.parent.glob(f".{glob.escape(final.name)}.*"):
            if pattern.fullmatch(p.name) and p.is_file():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed += 1
    return removed


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def replace_directory(staging: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a fully written ``staging`` folder onto ``final``, replacing any previous version.

    The old folder is renamed aside before the swap and deleted after it, so ``final`` is never half written.
    """
    staging, final = Path(staging), Path(final)
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
