"""RowLog: rows appended file by file survive a stop, are read back on the next run, and the stop says so."""

import signal

import pytest

from pyro_minvae.errors import Interrupted
from pyro_minvae.evaluation.row_log import RowLog


def test_rows_survive_a_stop_and_are_read_back(tmp_path):
    path = tmp_path / "rows.jsonl"
    log = RowLog(path)
    assert log.rows == []
    with pytest.raises(Interrupted) as stop:
        with log.resumable():
            log.add([{"id": "a", "x": 1.5}, {"id": "a", "x": 2.0}])
            raise Interrupted(signal.SIGTERM)
    assert stop.value.signum == signal.SIGTERM
    assert str(stop.value) == f"interrupted (SIGTERM); the finished files' rows are in {path}; the same command resumes"
    again = RowLog(path)
    assert again.rows == [{"id": "a", "x": 1.5}, {"id": "a", "x": 2.0}]
    again.add([{"id": "b", "x": 3.0}])
    assert [r["id"] for r in RowLog(path).rows] == ["a", "a", "b"]


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError, match="a bug"):
        with RowLog(tmp_path / "rows.jsonl").resumable():
            raise ValueError("a bug")
