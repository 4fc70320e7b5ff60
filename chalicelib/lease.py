"""A lease on the public site: one publisher at a time does the heavy work.

Correctness never depends on it — ``index.json`` is still committed with
``IfMatch`` and a lost race still retries — but under a burst (dozens of
uploads at once, so dozens of Lambdas) optimistic retries alone livelock: every
attempt renders and writes a dozen objects, and all but one lose, and the
unlucky one loses again and again. Every sync takes the lease (two small
requests), so a burst queues instead. It is an object created with ``IfNoneMatch='*'``
and released with a conditional delete; a holder that died is replaced once
its lease expires (a conditional overwrite, so only one waiter wins).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import PreconditionFailed, StorageError
from .keys import LEASE_KEY
from .storage import Storage

log = logging.getLogger("newsroom.lease")



class LeaseTimeout(StorageError):
    """Waited too long for the lease: raised so Lambda retries the event later."""


class Lease:
    def __init__(
        self,
        storage: Storage,
        key: str = LEASE_KEY,
        *,
        ttl: float = 30.0,
        wait: float = 100.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_pause: float = 1.0,
        min_pause: float = 0.1,
    ) -> None:
        self.storage = storage
        self.key = key
        self.ttl = ttl
        self.wait = wait
        self.now = now
        self.sleep = sleep
        self.max_pause = max_pause
        self.min_pause = min_pause
        self.waits = 0  # how many times a caller had to wait, for stress figures

    def _body(self, owner: str) -> bytes:
        return json.dumps({"owner": owner, "expires": round(self.now() + self.ttl, 3)}).encode()

    def acquire(self) -> str:
        """Take the lease; returns the ETag that releases it."""
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait
        attempt = 0
        while True:
            try:
                return self.storage.put(
                    self.key, self._body(owner), content_type="application/json",
                    cache_control="no-store", if_none_match=True,
                )  # fmt: skip
            except PreconditionFailed:
                pass
            current = self.storage.get(self.key)
            if current is not None and self._expired(current.body):
                try:
                    etag = self.storage.put(
                        self.key, self._body(owner), content_type="application/json",
                        cache_control="no-store", if_match=current.etag,
                    )  # fmt: skip
                    log.warning(json.dumps({"event": "lease_taken_over", "key": self.key}))
                    return etag
                except PreconditionFailed:
                    pass
            if time.monotonic() > deadline:
                raise LeaseTimeout(
                    f"the publisher lease {self.key} stayed busy for {self.wait:.0f} s", self.key
                )
            attempt += 1
            self.waits += 1
            # no queue in S3, so approximate one: the longer a caller has
            # waited, the more often it asks, so it tends to be served first
            waited = time.monotonic() - (deadline - self.wait)
            pause = min(self.max_pause, 0.02 * 2 ** min(attempt, 10)) / (1 + waited / 20)
            self.sleep(random.uniform(0.5, 1.0) * max(pause, self.min_pause))

    def _expired(self, body: bytes) -> bool:
        try:
            return float(json.loads(body)["expires"]) <= self.now()
        except (ValueError, KeyError, TypeError):
            return True  # unreadable: treat as abandoned

    def release(self, etag: str) -> None:
        try:
            self.storage.delete(self.key, if_match=etag)
        except PreconditionFailed:
            pass  # our lease expired and someone took it over: theirs now
        except StorageError as exc:
            # the lease runs out on its own; the work itself is done
            log.warning(
                json.dumps({"event": "lease_release_failed", "key": self.key, "error": str(exc)})
            )

    @contextmanager
    def held(self) -> Iterator[None]:
        etag = self.acquire()
        try:
            yield
        finally:
            self.release(etag)
