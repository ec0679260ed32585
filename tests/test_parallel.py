"""pyro_minvae.parallel: the shard rule and the worker pool (results and failures handed over per task, a worker
that dies costs only its task, an initializer that fails is one user error)."""

from __future__ import annotations

import os

import pytest

from pyro_minvae.errors import UserInputError
from pyro_minvae.parallel import parse_shard, run_tasks, take_shard


def square_or_fail(i: int) -> int:
    if i == 3:
        raise ValueError("bad\nthree")
    if i == 5 and os.environ.get("PARALLEL_TEST_DIE") == str(os.getppid()):
        os._exit(7)  # a worker that dies (e.g. killed for memory) in this task only
    return i * i


def failing_init() -> None:
    raise RuntimeError("no model here")


@pytest.mark.parametrize("text, want", [("1/1", (1, 1)), ("2/8", (2, 8)), (" 3/4", (3, 4))])
def test_parse_shard(text, want):
    assert parse_shard(text) == want


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "1", "1/2/3", ""])
def test_parse_shard_refuses_in_one_line(text):
    with pytest.raises(UserInputError, match="expected k/N with 1 <= k <= N"):
        parse_shard(text)


def test_take_shard_interleaves():
    assert take_shard(list(range(10)), (2, 4)) == [1, 5, 9]
    assert take_shard([1, 2], None) == [1, 2]


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_and_failures_are_handed_over_per_task(jobs, monkeypatch):
    monkeypatch.setenv("PARALLEL_TEST_DIE", str(os.getpid()))  # workers (children of this process) die on task 5
    got, failed = {}, {}
    run_tasks(
        square_or_fail,
        [(i,) for i in range(7 if jobs == 2 else 5)],
        jobs=jobs,
        on_result=got.__setitem__,
        on_error=failed.__setitem__,
    )
    if jobs == 1:
        assert got == {0: 0, 1: 1, 2: 4, 4: 16} and failed == {3: "ValueError: bad three"}
    else:
        assert got == {0: 0, 1: 1, 2: 4, 4: 16, 6: 36}
        assert failed == {3: "ValueError: bad three", 5: "worker process died (exit code 7) in this task"}


def test_a_failing_initializer_is_one_user_error():
    with pytest.raises(UserInputError, match="a worker process could not start: RuntimeError: no model here"):
        run_tasks(square_or_fail, [(1,), (2,)], jobs=2, initializer=failing_init, on_result=print, on_error=print)
