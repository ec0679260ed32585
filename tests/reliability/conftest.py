"""Reliability suite bookkeeping: at the end of a run, print how many cases were tried, how many lost data and
how many ended in an unhandled traceback (both must be 0). See ``reliability_helpers.record``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_TRIED: dict[str, str] = {}


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """``ckpts[family]``: a tiny untrained checkpoint of that family (``make_checkpoint``'s defaults), made on
    first use and shared by the suite's cases, which only read it."""
    from reliability_helpers import make_checkpoint

    folder = tmp_path_factory.mktemp("checkpoints")

    class Made(dict):
        def __missing__(self, family):
            self[family] = make_checkpoint(folder / f"{family}.pt", family)
            return self[family]

    return Made()


@pytest.fixture(scope="session")
def avae(ckpts):
    """The tiny A-VAE checkpoint (``ckpts["avae"]``), the model of the cases that need any model at all."""
    return ckpts["avae"]


@pytest.fixture(scope="session")
def noisy_1s(tmp_path_factory):
    """``noisy.wav``: 1 s of speech-like audio at 16 kHz, shared read-only by the suite's cases."""
    from reliability_helpers import speech_like, write_wav

    return write_wav(tmp_path_factory.mktemp("noisy") / "noisy.wav", speech_like(1.0))


def pytest_runtest_logreport(report):
    if "reliability" in report.nodeid or "slow/test_soak" in report.nodeid:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            _TRIED[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter):
    if not _TRIED:
        return
    from reliability_helpers import OUTCOMES

    ran = {k: v for k, v in _TRIED.items() if v != "skipped"}
    loss = sum(1 for k in ran if OUTCOMES.get(k, {}).get("data_loss"))
    tb = sum(1 for k in ran if OUTCOMES.get(k, {}).get("traceback"))
    failed = sum(1 for v in ran.values() if v == "failed")
    terminalreporter.write_line(
        f"reliability: {len(ran)} cases tried, {loss} lose data, {tb} unhandled tracebacks, {failed} failed"
    )
