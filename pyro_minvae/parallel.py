"""Worker processes for batch runs (``enhance --manifest``, ``evaluate``) that stop promptly and keep finished work.

:func:`run_tasks` runs ``fn(*args)`` for each task in ``jobs`` spawned processes (or in this process when
``jobs == 1``) and hands every result to ``on_result`` in this process as soon as it arrives, so callers persist
finished work at once. Stopping:

- SIGINT (Ctrl-C, to the process group or to this process alone) and SIGTERM reach this process only (workers
  ignore SIGINT); it stops handing out tasks, asks the workers to stop (SIGTERM: a worker unwinds, so atomic writes
  delete their temporary files), keeps the results that already arrived, kills a worker still alive after
  ``grace_s`` seconds and raises :class:`~pyro_minvae.errors.Interrupted` (exit status 130 / 143).
- If this process dies without cleaning up (``kill -9``), each worker gets SIGTERM from the kernel
  (``PR_SET_PDEATHSIG`` on Linux) and also checks ``os.getppid()`` once a second, so none runs on.
- A worker that dies in a task (out of memory, a crash) costs that task only: ``on_lost(index, reason)`` is
  called and a fresh worker takes the remaining tasks.

Also here: the ``--shard k/N`` parser and the shard rule shared by the batch commands.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from typing import Callable, Iterator, Optional, Sequence, Tuple, TypeVar

from .errors import Interrupted, UserInputError, one_line

T = TypeVar("T")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# ---- shards --------------------------------------------------------------------------------------------------------
def parse_shard(text: str, option: str = "--shard") -> Tuple[int, int]:
    """``"k/N"`` -> ``(k, N)`` with ``1 <= k <= N``; anything else is a one-line ``UserInputError``."""
    k, sep, n = str(text).partition("/")
    try:
        kk, nn = int(k), int(n)
    except ValueError:
        kk = nn = 0
    if not sep or not (nn >= 1 and 1 <= kk <= nn):
        raise UserInputError(f"{option} {text!r}: expected k/N with 1 <= k <= N, e.g. {option} 1/4")
    return kk, nn


def take_shard(items: Sequence[T], shard: Optional[Tuple[int, int]]) -> list:
    """The ``k``-th of ``N`` interleaved parts of ``items`` (every N-th item from the k-th); all for ``None``."""
    if shard is None:
        return list(items)
    k, n = shard
    return list(items[k - 1 :: n])


# ---- signals in the coordinating process ---------------------------------------------------------------------------
class StopRequest:
    """Set by SIGINT/SIGTERM while :func:`stop_signals` is active; ``raise_now`` makes the handler raise at once
    (used when the work runs in this process)."""

    def __init__(self, raise_now: bool = False):
        self.signum: Optional[int] = None
        self.raise_now = raise_now

    def __call__(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self.raise_now:
            self.raise_now = False  # a second signal during clean-up must not interrupt the clean-up
            raise Interrupted(signum)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def raise_on_stop_signals() -> None:
    """From now on SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (the CLI's setting: a command
    stopped anywhere unwinds, so atomic writes clean up, and exits 130 / 143 with one line)."""
    if threading.current_thread() is threading.main_thread():
        for s in _STOP_SIGNALS:
            signal.signal(s, _raise_interrupted)


@contextlib.contextmanager
def stop_signals(raise_now: bool = False) -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM for the duration (main thread only; elsewhere nothing is installed)."""
    stop = StopRequest(raise_now)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {s: signal.signal(s, stop) for s in _STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred_stop() -> Iterator[StopRequest]:
    """Hold SIGINT/SIGTERM back for a short critical section (atomic writes of the coordinating process: a stop
    raised inside ``tempfile.mkstemp`` would leak its file); :class:`Interrupted` is raised at the end if one came."""
    with stop_signals() as stop:
        yield stop
    if stop.signum is not None:
        raise Interrupted(stop.signum)


# ---- worker side ---------------------------------------------------------------------------------------------------
def _exit_on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM (group + parent) must not cut the unwinding
    raise SystemExit(128 + signum)  # unwinds: atomic writes delete their temporary files


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5.0)
            os._exit(1)


def become_worker(parent_pid: int) -> None:
    """Make this process a well-behaved worker of ``parent_pid``: ignore SIGINT (the parent coordinates), unwind on
    SIGTERM, and die with the parent (``PR_SET_PDEATHSIG`` on Linux plus a ``getppid`` watchdog thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        raise SystemExit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="watch-parent").start()


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker_main(conn, parent_pid: int, threads: int, payload: bytes) -> None:
    code = 0
    try:
        _serve(conn, parent_pid, threads, payload)
    except SystemExit as exc:  # SIGTERM: the stack is unwound (temporary files deleted); stop without more ado
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        exit_without_teardown(code)


def exit_without_teardown(code: int) -> None:
    """Flush the logs, stdout and stderr, then end the process at once with ``code``: no interpreter teardown,
    which is slow with torch loaded, noisy when a signal lands in it, and where gloo's threads can abort a
    finished ``torchrun`` rank (:func:`~pyro_minvae.training.distributed.exit_worker_process`)."""
    import logging

    with contextlib.suppress(Exception):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _serve(conn, parent_pid: int, threads: int, payload: bytes) -> None:
    become_worker(parent_pid)  # before the heavy imports that unpickling ``fn`` triggers: a worker is stoppable
    try:
        from .plugins import load_env_plugins

        load_env_plugins()  # the parent's --plugin files: their components must be known before unpickling
        fn, initializer, initargs = pickle.loads(payload)
        _set_threads(threads)
        if initializer is not None:
            initializer(*initargs)
    except Exception as exc:
        conn.send(("init-failed", one_line(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        index, args = msg
        try:
            out = ("ok", fn(*args))
        except Exception as exc:
            out = ("error", one_line(exc))
        conn.send((index, out))


# ---- coordinator ---------------------------------------------------------------------------------------------------
class TaskError(Exception):
    """A task raised in a worker; ``reason`` is its one-line message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Worker:
    def __init__(self, ctx, threads: int, fn, initializer, initargs):
        parent, child = ctx.Pipe()
        self.conn = parent
        env = {k: os.environ.get(k) for k in _THREAD_ENV}
        os.environ.update({k: str(threads) for k in _THREAD_ENV})  # inherited by the spawned interpreter
        ignored = signal.getsignal(signal.SIGINT)
        main = threading.current_thread() is threading.main_thread() and ignored is not None
        try:
            if main:  # a spawned Python that starts with SIGINT ignored never raises KeyboardInterrupt at import
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            payload = pickle.dumps((fn, initializer, initargs))
            self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid(), threads, payload), daemon=True)
            self.proc.start()
        finally:
            if main:
                signal.signal(signal.SIGINT, ignored)
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.task: Optional[int] = None
        self.ready = False


def run_tasks(
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    jobs: int,
    threads: int = 1,
    initializer: Optional[Callable] = None,
    initargs: tuple = (),
    on_result: Callable[[int, object], None],
    on_error: Callable[[int, str], None],
    grace_s: float = 3.0,
) -> None:
    """Run ``fn(*tasks[i])`` for every ``i``; ``on_result(i, value)`` or ``on_error(i, reason)`` per task.

    ``fn`` and ``initializer`` must be picklable module-level functions (workers are spawned). ``threads`` torch/
    BLAS threads per worker (also in this process when ``jobs == 1``). An exception of ``fn`` is reported through
    ``on_error`` with its one-line reason (so is a worker that died in the task); the run goes on. SIGINT/SIGTERM
    stop the run as the module docstring says and raise :class:`Interrupted` after the finished results were
    handed over. An ``initializer`` that fails raises ``UserInputError`` with its reason.
    """
    if not tasks:
        return
    if jobs <= 1:
        _run_inline(fn, tasks, threads, initializer, initargs, on_result, on_error)
    else:
        _run_pool(fn, tasks, min(jobs, len(tasks)), threads, initializer, initargs, on_result, on_error, grace_s)


def _run_inline(fn, tasks, threads, initializer, initargs, on_result, on_error) -> None:
    with stop_signals(raise_now=True):
        _set_threads(threads)
        if initializer is not None:
            initializer(*initargs)
        for i, args in enumerate(tasks):
            try:
                value = fn(*args)
            except Exception as exc:
                on_error(i, one_line(exc))
            else:
                on_result(i, value)


def _run_pool(fn, tasks, jobs, threads, initializer, initargs, on_result, on_error, grace_s) -> None:
    from multiprocessing import get_context
    from multiprocessing.connection import wait

    ctx = get_context("spawn")
    todo = deque(range(len(tasks)))
    workers: list[_Worker] = []

    def deliver(w: _Worker, msg) -> None:
        if msg[0] == "init-failed":
            raise UserInputError(f"a worker process could not start: {msg[1]}")
        if msg[0] == "ready":
            w.ready = True
            return
        index, (status, value) = msg
        w.task = None
        if status == "ok":
            on_result(index, value)
        else:
            on_error(index, value)

    def drain(w: _Worker) -> bool:
        """Hand over every message ``w`` has sent; False once its pipe is closed."""
        try:
            while w.conn.poll():
                deliver(w, w.conn.recv())
        except (EOFError, OSError):
            return False
        return True

    with stop_signals() as stop:
        try:
            workers = [_Worker(ctx, threads, fn, initializer, initargs) for _ in range(jobs)]
            while (todo or any(w.task is not None for w in workers)) and stop.signum is None:
                for w in workers:
                    if w.ready and w.task is None and todo:
                        w.task = todo.popleft()
                        w.conn.send((w.task, tasks[w.task]))
                ready = wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=0.2)
                for w in list(workers):
                    if w.conn in ready:
                        drain(w)
                    if w.proc.sentinel in ready or not w.proc.is_alive():
                        w.proc.join(0.5)
                        if w.proc.is_alive():
                            continue
                        drain(w)
                        stopped = _stopped_by(w.proc.exitcode)
                        if stopped is not None:  # SIGTERM/SIGINT reached the worker (e.g. a system shutdown)
                            stop.signum = stop.signum or stopped
                        elif w.task is not None:
                            on_error(w.task, f"worker process died ({_exit_text(w.proc.exitcode)}) in this task")
                        elif not w.ready:
                            raise UserInputError(
                                f"a worker process died while starting ({_exit_text(w.proc.exitcode)})"
                            )
                        workers.remove(w)
                        w.conn.close()
                        if todo:
                            workers.append(_Worker(ctx, threads, fn, initializer, initargs))
        finally:
            _shut_down(workers, graceful=stop.signum is None, grace_s=grace_s, drain=drain)
        if stop.signum is not None:
            raise Interrupted(stop.signum)


def _stopped_by(exitcode: Optional[int]) -> Optional[int]:
    """The stop signal (SIGINT/SIGTERM) that ended a worker with ``exitcode``, else ``None``."""
    for sig in _STOP_SIGNALS:
        if exitcode in (-sig, 128 + sig):
            return sig
    return None


def _exit_text(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in iter(signal.Signals) else str(-exitcode)
        return f"killed by {name}" + (", out of memory?" if -exitcode == signal.SIGKILL else "")
    return f"exit code {exitcode}"


def _shut_down(workers, graceful: bool, grace_s: float, drain) -> None:
    """Stop every worker: a polite ``None`` after a finished run, SIGTERM otherwise; SIGKILL after ``grace_s``.
    Results that arrive meanwhile are still handed over."""
    from multiprocessing.connection import wait

    for w in workers:
        with contextlib.suppress(Exception):
            if graceful:
                w.conn.send(None)
            elif w.proc.is_alive():
                os.kill(w.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = [w for w in workers if w.proc.is_alive()]
    while alive and time.monotonic() < deadline:
        wait([w.conn for w in alive] + [w.proc.sentinel for w in alive], timeout=0.1)
        for w in alive:
            with contextlib.suppress(Exception):
                drain(w)
        alive = [w for w in alive if w.proc.is_alive()]
    for w in alive:
        w.proc.kill()
    for w in workers:
        w.proc.join(2.0)
        with contextlib.suppress(Exception):
            drain(w)
        w.conn.close()
