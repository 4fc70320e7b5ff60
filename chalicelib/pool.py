"""A small pool of threads for the independent requests of one attempt.

A batch's requests are mostly waiting on the network (20 ms or more each from
a Lambda), and many of them do not depend on each other: the reads of the
sources, hints and state objects, and the writes of the pages and state
objects of one step (until the head is committed). Running those steps on a
few threads makes a batch cost its number of *steps*, not of requests. boto3
clients are thread-safe (resources are not; none is used).

``run`` waits for every call of a step before it returns, even when one
fails, so the next step (and above all the commit) never starts while a
request of the step before is still in flight; then it raises the first
failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

THREADS = 16  # requests in flight at once; the S3 client's pool is sized to match


_local = threading.local()


def _executor(threads: int) -> ThreadPoolExecutor:
    # one set of threads per calling thread (a Lambda has one; a test that
    # plays twelve instances on twelve threads gives each its own), however
    # many publishers it builds; they end with the thread that called them
    executors: dict[int, ThreadPoolExecutor] = _local.__dict__.setdefault("executors", {})
    if threads not in executors:
        executors[threads] = ThreadPoolExecutor(threads, thread_name_prefix="newsroom-io")
    return executors[threads]


class RequestPool:
    def __init__(self, threads: int = THREADS) -> None:
        self.threads = threads

    def run(self, calls: Iterable[Callable[[], T]]) -> list[T]:
        """Call each of ``calls`` (in parallel when there are several and the
        pool has threads); return their results in order."""
        calls = list(calls)
        if self.threads <= 1 or len(calls) <= 1 or _in_worker():
            return [call() for call in calls]
        pool = _executor(self.threads)
        futures = [pool.submit(call) for call in calls]
        wait(futures)
        return [f.result() for f in futures]  # the first failure, once all are done

    def each(self, fn: Callable[[T], object], items: Iterable[T]) -> None:
        self.run([lambda item=item: fn(item) for item in items])


def _in_worker() -> bool:
    # a step started from inside a step (a nested batch run by a test's
    # interleaving, or a listener) runs in line rather than waiting on a pool
    # whose threads may all be taken by the outer step
    return threading.current_thread().name.startswith("newsroom-io")
