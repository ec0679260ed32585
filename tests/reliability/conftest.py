"""Reliability suite bookkeeping: at the end of a run, print how many cases were tried, how many lost data and
how many ended in an unhandled traceback (both must be 0). See ``reliability_helpers.record``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

_TRIED: dict[str, str] = {}


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
