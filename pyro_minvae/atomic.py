"""Atomic file writes: write to a temporary name in the same directory, then rename.

A killed process or a full disk never leaves a partially written output under the final name. Outputs get the
usual permissions of a new file (``0666 & ~umask``), not the private ``0600`` of a temporary file. When a write
fails because of the file system, the user sees the operating system's reason and a fix that fits it
(:func:`os_error_message`): free space for a full disk, a writable folder for a read-only or forbidden one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import re
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import UserInputError

# What to do about a failed write, per errno (the fix differs: a full disk needs space, a read-only or forbidden
# folder needs another folder). Other errnos get the generic last hint.
_FREE_SPACE = "free disk space or choose a writable folder"
_WRITABLE = "choose a writable folder"
WRITE_ERROR_HINTS = {
    errno.ENOSPC: _FREE_SPACE,
    errno.EDQUOT: "free space in your disk quota or choose a writable folder",
    errno.EFBIG: "the file-size limit was reached (see `ulimit -f`); raise it, free disk space or choose a "
    "writable folder",
    errno.EROFS: _WRITABLE,
    errno.EACCES: _WRITABLE,
    errno.EPERM: _WRITABLE,
    errno.ENOENT: "check the path or " + _WRITABLE,
    errno.ENOTDIR: "check the path (a part of it is a file) or " + _WRITABLE,
    errno.EEXIST: _WRITABLE,  # a file stands where a folder must be created
}
ENV_ERRNOS = frozenset(WRITE_ERROR_HINTS) | {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EIO}
_OTHER_HINT = "check free disk space and permissions, or choose a writable folder"


class OutputWriteError(UserInputError):
    """An output could not be written (full disk, read-only or forbidden folder): a problem of where the output
    goes, not of one input, so a batch stops instead of skipping the input it was working on."""


def write_error_hint(err: int | None) -> str:
    """The fix to suggest for an ``OSError`` with errno ``err`` while writing (see ``WRITE_ERROR_HINTS``)."""
    return WRITE_ERROR_HINTS.get(err, _OTHER_HINT)


def os_error_message(exc: OSError, path: str | os.PathLike | None = None, what: str = "could not be written") -> str:
    """``"PATH: what (OS reason); fix"``: one line for an ``OSError`` of the environment (disk, permissions).

    ``path`` defaults to the file the error names; the reason is ``strerror`` (e.g. "No space left on device").
    """
    where = path if path is not None else exc.filename
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__)
    text = f"{what} ({reason}); {write_error_hint(exc.errno)}"
    return f"{where}: {text}" if where is not None else text


def new_file_mode() -> int:
    """The permission bits a newly created file gets in this process: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """This process's umask (new folders get ``0o777 & ~umask``)."""
    try:  # Linux >= 4.7 reports it without changing it (os.umask() sets as it reads: racy with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on error delete it.

    ``suffix`` defaults to the final path's suffix so format-sniffing writers (soundfile, numpy) work.
    """
    final = Path(path)
    if final.is_dir():
        raise OutputWriteError(
            f"{final}: is a folder; give the name of a file to write (e.g. "
            f"{final / ('out' + (suffix or final.suffix or '.wav'))})"
        )
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=suffix if suffix is not None else final.suffix, dir=final.parent
        )
    except OSError as exc:
        raise OutputWriteError(os_error_message(exc, final, "cannot create it")) from None
    try:
        os.fchmod(fd, new_file_mode())  # mkstemp makes 0600; writers reopen the path and keep these bits
    except OSError:
        pass
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException as exc:
        os_exc = _os_reason(exc, tmp_path) if isinstance(exc, Exception) and _is_write_failure(exc) else None
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if os_exc is not None:
            reason = (os_exc.strerror or os.strerror(os_exc.errno)) if os_exc.errno else "write failed"
            raise OutputWriteError(
                f"{final}: could not be written ({reason}); nothing was saved under that name; "
                f"{write_error_hint(os_exc.errno)}"
            ) from exc
        raise


def _is_write_failure(exc: Exception) -> bool:
    """Errors of the file system (full disk, quota, permissions) as the writers we use report them."""
    if isinstance(exc, OSError):
        return True
    if type(exc).__name__ in ("LibsndfileError", "SoundFileRuntimeError"):  # soundfile
        return True
    return isinstance(exc, RuntimeError) and any(
        s in str(exc) for s in ("PytorchStreamWriter", "inline_container", "file write failed")
    )


def _os_reason(exc: Exception, tmp: Path) -> OSError:
    """The ``OSError`` behind a failed write. Writers such as libsndfile and torch report a failed write without
    its errno; then a probe write next to ``tmp`` (before ``tmp`` is deleted, so a full disk is still full) shows
    the operating system's reason. Returns an ``OSError`` whose ``errno`` is ``None`` when nothing shows it."""
    if isinstance(exc, OSError) and exc.errno:
        return exc
    with contextlib.suppress(OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and tmp.exists() and tmp.stat().st_size >= soft - 65536:
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    return _probe_write(tmp.parent) or OSError(None, "write failed")


def _probe_write(folder: Path, size: int = 1 << 20) -> OSError | None:
    """Write and delete ``size`` bytes in ``folder``; the ``OSError`` that stops it, or ``None``."""
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        with os.fdopen(fd, "wb") as f:
            block = b"\0" * 65536
            for _ in range(size // len(block)):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        return None
    except OSError as exc:
        return exc
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse early (before hours of work) an output file ``path`` that cannot be written: a folder under that
    name, a parent that is a file, or a nearest existing folder without write permission."""
    final = Path(path)
    if final.is_dir():
        raise OutputWriteError(f"{final}: is a folder; give the name of a file to write")
    parent = final.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputWriteError(
            os_error_message(OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)), final, "cannot create it")
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputWriteError(
            os_error_message(OSError(errno.EACCES, os.strerror(errno.EACCES)), final, "cannot create it")
        )


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
    if old.is_dir() and not final.exists():  # an earlier swap was killed between its two renames: restore it
        old.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    swapped = False
    try:
        with _signals_deferred():  # Ctrl-C/SIGTERM between the two renames would leave no folder under ``final``
            if final.exists():
                final.rename(old)
            staging.rename(final)
            swapped = True
    finally:  # also when a signal held back above is delivered now
        if swapped:
            _remove_tree_then_raise(old)
        elif old.is_dir() and not final.exists():  # the second rename failed: put the previous folder back
            old.rename(final)


def _remove_tree_then_raise(path: Path) -> None:
    """``rmtree(path)`` to the end even when Ctrl-C/SIGTERM arrives meanwhile; the interruption is re-raised
    after it (a half-deleted old copy would be left otherwise)."""
    pending = None
    while True:
        try:
            shutil.rmtree(path, ignore_errors=True)
            break
        except KeyboardInterrupt as exc:
            pending = pending or exc
    if pending is not None:
        raise pending


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a few system calls; they are delivered right after."""
    import signal

    stop = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    except (AttributeError, OSError, ValueError):  # not on this platform
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
