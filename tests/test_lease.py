"""The publisher lease: one holder at a time, released or expired, never stolen."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from chalicelib.lease import Lease, LeaseTimeout
from chalicelib.storage import LocalStorage


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_acquire_creates_and_release_deletes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    lease = Lease(storage)
    with lease.held():
        held = json.loads(storage.get("receipts/publisher.lease").body)
        assert held["expires"] > time.time()
    assert storage.get("receipts/publisher.lease") is None


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with Lease(storage).held():
            order.append("first in")
            first_in.set()
            time.sleep(0.2)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    second = Lease(storage, max_pause=0.02, min_pause=0.005)
    with second.held():
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]
    assert second.waits > 0


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    clock = Clock()
    dead = Lease(storage, ttl=30, now=clock)
    dead_etag = dead.acquire()  # its holder dies without releasing
    clock.t += 31
    heir = Lease(storage, ttl=30, now=clock, sleep=lambda s: None)
    heir_etag = heir.acquire()
    assert heir_etag != dead_etag
    # the dead holder's late release must not free the heir's lease
    dead.release(dead_etag)
    assert storage.get("receipts/publisher.lease").etag == heir_etag
    heir.release(heir_etag)
    assert storage.get("receipts/publisher.lease") is None


def test_a_live_lease_is_not_taken_over(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    clock = Clock()
    Lease(storage, ttl=30, now=clock).acquire()
    waiter = Lease(storage, ttl=30, now=clock, wait=0.05, sleep=lambda s: time.sleep(0.001))
    with pytest.raises(LeaseTimeout):
        waiter.acquire()


def test_an_unreadable_lease_counts_as_abandoned(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("receipts/publisher.lease", b"garbage", content_type="x", cache_control="x")
    assert Lease(storage, sleep=lambda s: None).acquire()


def test_publish_through_the_handler_leaves_no_lease_behind(app_module, aws) -> None:
    from support import SOURCE, make_release, publish, receipt

    publish(app_module, aws, "releases/clinics.json", make_release())
    assert receipt(aws, "releases/clinics.json")["status"] == "published"
    keys = {o["Key"] for o in aws.list_objects_v2(Bucket=SOURCE)["Contents"]}
    assert "receipts/publisher.lease" not in keys
