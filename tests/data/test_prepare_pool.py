"""The process pool of `prepare demo`: workers ignore Ctrl-C (the parent coordinates) and die on SIGTERM, so
``Pool.terminate`` cannot hang on a worker that inherited the CLI's Python-level handlers; results keep order."""

import os
import signal

import pytest

from pyro_minvae.data.prepare import demo
from pyro_minvae.parallel import raise_on_stop_signals


def _dispositions(i: int) -> tuple:
    return i, os.getpid(), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


@pytest.fixture
def cli_handlers():
    """The handlers the CLI installs (SIGINT/SIGTERM raise Interrupted), restored afterwards."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    raise_on_stop_signals()
    yield
    for s, h in old.items():
        signal.signal(s, h)


def test_pool_workers_die_on_sigterm_and_leave_ctrl_c_to_the_parent(cli_handlers):
    out = demo._map(_dispositions, list(range(12)), workers=2, backend=None, desc="t", progress=False, chunksize=1)
    assert [o[0] for o in out] == list(range(12))
    workers = {o[1] for o in out}
    assert os.getpid() not in workers  # the tasks ran in the pool
    assert {o[2] for o in out} == {signal.SIG_IGN} and {o[3] for o in out} == {signal.SIG_DFL}
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)  # the parent's stay


def test_few_items_run_inline():
    out = demo._map(_dispositions, [0, 1], workers=2, backend=None, desc="t", progress=False)
    assert {o[1] for o in out} == {os.getpid()}
