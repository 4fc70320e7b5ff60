"""Chaos: a burst through the queue path while the consumer keeps dying.

The consumer (a ``QueueConsumer`` over a real ``Publisher`` on moto) is killed
at every N-th S3 call it makes, as a Lambda instance that dies mid-batch: the
batch's messages come back, and the next delivery runs in a fresh instance.
10% of the S3 events are dropped outright; the rest are duplicated and
reordered. After the queue drains (a message received five times goes to the
dead-letter queue, as deployed), one sweep runs, and the public bucket must be
byte-identical to a full build of the sources.

Marked ``stress`` (``make stress``); ``CHAOS_RELEASES`` and ``CHAOS_EVERY``
set the burst size and the kill period. It prints one JSON line of figures.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import pytest
from support import (
    PUBLIC,
    SOURCE,
    StorageWrapper,
    dumps,
    make_release,
    public_tree,
    queue_event,
    renderer,
    s3_event,
)

from chalicelib.consumer import QueueConsumer
from chalicelib.publisher import Publisher
from chalicelib.storage import S3Storage
from chalicelib.sweep import Sweeper
from newsroom.build import build_site

RELEASES = int(os.environ.get("CHAOS_RELEASES", "300"))
EVERY = int(os.environ.get("CHAOS_EVERY", "400"))  # a batch of 10 takes about 200 calls
TOPICS = ["Clean Water", "Refugees and Migrants", "Climate", "Côte d'Ivoire", "Harbour"]
KINDS = ["press-release", "report", "statement", "campaign-update", "victory"]


class Killed(BaseException):  # noqa: N818 - not an error our code may catch
    """The Lambda instance died mid-request."""


class Calls:
    def __init__(self, every: int) -> None:
        self.every, self.n, self.kills, self.armed = every, 0, 0, True

    def tick(self) -> None:
        self.n += 1
        if self.armed and self.n % self.every == 0:
            self.kills += 1
            raise Killed(f"killed at S3 call {self.n}")


class Dying(StorageWrapper):
    def __init__(self, inner: Any, calls: Calls) -> None:
        super().__init__(inner)
        self.calls = calls

    def _read(self, op: str, key: str, do: Any) -> Any:
        self.calls.tick()
        return do()

    def _write(self, op: str, key: str, do: Any) -> Any:
        self.calls.tick()
        return do()


def instance(aws: Any, calls: Calls) -> Publisher:
    """A fresh Lambda instance (nothing cached from the one that died)."""
    return Publisher(
        Dying(S3Storage(aws, SOURCE), calls),
        Dying(S3Storage(aws, PUBLIC), calls),
        renderer(),
        sleep=lambda _s: None,
    )


@pytest.mark.stress
def test_a_burst_survives_a_dying_consumer_lost_and_duplicated_events(aws: Any) -> None:
    rng = random.Random(5)
    keys = []
    for i in range(RELEASES):
        doc = make_release(
            title=f"Chaos release {i}",
            slug=f"chaos-{i:04d}",
            kind=rng.choice(KINDS),
            published_at=f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T09:00:00Z",
            topics=rng.sample(TOPICS, rng.randint(0, 2)),
            image=None,
        )
        key = f"releases/Chaos {i:04d}.json"
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
        keys.append(key)
    events = [k for k in keys if rng.random() >= 0.10]  # 10% dropped outright
    dropped = len(keys) - len(events)
    events = [k for k in events for _ in range(rng.randint(1, 3))]  # duplicated
    rng.shuffle(events)  # reordered
    queue = deque((n, k, 0) for n, k in enumerate(events))
    calls = Calls(EVERY)
    dead, batches, started = 0, 0, time.perf_counter()
    consumer = QueueConsumer(instance(aws, calls))
    while queue:
        batch = [queue.popleft() for _ in range(min(10, len(queue)))]
        event = queue_event(*(s3_event(quote_plus(k, safe="/")) for _n, k, _r in batch))
        for record, (n, _k, _r) in zip(event["Records"], batch, strict=True):
            record["messageId"] = f"m{n}"
        batches += 1
        try:
            out = consumer.handle(event)
            failed = {f["itemIdentifier"] for f in out["batchItemFailures"]}
        except Killed:
            consumer = QueueConsumer(instance(aws, calls))
            failed = {f"m{n}" for n, _k, _r in batch}
        for n, k, receives in batch:
            if f"m{n}" in failed:
                if receives + 1 >= 5:
                    dead += 1  # the dead-letter queue
                else:
                    queue.append((n, k, receives + 1))
    calls.armed = False
    Sweeper(instance(aws, calls)).run()
    wall = time.perf_counter() - started

    sources = sorted(
        (k, v) for k, v in public_tree(aws, SOURCE).items() if k.startswith("releases/")
    )
    expected = build_site(sources, renderer(), now=datetime.now(UTC), workers=1).files
    tree = public_tree(aws)
    print(
        "\nCHAOS "
        + json.dumps(
            {
                "releases": RELEASES,
                "events_dropped": dropped,
                "deliveries": len(events),
                "batches": batches,
                "kills": calls.kills,
                "dead_lettered": dead,
                "wall_seconds": round(wall, 1),
            }
        )
    )
    assert calls.kills > 0
    assert sorted(tree) == sorted(expected)
    assert tree == expected, "byte-identical to a full build after one sweep"
