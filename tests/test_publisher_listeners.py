"""After each commit the publisher tells its listeners what became public and
what left, at least once: a listener that fails is told again by the next batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from support import SOURCE, make_publisher, make_release, upload

from chalicelib.keys import STATE_KEY, announced_key
from chalicelib.listeners import Commit
from chalicelib.publisher import Publisher

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Recorder:
    """A listener as the search corpus or the alert queue is one."""

    def __init__(self, fail: int = 0) -> None:
        self.commits: list[Commit] = []
        self.fail = fail

    def on_commit(self, commit: Commit) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("listener down")
        self.commits.append(commit)

    def published(self) -> list[tuple[str, bool]]:
        return [(p.entry["slug"], p.first_time) for c in self.commits for p in c.published]

    def withdrawn(self) -> list[tuple[str, str]]:
        return [(w.slug, w.month) for c in self.commits for w in c.withdrawn]


def publisher(aws: Any, listener: Recorder, now: datetime = NOW) -> Publisher:
    return make_publisher(aws, now, listeners=[listener])


def owed(aws: Any) -> list[dict]:
    """The announcements the committed head holds that no convergence has
    recorded delivered (``state/announced/``; the next commit clears those)."""
    body = aws.get_object(Bucket=SOURCE, Key=STATE_KEY)["Body"].read()
    out = []
    for a in json.loads(body).get("announce", []):
        try:
            record = aws.get_object(Bucket=SOURCE, Key=announced_key(a.get("by", "")))
        except aws.exceptions.NoSuchKey:
            out.append(a)
            continue
        if not json.loads(record["Body"].read())["delivered"]:
            out.append(a)
    return out


def test_new_updated_and_deleted_releases_are_announced(aws: Any) -> None:
    rec = Recorder()
    pub = publisher(aws, rec)
    upload(aws, "releases/a.json", make_release(slug="a"))
    pub.sync("releases/a.json")
    assert rec.published() == [("a", True)]
    p = rec.commits[0].published[0]
    assert p.source_key == "releases/a.json" and p.release.slug == "a"
    assert not {"source_key", "revision", "source_digest"} & set(p.entry)
    assert p.entry["url"].endswith("/releases/a/")

    upload(aws, "releases/a.json", make_release(slug="a", title="Updated"))
    pub.sync("releases/a.json")
    assert rec.published() == [("a", True), ("a", False)], "an update is never a first time"

    pub.sync("releases/a.json")  # a duplicate event: nothing to announce
    assert len(rec.commits) == 2

    aws.delete_object(Bucket=SOURCE, Key="releases/a.json")
    pub.sync("releases/a.json")
    assert rec.withdrawn() == [("a", "2018-12")]
    assert owed(aws) == []


def test_a_failing_listener_is_told_again_by_the_next_batch(aws: Any) -> None:
    rec = Recorder(fail=1)
    pub = publisher(aws, rec)
    upload(aws, "releases/a.json", make_release(slug="a"))
    assert pub.sync("releases/a.json").status == "published"
    assert rec.published() == []
    assert [a["slug"] for a in owed(aws)] == ["a"], "recorded in the committed state"
    upload(aws, "releases/b.json", make_release(slug="b"))
    pub.sync("releases/b.json")
    assert sorted(rec.published()) == [("a", True), ("b", True)]
    assert owed(aws) == []


def test_an_embargoed_release_is_announced_when_it_goes_public(aws: Any) -> None:
    rec = Recorder()
    instant = NOW + timedelta(hours=1)
    upload(aws, "releases/e.json", make_release(slug="e", embargo_until=instant.isoformat()))
    publisher(aws, rec).sync("releases/e.json")
    assert rec.commits == []
    assert [r.status for r in publisher(aws, rec, instant).publish_due()] == ["published"]
    assert rec.published() == [("e", True)]
