"""The request pool: a step's calls at once, results in order, the step over
before a failure is raised, and a step inside a step run in line."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.pool import RequestPool


def test_calls_run_at_once_and_results_keep_their_order() -> None:
    pool = RequestPool(8)
    running, most = 0, 0
    lock = threading.Lock()

    def call(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return i

    assert pool.run([lambda i=i: call(i) for i in range(8)]) == list(range(8))
    assert most > 1, "the calls overlapped"


def test_a_failure_is_raised_only_once_every_call_of_the_step_has_ended() -> None:
    pool = RequestPool(4)
    ended: list[int] = []

    def slow(i: int) -> None:
        time.sleep(0.1)
        ended.append(i)

    def fail() -> None:
        raise ValueError("the first request failed")

    with pytest.raises(ValueError, match="first request"):
        pool.run([fail, *[lambda i=i: slow(i) for i in range(3)]])
    assert sorted(ended) == [0, 1, 2], "no request of the step is still in flight"


def test_a_step_started_inside_a_step_runs_in_line() -> None:
    pool = RequestPool(2)
    names: list[str] = []

    def inner() -> None:
        names.append(threading.current_thread().name)

    def outer() -> None:
        pool.run([inner, inner])  # every thread of the pool is taken by the outer step

    pool.run([outer, outer])
    assert len(names) == 4


def test_one_thread_runs_the_calls_in_line_in_order() -> None:
    seen: list[int] = []
    RequestPool(1).run([lambda i=i: seen.append(i) for i in range(5)])
    assert seen == [0, 1, 2, 3, 4]
