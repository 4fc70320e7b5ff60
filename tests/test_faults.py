"""Fault injection: fail the Nth S3 write of a publish, for every N.

``FlakyStorage`` is a test double of the infrastructure, not of our code: it
forwards every call to the real ``S3Storage`` (over moto) and makes the Nth
write or delete fail with ``TransientStorageError``, either before the request
reaches S3 (a throttled or refused request) or after S3 applied it (a dropped
connection: the write happened, the caller sees an error). After each failure:

- the error propagates out of ``sync`` (Lambda retries it), no rejection receipt;
- the public bucket satisfies the reader invariants (``tests/invariants.py``);
- nothing embargoed or rejected is public;
- running ``sync`` again (Lambda's retry of the same event) ends byte for byte
  where a clean publish ends, which is also what a full build gives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from invariants import link_problems, secrecy_problems
from support import (
    PUBLIC,
    SOURCE,
    Fault,
    FlakyStorage,
    dumps,
    make_publisher,
    make_release,
    renderer,
)

from chalicelib.errors import TransientStorageError
from chalicelib.keys import HEAD_KEY
from chalicelib.publisher import Publisher
from chalicelib.storage import S3Storage, StoredObject
from newsroom.build import build_site

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET = "EMBARGOED-SECRET-MARKER"


def publisher(s3: Any, fault: Fault) -> Publisher:
    return make_publisher(s3, NOW, wrap=lambda storage: FlakyStorage(storage, fault))


def source_tree(s3: Any) -> dict[str, bytes]:
    return {k: v for k, v in tree(s3, SOURCE).items() if k.startswith("releases/")}


_BODIES: dict[str, bytes] = {}  # ETag -> bytes: an unchanged object is not fetched again


def tree(s3: Any, bucket: str = PUBLIC) -> dict[str, bytes]:
    """The bucket's objects (one listing; only objects not seen before are read)."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            etag = item["ETag"]
            if etag not in _BODIES:
                _BODIES[etag] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"]] = _BODIES[etag]
    return out


def restore(s3: Any, bucket: str, want: dict[str, bytes]) -> None:
    current = tree(s3, bucket)
    for key in current:
        if key not in want:
            s3.delete_object(Bucket=bucket, Key=key)
    for key, body in want.items():
        if current.get(key) != body:
            s3.put_object(Bucket=bucket, Key=key, Body=body)


def built(s3: Any) -> dict[str, bytes]:
    sources = sorted(source_tree(s3).items())
    return build_site(sources, renderer(), now=NOW, workers=1).files


BASE = {
    "releases/base-a.json": make_release(
        title="Harbour report", published_at="2026-10-01T09:00:00+00:00", topics=["Harbour"]
    ),
    "releases/base-b.json": make_release(
        title="Only one in September",
        published_at="2026-09-05T09:00:00+00:00",
        topics=["September only"],
        kind="statement",
    ),
    "releases/base-c.json": make_release(
        title="Embargoed",
        published_at="2026-11-01T09:00:00+00:00",
        embargo_until="2027-01-01T00:00:00+00:00",
        summary=SECRET,
    ),
    "releases/base-d.json": make_release(title=SECRET, kind="nonsense"),  # rejected
}


def change_publish(s3: Any) -> str:
    doc = make_release(
        title="A new month, a new topic", published_at="2026-11-20T09:00:00+00:00", topics=["New"]
    )
    s3.put_object(Bucket=SOURCE, Key="releases/fresh.json", Body=dumps(doc))
    return "releases/fresh.json"


def change_update(s3: Any) -> str:
    doc = make_release(
        title="Harbour report, revised",
        published_at="2026-10-01T09:00:00+00:00",
        updated_at="2026-11-02T09:00:00+00:00",
        topics=["Harbour", "Revisions"],
        body="Revised body.",
    )
    s3.put_object(Bucket=SOURCE, Key="releases/base-a.json", Body=dumps(doc))
    return "releases/base-a.json"


def change_slug(s3: Any) -> str:
    doc = {**BASE["releases/base-a.json"], "slug": "harbour-report-renamed"}
    s3.put_object(Bucket=SOURCE, Key="releases/base-a.json", Body=dumps(doc))
    return "releases/base-a.json"


def change_unpublish(s3: Any) -> str:
    s3.delete_object(Bucket=SOURCE, Key="releases/base-b.json")
    return "releases/base-b.json"


SCENARIOS = {
    "publish": (change_publish, "published"),
    "update": (change_update, "published"),
    "slug-change": (change_slug, "published"),
    "unpublish": (change_unpublish, "unpublished"),
}


@pytest.fixture
def baseline(aws: Any) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Source and public trees with BASE published, no faults."""
    pub = publisher(aws, Fault())
    for key, doc in BASE.items():
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
        pub.sync(key)
    return tree(aws, SOURCE), tree(aws)


def receipt_status(s3: Any, key: str) -> str | None:
    import json

    try:
        body = s3.get_object(Bucket=SOURCE, Key=f"receipts/{key}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)["status"]


@pytest.mark.parametrize(
    ("name", "stride"),
    [(name, 3) for name in SCENARIOS]
    + [pytest.param(name, 1, marks=pytest.mark.stress) for name in SCENARIOS],
    ids=[f"{name}-every-3rd-write" for name in SCENARIOS]
    + [f"{name}-every-write" for name in SCENARIOS],
)
def test_every_failed_write_leaves_a_consistent_site_and_a_retry_completes(
    aws: Any, baseline: tuple[dict[str, bytes], dict[str, bytes]], name: str, stride: int
) -> None:
    """The N-th write of a publish fails, before S3 applies it or after (a lost
    response). The suite fails every third write (the first and the last among
    them: the first page, the commit); ``make stress`` fails every write."""
    change, status = SCENARIOS[name]
    base_source, base_public = baseline
    assert not link_problems(base_public)

    # the clean run: how many writes, and where it ends
    fault = Fault()
    key = change(aws)
    assert publisher(aws, fault).sync(key).status == status
    clean, writes = tree(aws), fault.writes
    assert clean == built(aws), "a clean publish equals a full build"
    assert clean != base_public
    assert writes >= 3

    steps = sorted({*range(1, writes + 1, stride), writes})
    runs = 0
    for after in (False, True):
        for n in steps:
            restore(aws, SOURCE, base_source)
            restore(aws, PUBLIC, base_public)
            key = change(aws)
            previous = receipt_status(aws, key)
            fault = Fault(fail_at=n, after=after)
            with pytest.raises(TransientStorageError):
                publisher(aws, fault).sync(key)
            assert fault.failed
            where = (
                f"{name}: write {n}/{writes} failed {'after' if after else 'before'} S3 applied it"
            )
            site = tree(aws)
            assert link_problems(site, through_release_pages=name != "unpublish") == [], where
            assert secrecy_problems(site, [SECRET]) == [], where
            # an infrastructure fault is never recorded as a rejection
            assert receipt_status(aws, key) in (previous, status), where
            # Lambda retries the same event
            assert publisher(aws, Fault()).sync(key).status == status, where
            assert tree(aws) == clean, where
            if after:
                # and a duplicate delivery afterwards changes nothing: it
                # rewrites the receipt (and a delete of a file with nothing
                # public names it in the head's log again, for a publish that
                # may have read it before the delete: docs/reliability.md)
                again = Fault()
                publisher(aws, again).sync(key)
                expected = [f"receipts/{key}"] + ([HEAD_KEY] if name == "unpublish" else [])
                assert sorted(again.keys) == sorted(expected), where
                assert tree(aws) == clean, where
            runs += 1
    assert runs == 2 * len(steps)


def test_two_faults_in_a_row_then_success(aws: Any, baseline: Any) -> None:
    """Lambda retries twice; a fault on each earlier try still converges."""
    key = change_slug(aws)
    for n in (2, 4):
        with pytest.raises(TransientStorageError):
            publisher(aws, Fault(fail_at=n)).sync(key)
        assert link_problems(tree(aws)) == []
    publisher(aws, Fault()).sync(key)
    assert tree(aws) == built(aws)


def test_a_failed_read_raises_and_is_not_a_rejection(aws: Any, baseline: Any) -> None:
    class BrokenReads(FlakyStorage):
        def get(self, key: str, **_: Any) -> StoredObject | None:
            raise TransientStorageError("SlowDown", key)

    pub = Publisher(
        BrokenReads(S3Storage(aws, SOURCE), Fault()),
        S3Storage(aws, PUBLIC),
        renderer(),
        clock=lambda: NOW,
    )
    key = change_publish(aws)
    before = tree(aws)
    with pytest.raises(TransientStorageError):
        pub.sync(key)
    assert tree(aws) == before
    assert receipt_status(aws, key) is None
