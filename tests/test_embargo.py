"""Embargo: private until the instant, scheduled, published once when due."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import support
from click.testing import CliRunner
from support import SOURCE, make_release, public_tree, publish, receipt, sqs_event, upload
from test_rebuild import QUEUE as REBUILD_QUEUE
from test_rebuild import drain, site_renderer
from test_rebuild import service as rebuild_service

from chalicelib.errors import ScheduleUnreadable, TransientStorageError
from chalicelib.publisher import Publisher
from newsroom.cli import main
from newsroom.rebuild import create_rebuild_queue

EMBARGO = "2030-03-01T09:00:00-05:00"
EMBARGO_AT = datetime.fromisoformat(EMBARGO)


def scheduled_event() -> dict[str, Any]:
    """The CloudWatch/EventBridge event a ``rate(5 minutes)`` rule delivers."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2030-03-01T14:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-publish_due_releases"],
        "detail": {},
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_publisher(clock: Clock) -> Publisher:
    return support.make_publisher(boto3.client("s3", region_name="us-east-1"), clock)


def schedule(s3) -> list[dict[str, Any]]:
    try:
        body = s3.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return json.loads(body)["releases"]


def leaks(s3, *needles: str) -> list[str]:
    """Public keys whose bytes mention any needle (slug, title, ...)."""
    return sorted(
        key
        for key, body in public_tree(s3).items()
        if any(n.encode() in body or n in key for n in needles)
    )


def embargoed_doc(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "Secret report on harbour water",
        "topics": ["Embargoed Topic"],
        "embargo_until": EMBARGO,
    }
    return make_release(**{**fields, **overrides})


def test_future_embargo_is_scheduled_and_entirely_private(app_module, aws) -> None:
    # something else is live, so every listing, feed and sitemap exists
    publish(app_module, aws, "releases/public-one.json", make_release(title="Public one"))
    publish(app_module, aws, "releases/secret-report.json", embargoed_doc())

    r = receipt(aws, "releases/secret-report.json")
    assert r["status"] == "scheduled"
    assert r["embargo_until"] == EMBARGO
    assert r["slug"] == "secret-report" and r["errors"] == []
    tree = public_tree(aws)
    assert "releases/public-one/index.html" in tree
    assert leaks(aws, "secret-report", "Secret report", "embargoed-topic", "Embargoed Topic") == []
    assert schedule(aws) == [
        {
            "source_key": "releases/secret-report.json",
            "slug": "secret-report",
            "embargo_until": EMBARGO,
        }
    ]


def test_past_embargo_publishes_at_once(app_module, aws) -> None:
    publish(
        app_module,
        aws,
        "releases/old.json",
        make_release(embargo_until="2018-12-19T09:00:00-05:00"),
    )
    assert receipt(aws, "releases/old.json")["status"] == "published"
    assert "releases/old/index.html" in public_tree(aws)
    assert schedule(aws) == []


def test_publish_due_publishes_when_the_instant_comes(aws) -> None:
    clock = Clock(EMBARGO_AT - timedelta(hours=1))
    pub = make_publisher(clock)
    upload(aws, "releases/secret-report.json", embargoed_doc())
    assert pub.sync("releases/secret-report.json").status == "scheduled"

    clock.now = EMBARGO_AT - timedelta(seconds=1)
    assert pub.publish_due() == []
    assert leaks(aws, "secret-report") == []

    clock.now = EMBARGO_AT  # the instant itself is no longer embargoed
    [done] = pub.publish_due()
    assert done.status == "published" and done.slug == "secret-report"
    assert receipt(aws, "releases/secret-report.json")["status"] == "published"
    tree = public_tree(aws)
    assert b"Secret report on harbour water" in tree["releases/secret-report/index.html"]
    assert b"/releases/secret-report/" in tree["feed.xml"]
    assert b"/releases/secret-report/" in tree["sitemaps/2018-12.xml"]
    assert "topics/embargoed-topic/index.html" in tree
    assert schedule(aws) == []

    # a later run finds nothing due and writes nothing public
    puts_before = pub.public.counters.requests.get("PutObject", 0)
    assert pub.publish_due() == []
    assert pub.public.counters.requests.get("PutObject", 0) == puts_before


def test_scheduled_lambda_handler_publishes_what_has_come_due(app_module, aws) -> None:
    # scheduled in the past of the real clock (as if the embargo ran out)
    pub = make_publisher(Clock(datetime(2020, 1, 1, tzinfo=UTC)))
    upload(aws, "releases/due.json", make_release(embargo_until="2020-06-01T00:00:00Z"))
    assert pub.sync("releases/due.json").status == "scheduled"
    assert "releases/due/index.html" not in public_tree(aws)

    out = app_module.publish_due_releases(scheduled_event(), None)
    assert [r["status"] for r in out] == ["published"]
    assert "releases/due/index.html" in public_tree(aws)
    assert schedule(aws) == []
    assert app_module.publish_due_releases(scheduled_event(), None) == []


def test_overlapping_runs_publish_once_in_effect(aws) -> None:
    clock = Clock(EMBARGO_AT - timedelta(days=1))
    first, second = make_publisher(clock), make_publisher(clock)
    for n in range(3):
        upload(aws, f"releases/batch-{n}.json", embargoed_doc(slug=f"batch-{n}"))
        first.sync(f"releases/batch-{n}.json")
    clock.now = EMBARGO_AT + timedelta(minutes=3)

    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def run(name: str, pub: Publisher) -> None:
        start.wait()
        results[name] = pub.publish_due()

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in [("a", first), ("b", second)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    index = json.loads(public_tree(aws)["index.json"])
    slugs = [r["slug"] for r in index["releases"]]
    assert sorted(slugs) == ["batch-0", "batch-1", "batch-2"]  # each exactly once
    assert schedule(aws) == []
    for n in range(3):
        assert receipt(aws, f"releases/batch-{n}.json")["status"] == "published"
    # the site equals what one run alone would have produced
    settled = public_tree(aws)
    assert make_publisher(clock).publish_due() == []
    assert public_tree(aws) == settled


def test_an_embargoed_update_keeps_the_live_version_until_its_instant(aws) -> None:
    clock = Clock(EMBARGO_AT - timedelta(days=1))
    pub = make_publisher(clock)
    upload(aws, "releases/x.json", make_release(slug="x-release", title="Live version"))
    assert pub.sync("releases/x.json").status == "published"
    live = public_tree(aws)
    upload(
        aws,
        "releases/x.json",
        make_release(slug="x-release", title="Embargoed version", embargo_until=EMBARGO),
    )
    r = pub.sync("releases/x.json")
    assert r.status == "scheduled" and r.publish_at == EMBARGO_AT
    assert "stays at" in r.message
    assert public_tree(aws) == live, "the live version stays, unchanged"
    assert leaks(aws, "Embargoed version") == []
    clock.now = EMBARGO_AT
    [done] = pub.publish_due()
    assert done.status == "published"
    page = public_tree(aws)["releases/x-release/index.html"]
    assert b"Embargoed version" in page and b"Live version" not in page


def test_a_future_published_at_schedules_like_an_embargo(app_module, aws) -> None:
    upload(aws, "releases/future.json", make_release(slug="future", published_at=EMBARGO))
    app_module.sync_release(sqs_event("releases/future.json"), None)
    r = receipt(aws, "releases/future.json")
    assert r["status"] == "scheduled" and r["publish_at"] == EMBARGO
    assert r["preview_url"].startswith("http")
    assert leaks(aws, "future") == []
    assert [s["source_key"] for s in schedule(aws)] == ["releases/future.json"]


def test_a_scheduled_release_claiming_a_held_slug_is_warned_at_once(app_module, aws) -> None:
    upload(aws, "releases/holder.json", make_release(slug="shared"))
    app_module.sync_release(sqs_event("releases/holder.json"), None)
    upload(aws, "releases/later.json", embargoed_doc(slug="shared"))
    app_module.sync_release(sqs_event("releases/later.json"), None)
    r = receipt(aws, "releases/later.json")
    assert r["status"] == "scheduled"
    [w] = r["warnings"]
    assert w["loc"] == "slug" and "releases/holder.json" in w["msg"]


def test_schedule_follows_the_source(app_module, aws) -> None:
    upload(aws, "releases/a.json", embargoed_doc(slug="a-rel"))
    upload(aws, "releases/b.json", embargoed_doc(slug="b-rel"))
    app_module.sync_release(sqs_event("releases/a.json"), None)
    app_module.sync_release(sqs_event("releases/b.json"), None)
    assert [s["slug"] for s in schedule(aws)] == ["a-rel", "b-rel"]

    # a moved embargo replaces the entry
    upload(
        aws, "releases/a.json", embargoed_doc(slug="a-rel", embargo_until="2031-01-01T00:00:00Z")
    )
    app_module.sync_release(sqs_event("releases/a.json"), None)
    assert [(s["slug"], s["embargo_until"]) for s in schedule(aws)] == [
        ("b-rel", EMBARGO),
        ("a-rel", "2031-01-01T00:00:00+00:00"),
    ]
    # embargo lifted: published now, off the schedule
    publish(app_module, aws, "releases/a.json", make_release(slug="a-rel"))
    assert receipt(aws, "releases/a.json")["status"] == "published"
    assert [s["slug"] for s in schedule(aws)] == ["b-rel"]
    # a deleted scheduled file leaves the schedule too
    aws.delete_object(Bucket=SOURCE, Key="releases/b.json")
    app_module.sync_release(sqs_event("releases/b.json", "ObjectRemoved:Delete"), None)
    assert schedule(aws) == []


def test_due_run_keeps_an_embargo_moved_later_meanwhile(aws) -> None:
    clock = Clock(EMBARGO_AT - timedelta(hours=2))
    pub = make_publisher(clock)
    upload(aws, "releases/moved.json", embargoed_doc(slug="moved-embargo"))
    pub.sync("releases/moved.json")
    # staff move the embargo a week later; the run sees the old entry as due
    later = EMBARGO_AT + timedelta(days=7)
    upload(
        aws,
        "releases/moved.json",
        embargoed_doc(slug="moved-embargo", embargo_until=later.isoformat()),
    )
    clock.now = EMBARGO_AT + timedelta(minutes=1)
    [r] = pub.publish_due()
    assert r.status == "scheduled"
    assert leaks(aws, "moved-embargo") == []
    assert [s["embargo_until"] for s in schedule(aws)] == [later.isoformat()]


def test_newsroom_schedule_lists_embargoed_releases(app_module, aws) -> None:
    publish(app_module, aws, "releases/secret-report.json", embargoed_doc())
    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"releases/secret-report.json: /releases/secret-report/: public at {EMBARGO} "
        "(2030-03-01 14:00 UTC, in "
    )
    assert lines[-1] == "1 release(s) scheduled"


def test_newsroom_schedule_when_nothing_is_scheduled(app_module, aws) -> None:
    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert result.exit_code == 0
    assert result.output == "no releases are scheduled\n"


def test_validate_shows_the_embargo(tmp_path) -> None:
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(embargoed_doc()))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert f"(embargoed until {EMBARGO})" in result.output


def test_an_instant_past_the_calendar_is_rejected_not_retried_forever(app_module, aws) -> None:
    """``9999-12-31T23:59:59-12:00`` is year 10000 in UTC: a receipt naming the
    field, not a crash of every batch and sweep that reads the file."""
    doc = make_release(slug="far", published_at="9999-12-31T23:59:59-12:00")
    upload(aws, "releases/far.json", doc)
    out = app_module.sync_release(sqs_event("releases/far.json"), None)
    assert not (out or {}).get("batchItemFailures")
    r = receipt(aws, "releases/far.json")
    assert r["status"] == "rejected"
    assert [e["loc"] for e in r["errors"]] == ["published_at"]
    assert schedule(aws) == [] and leaks(aws, "far") == []


class FailsOnce(support.StorageWrapper):
    """The first write of one key fails, as S3 sometimes does (a 503)."""

    def __init__(self, inner: Any, key: str) -> None:
        super().__init__(inner)
        self.key, self.failed = key, False

    def _write(self, op: str, key: str, do: Any) -> Any:
        if key == self.key and not self.failed:
            self.failed = True
            raise TransientStorageError(f"injected fault writing {key}", key)
        return do()


def test_a_due_run_that_fails_before_the_receipt_is_finished_by_the_next_run(
    app_module, aws
) -> None:
    """The page went public but the receipt could not be written: the release
    stays due, so the next run writes ``published`` (and drops the preview)
    instead of leaving ``scheduled`` with a preview link forever."""
    clock = Clock(datetime(2020, 1, 1, tzinfo=UTC))
    for name in ("a", "b"):
        upload(aws, f"releases/{name}.json", embargoed_doc(slug=f"due-{name}",
                                                           embargo_until="2020-06-01T00:00:00Z"))  # fmt: skip
        assert make_publisher(clock).sync(f"releases/{name}.json").status == "scheduled"
    clock.now = datetime(2020, 6, 1, 0, 1, tzinfo=UTC)
    s3 = boto3.client("s3", region_name="us-east-1")
    flaky = support.make_publisher(
        s3, clock, wrap=lambda storage: FailsOnce(storage, "receipts/releases/a.json")
    )
    with pytest.raises(TransientStorageError):
        flaky.publish_due()
    assert "releases/due-a/index.html" in public_tree(aws)
    assert receipt(aws, "releases/a.json")["status"] == "scheduled"  # the fault
    assert [s["source_key"] for s in schedule(aws)] == ["releases/a.json"]

    app_module.publish_due_releases(scheduled_event(), None)
    r = receipt(aws, "releases/a.json")
    assert r["status"] == "published" and "preview_url" not in r
    assert receipt(aws, "releases/b.json")["status"] == "published"
    assert schedule(aws) == []
    assert not any(k.startswith("previews/") for k in public_tree(aws, SOURCE))


TRUNCATED = b'{"version": 1, "releases": [{"source_key": "releases/a.json", "slu'


def test_an_unreadable_schedule_blocks_only_what_it_schedules(app_module, aws) -> None:
    """A schedule edited by hand or cut short by a tool raised in every batch,
    so nothing at all was published until someone repaired it. Now a release
    that is not embargoed is published; an embargoed one fails its message
    (it cannot be listed, so its instant would never come) with an error that
    names the object and the command that rewrites it."""
    aws.put_object(Bucket=SOURCE, Key="receipts/schedule.json", Body=TRUNCATED)
    upload(aws, "releases/plain.json", make_release(slug="plain"))
    upload(aws, "releases/secret.json", embargoed_doc(slug="secret"))
    event = support.queue_event(
        support.s3_event("releases/plain.json"), support.s3_event("releases/secret.json")
    )
    out = app_module.sync_release(event, None)
    assert out == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert receipt(aws, "releases/plain.json")["status"] == "published"
    assert "releases/plain/index.html" in public_tree(aws)
    assert "secret" not in "".join(public_tree(aws))
    with pytest.raises(aws.exceptions.NoSuchKey):  # no receipt says "scheduled"
        aws.get_object(Bucket=SOURCE, Key="receipts/releases/secret.json")
    # the due run (and its sweep) publishes what it can, then reports the schedule
    upload(aws, "releases/lost.json", make_release(slug="lost"))  # its event is lost
    with pytest.raises(ScheduleUnreadable) as raised:
        app_module.publish_due_releases(scheduled_event(), None)
    assert raised.value.key == "receipts/schedule.json"
    assert "newsroom rebuild" in str(raised.value) and "receipts/schedule.json" in str(raised.value)
    assert receipt(aws, "releases/lost.json")["status"] == "published"


@pytest.fixture
def rebuild_queue(aws) -> Any:
    client = boto3.client("sqs", region_name="us-east-1")
    create_rebuild_queue(client, REBUILD_QUEUE, visibility_timeout=0, max_receives=3)
    return client


def test_a_rebuild_rewrites_an_unreadable_schedule_from_the_sources(aws, rebuild_queue) -> None:
    """The error's advice holds: the rebuild writes the schedule from the
    sources it reads, over what it cannot read."""
    aws.put_object(Bucket=SOURCE, Key="receipts/schedule.json", Body=b"not json at all")
    upload(aws, "releases/plain.json", make_release(slug="plain"))
    upload(aws, "releases/secret.json", embargoed_doc(slug="secret"))
    svc = rebuild_service(aws, site_renderer())
    svc.start()
    drain(rebuild_queue, svc.handle)
    assert [s["source_key"] for s in schedule(aws)] == ["releases/secret.json"]
    assert "releases/plain/index.html" in public_tree(aws)
