"""The convergence of one batch writes the head once: the commit. Slug claims
and the listeners' announcements live outside it, so a batch gives a
concurrent one a single window in which to lose its race."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from support import SOURCE, make_publisher, make_release, upload

from chalicelib.keys import CLAIMS_PREFIX, STATE_KEY
from chalicelib.listeners import Commit

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.commits: list[Commit] = []

    def on_commit(self, commit: Commit) -> None:
        self.commits.append(commit)

    def published(self) -> list[str]:
        return [p.entry["slug"] for c in self.commits for p in c.published]


class HeadWrites:
    """Every PutObject of the head the client sends, with its condition
    (a botocore hook on the real client: nothing of ours is replaced)."""

    def __init__(self, client: Any) -> None:
        self.seen: list[str] = []
        client.meta.events.register("before-call.s3.PutObject", self._count)

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("url_path", "").endswith("/" + STATE_KEY):
            headers = params.get("headers", {})
            self.seen.append(
                "if-match" if "If-Match" in headers else
                "if-none-match" if "If-None-Match" in headers else "plain"
            )


def doc(i: int, **overrides: Any) -> dict[str, Any]:
    return make_release(
        title=f"Release {i}",
        published_at=f"2026-{1 + i % 9:02d}-1{i % 9}T10:00:00+00:00",
        topics=[f"Topic {i % 3}"],
        **overrides,
    )


def test_a_batch_of_new_releases_writes_the_head_once(aws: Any) -> None:
    rec = Recorder()
    pub = make_publisher(aws, NOW, listeners=[rec])
    upload(aws, "releases/first.json", doc(0))
    pub.sync("releases/first.json")
    keys = [f"releases/new-{i}.json" for i in range(1, 6)]
    for i, key in enumerate(keys, 1):
        upload(aws, key, doc(i))
    writes = HeadWrites(aws)
    outcome = pub.sync_batch(keys)
    assert [r.status for r in outcome.receipts] == ["published"] * 5
    assert writes.seen == ["if-match"], "one conditional write of the head: the commit"
    assert sorted(rec.published()) == ["first", *sorted(f"new-{i}" for i in range(1, 6))]
    listed = aws.list_objects_v2(Bucket=SOURCE, Prefix=CLAIMS_PREFIX).get("KeyCount", 0)
    assert listed == 0, "the claims go with the commit"


def test_announcements_are_delivered_once_and_cleared_by_the_next_commit(aws: Any) -> None:
    rec = Recorder()
    pub = make_publisher(aws, NOW, listeners=[rec])
    for i in range(3):
        upload(aws, f"releases/a-{i}.json", doc(i))
    pub.sync_batch([f"releases/a-{i}.json" for i in range(3)])
    assert sorted(rec.published()) == ["a-0", "a-1", "a-2"]
    upload(aws, "releases/b.json", doc(7))
    make_publisher(aws, NOW, listeners=[rec]).sync("releases/b.json")
    assert sorted(rec.published()) == ["a-0", "a-1", "a-2", "b"], "nothing told twice"
    head = json.loads(aws.get_object(Bucket=SOURCE, Key=STATE_KEY)["Body"].read())
    assert [a["slug"] for a in head["announce"]] == ["b"], "the first batch's are cleared"
