"""The fanned-out rebuild (chalicelib/rebuild/) on moto's S3 and SQS: the
``render_releases`` handler invoked with the SQS events the queue delivers,
retries and the dead-letter queue, and a concurrent publish at every step."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from support import (
    PUBLIC,
    SOURCE,
    StorageWrapper,
    cloudfront_distribution,
    dumps,
    make_publisher,
    make_release,
    public_tree,
    publish,
    receipt,
    renderer,
    upload,
)

from chalicelib.core.render import Renderer
from chalicelib.keys import STATE_KEY, invalidation_paths
from chalicelib.publisher import Publisher
from chalicelib.rebuild import RebuildService, SqsQueue
from chalicelib.service import s3_client
from chalicelib.settings import Settings
from chalicelib.storage import S3Storage, md5_etag
from newsroom.build import build_site
from newsroom.rebuild import create_rebuild_queue, lambda_record

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
QUEUE = "newsroom-rebuild"


def site_renderer(title: str = "Rebuilt Newsroom") -> Renderer:
    """The renderer after a settings change (what a rebuild is for)."""
    return Renderer(Settings.from_env({"NEWSROOM_SITE_TITLE": title}))


def full_build(s3: Any, r: Renderer) -> dict[str, bytes]:
    sources = sorted((k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/"))
    return build_site(sources, r, now=NOW, workers=1).files


def publisher(s3: Any, r: Renderer | None = None) -> Publisher:
    return make_publisher(s3, NOW, renderer=r)


def service(s3: Any, r: Renderer, *, chunk_size: int = 2, source: Any = None,
            public: Any = None) -> RebuildService:  # fmt: skip
    return RebuildService(
        source or S3Storage(s3, SOURCE),
        public or S3Storage(s3, PUBLIC),
        r,
        SqsQueue(boto3.client("sqs", region_name="us-east-1"), QUEUE),
        clock=lambda: NOW,
        sleep=lambda _s: None,
        chunk_size=chunk_size,
        io_threads=1,
    )


@pytest.fixture
def sqs(aws: Any) -> Any:
    client = boto3.client("sqs", region_name="us-east-1")
    create_rebuild_queue(client, QUEUE, visibility_timeout=0, max_receives=3)
    return client


def drain(sqs: Any, handler: Callable[[dict[str, Any]], Any], limit: int = 500) -> int:
    """Deliver the queue's messages one at a time as Lambda's event source
    mapping does (batch size 1); a failed one stays (visibility timeout 0 here:
    at once visible again) until the redrive moves it to the dead-letter queue."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    handled = 0
    for _ in range(limit):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return handled
        try:
            handler({"Records": [lambda_record(messages[0], arn, "us-east-1")]})
        except Exception:  # noqa: BLE001 - Lambda leaves it on the queue
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        handled += 1
    raise AssertionError("the queue never emptied")


def seed(s3: Any, count: int, **extra: Any) -> dict[str, dict[str, Any]]:
    docs = {}
    for i in range(count):
        doc = make_release(
            title=f"Release {i}",
            published_at=f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}T10:00:00+00:00",
            topics=[["Harbour"], ["Schools", "Budget"], []][i % 3],
            summary=f"Summary {i}",
            **extra,
        )
        key = f"releases/r{i:03d}.json"
        s3.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
        docs[key] = doc
    return docs


def test_the_handler_runs_start_chunks_and_commit_from_sqs_events(
    aws: Any, sqs: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(aws, 7)
    pub = publisher(aws)
    pub.sync_batch([f"releases/r{i:03d}.json" for i in range(7)])
    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")
    monkeypatch.setenv("NEWSROOM_REBUILD_CHUNK_SIZE", "3")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"action": "start"}))  # as a deploy does

    handled = drain(sqs, lambda event: app_module.render_releases(event, None))

    # start, three chunks of at most 3, settle, one step per month (seven), the
    # groups' plan, one batch of topics and kinds, one prune, the commit
    assert handled == 1 + 3 + 1 + 7 + 1 + 1 + 1 + 1
    r = Renderer(Settings.from_env())
    assert public_tree(aws) == full_build(aws, r)
    assert b"Harbor Light Newsroom" in public_tree(aws)["index.html"]
    reports = [k for k in public_tree(aws, SOURCE) if k.endswith("/report.json")]
    assert len(reports) == 1
    report = json.loads(public_tree(aws, SOURCE)[reports[0]])
    assert report["releases"] == 7 and report["attempts"] == 1 and report["problems"] == []


def test_a_rebuild_writes_only_what_changed(aws: Any, sqs: Any) -> None:
    seed(aws, 5)
    r = site_renderer()
    svc = service(aws, r)
    svc.start()
    drain(sqs, svc.handle)
    before = {k: v for k, v in public_tree(aws).items()}
    counters = S3Storage(aws, PUBLIC)
    again = service(aws, r, public=counters)
    again.start()
    drain(sqs, again.handle)
    assert counters.counters.requests.get("PutObject", 0) == 0
    assert counters.counters.requests.get("DeleteObject", 0) == 0
    assert public_tree(aws) == before


def test_rejected_scheduled_and_contested_sources_follow_the_publishers_rules(
    aws: Any, sqs: Any
) -> None:
    seed(aws, 4)
    publisher(aws).sync_batch([f"releases/r{i:03d}.json" for i in range(4)])
    # r001 turns invalid (stays live as published), a newcomer claims r002's slug,
    # one is embargoed, one is broken from the start
    aws.put_object(Bucket=SOURCE, Key="releases/r001.json", Body=b'{"title": ""}')
    claimant = make_release(slug="r002", title="Claimant", published_at="2020-01-01T00:00:00Z")
    aws.put_object(Bucket=SOURCE, Key="releases/zz-claimant.json", Body=dumps(claimant))
    later = make_release(title="Later", embargo_until="2999-01-01T00:00:00+00:00")
    aws.put_object(Bucket=SOURCE, Key="releases/later.json", Body=dumps(later))
    aws.put_object(Bucket=SOURCE, Key="releases/broken.json", Body=b"{")
    r = site_renderer()
    svc = service(aws, r, chunk_size=1)
    svc.start()
    drain(sqs, svc.handle)

    tree = public_tree(aws)
    assert b"Claimant" not in tree["releases/r002/index.html"]
    assert "releases/r001/index.html" in tree  # the last good version stays
    assert not any("later" in k for k in tree)
    report = json.loads(
        next(v for k, v in public_tree(aws, SOURCE).items() if k.endswith("report.json"))
    )
    rejected = {p["source"] for p in report["problems"]}
    assert rejected == {"releases/r001.json", "releases/zz-claimant.json", "releases/broken.json"}
    assert report["kept"] == ["releases/r001/index.html"]
    assert [s["source_key"] for s in report["scheduled"]] == ["releases/later.json"]
    schedule = json.loads(public_tree(aws, SOURCE)["receipts/schedule.json"])
    assert "releases/later.json" in json.dumps(schedule)


def test_an_archived_source_is_a_problem_of_the_rebuild_not_a_failed_step(
    aws: Any, sqs: Any
) -> None:
    """A source in Glacier cannot be read: the rebuild reports it as a
    problem, saying why, and builds the rest (before, its chunk failed every
    try and went to the dead-letter queue)."""
    seed(aws, 3)
    aws.put_object(
        Bucket=SOURCE,
        Key="releases/cold.json",
        Body=dumps(make_release(slug="cold")),
        StorageClass="GLACIER",
    )
    svc = service(aws, site_renderer(), chunk_size=2)
    svc.start()
    drain(sqs, svc.handle)
    tree = public_tree(aws)
    assert not any("cold" in k for k in tree)
    assert all(f"releases/r{i:03d}/index.html" in tree for i in range(3))
    [key] = [
        o["Key"]
        for o in aws.list_objects_v2(Bucket=SOURCE, Prefix="state/")["Contents"]
        if o["Key"].endswith("report.json")
    ]
    report = json.loads(aws.get_object(Bucket=SOURCE, Key=key)["Body"].read())
    [problem] = report["problems"]
    assert problem["source"] == "releases/cold.json"
    assert "archive storage class" in json.dumps(problem)


def test_an_embargoed_update_keeps_the_live_version_and_its_slug(aws: Any, sqs: Any) -> None:
    """A live release whose source now holds an embargoed update stays live,
    as it was, until the update's instant: a rebuild neither drops it nor
    hands its slug to a newcomer, and shows nothing of the update."""
    seed(aws, 3)
    publisher(aws).sync_batch([f"releases/r{i:03d}.json" for i in range(3)])
    live = public_tree(aws)["releases/r000/index.html"]
    update = make_release(slug="r000", title="Secret update", topics=["Hidden Topic"],
                          published_at="2025-01-01T10:00:00+00:00",
                          embargo_until="2999-01-01T00:00:00+00:00")  # fmt: skip
    aws.put_object(Bucket=SOURCE, Key="releases/r000.json", Body=dumps(update))
    assert publisher(aws).sync("releases/r000.json").status == "scheduled"
    claimant = make_release(slug="r000", title="Claimant", published_at="2020-01-01T00:00:00Z")
    aws.put_object(Bucket=SOURCE, Key="releases/zz-claimant.json", Body=dumps(claimant))
    assert publisher(aws).sync("releases/zz-claimant.json").status == "rejected"

    svc = service(aws, site_renderer(), chunk_size=1)
    svc.start()
    drain(sqs, svc.handle)

    tree = public_tree(aws)
    assert tree["releases/r000/index.html"] == live
    index = json.loads(tree["index.json"])
    assert sorted(e["slug"] for e in index["releases"]) == ["r000", "r001", "r002"]
    for needle in (b"Secret update", b"hidden-topic", b"Claimant"):
        assert [k for k, v in tree.items() if needle in v or needle.decode() in k] == []
    report = json.loads(
        next(v for k, v in public_tree(aws, SOURCE).items() if k.endswith("report.json"))
    )
    assert report["kept"] == ["releases/r000/index.html"]
    assert [p["source"] for p in report["problems"]] == ["releases/zz-claimant.json"]
    # the publisher agrees afterwards: the holder's update waits, the newcomer stays out
    assert publisher(aws).sync("releases/zz-claimant.json").status == "rejected"
    assert publisher(aws).sync("releases/r000.json").status == "scheduled"


class Breaks(StorageWrapper):
    """Every write of one key fails, as a bucket that refuses it would."""

    def __init__(self, inner: Any, key: str) -> None:
        super().__init__(inner)
        self.key = key

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        from chalicelib.errors import TransientStorageError

        if key == self.key:
            raise TransientStorageError("the bucket refused it", key)
        return do()


def test_a_failing_chunk_is_retried_then_dead_lettered_and_nothing_is_committed(
    aws: Any, sqs: Any
) -> None:
    from newsroom.rebuild import Watch

    seed(aws, 4)
    publisher(aws).sync_batch([f"releases/r{i:03d}.json" for i in range(4)])
    # a newcomer claims r000's slug (its upload not processed yet): its chunk
    # must not write over the holder's page, which the commit never gets to fix
    claimant = make_release(slug="r000", title="Claimant", published_at="2001-01-01T00:00:00Z")
    aws.put_object(Bucket=SOURCE, Key="releases/zz.json", Body=dumps(claimant))
    state = aws.get_object(Bucket=SOURCE, Key=STATE_KEY)["ETag"]
    r = site_renderer()
    svc = service(aws, r, public=Breaks(S3Storage(aws, PUBLIC), "releases/r003/index.html"))
    manifest = svc.start()
    drain(sqs, svc.handle)

    assert aws.get_object(Bucket=SOURCE, Key=STATE_KEY)["ETag"] == state, "nothing committed"
    queue = SqsQueue(sqs, QUEUE)
    progress = svc.progress(manifest.rebuild_id)
    assert progress.report is None and progress.done == 2
    assert "the bucket refused it" in progress.failures[1]
    lines: list[str] = []
    watch = Watch(svc, queue, manifest.rebuild_id, echo=lines.append, sleep=lambda _s: None)
    watch.run(timeout=5, interval=0.1)
    assert [(d["action"], d["chunk"]) for d in watch.dead] == [("render", 1)]
    assert "dead-letter: 1" in lines[-1]
    # the listings are as they were: no shared page was rewritten; the pages the
    # chunks wrote show their own sources under the new settings
    tree = public_tree(aws)
    assert b"Rebuilt Newsroom" not in tree["index.html"]
    assert b"Claimant" not in tree["releases/r000/index.html"]


class Writes(StorageWrapper):
    """Records the keys written, for the message being handled."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.keys: list[str] = []

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if op == "put":
            self.keys.append(key)
        return do()


def test_each_message_writes_only_its_own_group_of_pages(aws: Any, sqs: Any) -> None:
    """The shared pages are fanned out: a month message writes only that month's
    pages, a topic or kind message only its own, and the commit only the pages
    that list the whole site (never a month's or a topic's)."""
    seed(aws, 9)
    publisher(aws).sync_batch([f"releases/r{i:03d}.json" for i in range(9)])
    public = Writes(S3Storage(aws, PUBLIC))
    svc = service(aws, site_renderer(), chunk_size=4, public=public)
    svc.start()
    by_message: list[tuple[dict[str, Any], list[str]]] = []

    def handle(event: dict[str, Any]) -> None:
        public.keys = []
        svc.handle(event)
        by_message.append((json.loads(event["Records"][0]["body"]), public.keys))

    drain(sqs, handle)

    actions = [m["action"] for m, _keys in by_message]
    assert actions.count("month") == 9 and actions.count("commit") == 1
    for msg, keys in by_message:
        if msg["action"] == "render":
            assert all(k.startswith("releases/") for k in keys), keys
        elif msg["action"] == "month":
            y, m = msg["month"].split("-")
            for key in keys:
                assert (f"/{y}/{m}/" in key or key in (f"index/{y}-{m}.json",
                        f"sitemaps/{y}-{m}.xml")), (msg["month"], key)  # fmt: skip
        elif msg["action"] == "group":
            names = {n.split("/", 1)[1] for n in msg["names"]}
            for key in keys:
                part = key.split("/")
                assert part[0] in ("topics", "kinds") and part[1] in names, key
                assert len(part) == 3 or (len(part) == 4 and part[2].isdigit()), key
        elif msg["action"] == "commit":
            assert keys and all(k.count("/") <= 2 for k in keys), keys
            assert not [k for k in keys if k.startswith(("topics/", "kinds/")) and
                        k.count("/") > 1], keys  # fmt: skip
    assert public_tree(aws) == full_build(aws, site_renderer())


# A concurrent publish at every step ------------------------------------------------------
class AtCall(StorageWrapper):
    """Counts the requests of one rebuild over both buckets (shared counter);
    at the ``n``-th, runs ``then`` (a publish, start to finish) first."""

    def __init__(self, inner: Any, counter: list[int], n: int, then: Callable[[], Any]) -> None:
        super().__init__(inner)
        self.counter, self.n, self.then = counter, n, then

    def _tick(self) -> None:
        self.counter[0] += 1
        if self.counter[0] == self.n:
            self.then()

    def _read(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        self._tick()
        return do()

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        self._tick()
        return do()

    def list(self, prefix: str = "") -> Any:
        self._tick()
        return self.inner.list(prefix)

    def list_etags(self, prefix: str = "") -> dict[str, str]:
        self._tick()
        return self.inner.list_etags(prefix)


SOLO = make_release(
    title="Only harbour-light release", topics=["Lighthouse"],
    published_at="2024-03-01T10:00:00+00:00",
)  # fmt: skip
AGAIN = make_release(
    title="Lighthouse again", topics=["Lighthouse"], published_at="2024-03-09T10:00:00+00:00"
)


def prepare(s3: Any, sqs: Any, r: Renderer) -> dict[str, dict[str, bytes]]:
    """A published site whose source bucket has moved on: solo's source was
    deleted and its delete is not processed yet. Published under the default
    settings; when ``r`` renders the same, a rebuild has run since (so the next
    one trusts unchanged pages). Returns both buckets' objects, for ``restore``."""
    seed(s3, 3)
    s3.put_object(Bucket=SOURCE, Key="releases/solo.json", Body=dumps(SOLO))
    publisher(s3).sync_batch([*(f"releases/r{i:03d}.json" for i in range(3)), "releases/solo.json"])
    if r.theme == renderer().theme:
        svc = service(s3, r)
        svc.start()
        drain(sqs, svc.handle)
    s3.delete_object(Bucket=SOURCE, Key="releases/solo.json")
    return {bucket: public_tree(s3, bucket) for bucket in (SOURCE, PUBLIC)}


def etags(s3: Any, bucket: str) -> dict[str, str]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = item["ETag"]
    return out


def restore(s3: Any, snapshot: dict[str, dict[str, bytes]]) -> None:
    """Both buckets back to ``snapshot``, rewriting only what differs."""
    for bucket, objects in snapshot.items():
        now = etags(s3, bucket)
        for key in now.keys() - objects.keys():
            s3.delete_object(Bucket=bucket, Key=key)
        for key, body in objects.items():
            if now.get(key) != md5_etag(body):
                s3.put_object(Bucket=bucket, Key=key, Body=body)


def differences(s3: Any, want: dict[str, bytes]) -> list[str]:
    """Public keys whose bytes differ from ``want`` (or are missing or extra)."""
    have = etags(s3, PUBLIC)
    return sorted(k for k in have.keys() | want.keys()
                  if k not in want or have.get(k) != md5_etag(want[k]))  # fmt: skip


def concurrent_publish(s3: Any, r: Renderer) -> None:
    """Uploads processed by sync_release (new settings deployed) while the rebuild runs:
    an update, a delete, a new release that needs what solo's removal drops
    (its topic and month), and solo's own removal."""
    s3.put_object(
        Bucket=SOURCE, Key="releases/r000.json", Body=dumps(make_release(title="Updated zero"))
    )
    s3.delete_object(Bucket=SOURCE, Key="releases/r002.json")
    s3.put_object(Bucket=SOURCE, Key="releases/again.json", Body=dumps(AGAIN))
    outcome = publisher(s3, r).sync_batch(
        ["releases/r000.json", "releases/r002.json", "releases/again.json", "releases/solo.json"]
    )
    assert not outcome.failed


def step_spans(sqs: Any, svc: RebuildService, counter: list[int]) -> dict[str, tuple[int, int]]:
    """Run the rebuild whole; the requests (first, last) of its start and of
    the first message of each kind (render, settle, month, groups, group,
    prune, commit), counted on ``counter``."""
    spans = {"start": (counter[0] + 1, 0)}
    svc.start()
    spans["start"] = (spans["start"][0], counter[0])

    def handle(event: dict[str, Any]) -> None:
        action = json.loads(event["Records"][0]["body"]).get("action")
        first = counter[0] + 1
        svc.handle(event)
        spans.setdefault(action, (first, counter[0]))

    drain(sqs, handle)
    return {step: span for step, span in spans.items() if span[0] <= span[1]}


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ("changed", "middle"),
        ("unchanged", "first"),
        pytest.param("changed", "every", marks=pytest.mark.stress),
        pytest.param("unchanged", "every", marks=pytest.mark.stress),
    ],
    ids=["new-theme-inside-each-step", "same-theme-first-request-of-each-step",
         "new-theme-every-request", "same-theme-every-request"],
)  # fmt: skip
def test_a_publish_at_any_step_of_a_rebuild_is_never_undone(
    aws: Any, sqs: Any, settings: str, where: str
) -> None:
    """For every N: the rebuild runs, and at its N-th storage request a publish
    runs start to finish. Whatever N, the public site ends byte for byte what a
    full build of the final sources gives (nothing the publish committed is
    deleted or overwritten by the rebuild's older view). Under changed settings
    every page is rendered again; under unchanged ones the rebuild trusts the
    pages of unchanged sources. The suite runs one N inside each step (the
    start, a chunk, settle, a month, the groups, a topic or kind, a prune, the
    commit): its middle request, or its first; ``make stress`` runs every N."""
    r = site_renderer() if settings == "changed" else renderer()
    snapshot = prepare(aws, sqs, r)
    counter = [0]
    svc = service(aws, r, source=AtCall(S3Storage(aws, SOURCE), counter, 0, lambda: None),
                  public=AtCall(S3Storage(aws, PUBLIC), counter, 0, lambda: None))  # fmt: skip
    spans = step_spans(sqs, svc, counter)
    steps = counter[0]
    every_step = {"start", "settle", "month", "groups", "group", "prune", "commit"}
    if settings == "changed":
        every_step.add("render")  # with unchanged settings no page needs rendering again
    assert every_step <= spans.keys(), sorted(spans)

    failures = []
    want: dict[str, bytes] | None = None  # the same final sources every time: built once
    if where == "every":
        sampled = list(range(1, steps + 1))
    else:
        pick = (lambda a, b: (a + b) // 2) if where == "middle" else (lambda a, b: a)
        sampled = sorted({pick(*span) for span in spans.values()})
    for n in sampled:
        restore(aws, snapshot)
        counter = [0]

        def then() -> None:
            concurrent_publish(aws, r)

        svc = service(
            aws, r,
            source=AtCall(S3Storage(aws, SOURCE), counter, n, then),
            public=AtCall(S3Storage(aws, PUBLIC), counter, n, then),
        )  # fmt: skip
        svc.start()
        drain(sqs, svc.handle)
        if counter[0] < n:
            concurrent_publish(aws, r)  # the rebuild took fewer steps this time
        if want is None:
            want = full_build(aws, r)
        diff = differences(aws, want)
        if diff:
            failures.append((n, diff[:5]))
    assert failures == [], failures


class BeforeWrite(StorageWrapper):
    """Runs ``then`` (once) just before the first write of ``key``."""

    def __init__(self, inner: Any, key: str, then: Callable[[], Any]) -> None:
        super().__init__(inner)
        self.key, self.then = key, then

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if key == self.key and self.then is not None:
            then, self.then = self.then, None
            then()
        return do()


@pytest.mark.parametrize(
    "to", ["2025-06", "2025-02", None],
    ids=["to-a-month-the-rebuild-has-not", "to-a-month-whose-step-runs-later", "deleted"],
)
def test_a_publish_moving_a_release_while_a_rebuild_runs_leaves_one_findable_entry(
    aws: Any, sqs: Any, to: str | None
) -> None:
    """A release under a slug its file name does not imply moved from January
    to March in its source; a rebuild reads it there, and its March step has
    kept it and is about to write its hints when a publish moves it again (to
    a month the rebuild never had, or to one whose step runs after the
    publish) or deletes it: no month the stale step read changes. The commit
    must still drop the rebuild's March entry (before: listed twice in its
    topics and kinds, or a deleted release back on the site), and the hints
    must still name the publish's month (before: overwritten with March alone,
    the next update added a second entry and a delete left the release live)."""
    from chalicelib.keys import slug_hint_key

    key = "releases/story-k.json"
    doc = make_release(slug="moving", title="Moving", published_at="2025-01-10T10:00:00+00:00")
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
    aws.put_object(Bucket=SOURCE, Key="releases/february.json",
                   Body=dumps(make_release(title="February", topics=["Harbour"],
                                           published_at="2025-02-03T10:00:00+00:00")))  # fmt: skip
    assert not publisher(aws).sync_batch([key, "releases/february.json"]).failed
    r = renderer()
    aws.put_object(Bucket=SOURCE, Key=key,
                   Body=dumps({**doc, "published_at": "2025-03-10T10:00:00+00:00"}))  # fmt: skip

    def publish_meanwhile() -> None:
        if to is None:
            aws.delete_object(Bucket=SOURCE, Key=key)
        else:
            moved = {**doc, "title": "Moved", "published_at": f"{to}-10T10:00:00+00:00"}
            aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(moved))
        publisher(aws, r).sync(key)

    svc = service(aws, r, source=BeforeWrite(S3Storage(aws, SOURCE), slug_hint_key("moving"),
                                             publish_meanwhile))  # fmt: skip
    svc.start()
    drain(sqs, svc.handle)
    assert svc.source.then is None, "the rebuild wrote the release's hint"
    assert differences(aws, full_build(aws, r)) == []
    if to is None:
        assert not [k for k in etags(aws, PUBLIC) if k.startswith("releases/moving")]
        return

    # updated again (another month): one entry, where the source says
    aws.put_object(Bucket=SOURCE, Key=key,
                   Body=dumps({**doc, "published_at": "2025-09-10T10:00:00+00:00"}))  # fmt: skip
    assert publisher(aws, r).sync(key).status == "published"
    assert differences(aws, full_build(aws, r)) == []
    # deleted: the release goes
    aws.delete_object(Bucket=SOURCE, Key=key)
    publisher(aws, r).sync(key)
    assert not [k for k in etags(aws, PUBLIC) if k.startswith("releases/moving")]
    assert differences(aws, full_build(aws, r)) == []


# What `newsroom rebuild` promises, through the render_releases handler --------------------
RELEASES = {
    "releases/clinics.json": make_release(slug="clinics"),
    "releases/water report.json": make_release(
        slug="water-report", title="Unequal shores: the clean water report", kind="report",
        published_at="2019-03-02T09:00:00+01:00", topics=["Clean Water"], image=None,
    ),
    "releases/statement.json": make_release(
        slug="statement", title="Statement on the flood relief", kind="statement",
        published_at="2020-07-14T16:30:00-04:00", topics=["Floods"], image=None,
    ),
}  # fmt: skip


def publish_all(aws: Any, app_module: Any, docs: dict[str, Any]) -> None:
    for key, doc in docs.items():
        publish(app_module, aws, key, doc, encoded=key.replace(" ", "+"))


def run(aws: Any, sqs: Any, app_module: Any, **start: Any) -> dict[str, Any]:
    """Start a rebuild as a deploy does (a start message), let render_releases
    consume the queue, return the rebuild's report."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    before = {k for k in etags(aws, SOURCE) if k.endswith("/report.json")}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"action": "start", **start}))
    drain(sqs, lambda event: app_module.render_releases(event, None))
    # this rebuild's report: ids of two rebuilds in one second need not sort by time
    (report,) = {k for k in etags(aws, SOURCE) if k.endswith("/report.json")} - before
    return json.loads(aws.get_object(Bucket=SOURCE, Key=report)["Body"].read())


def invalidations(cf: Any, dist_id: str) -> list[list[str]]:
    out = []
    for item in cf.list_invalidations(DistributionId=dist_id)["InvalidationList"].get("Items", []):
        inv = cf.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"]
        out.append(inv["InvalidationBatch"]["Paths"]["Items"])
    return out


def modified(aws: Any) -> dict[str, tuple[str, Any]]:
    out = {}
    for page in aws.get_paginator("list_objects_v2").paginate(Bucket=PUBLIC):
        for item in page.get("Contents", []):
            out[item["Key"]] = (item["ETag"], item["LastModified"])
    return out


def test_a_rebuild_of_a_site_the_lambda_published_writes_and_reads_nothing_it_need_not(
    aws: Any, sqs: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cf, dist_id = cloudfront_distribution(monkeypatch)
    publish_all(aws, app_module, RELEASES)
    publish(app_module, aws, "releases/later.json",
            make_release(embargo_until="2999-01-01T00:00:00Z"))  # fmt: skip
    before = modified(aws)
    schedule = aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    sent = len(invalidations(cf, dist_id))
    # the first rebuild renders every page (nothing tells which theme each page
    # was rendered under), finds the bytes equal and writes nothing
    assert run(aws, sqs, app_module)["written"] == 0
    assert modified(aws) == before
    read: list[str] = []
    s3_client().meta.events.register(
        "before-call.s3.GetObject", lambda params, **kw: read.append(params["url_path"])
    )

    report = run(aws, sqs, app_module)

    assert (report["releases"], report["written"], report["deleted"]) == (3, 0, [])
    assert [s["source_key"] for s in report["scheduled"]] == ["releases/later.json"]
    assert modified(aws) == before  # same ETag and LastModified: nothing was PUT
    assert aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read() == schedule
    assert len(invalidations(cf, dist_id)) == sent
    # unchanged sources are not even read (their listed ETag is their entry's digest);
    # the scheduled one is, by its chunk and again by the commit (its instant may pass)
    assert {p for p in read if p.startswith("/releases/")} == {"/releases/later.json"}


def test_a_settings_change_rewrites_every_page_and_sends_one_invalidation(
    aws: Any, sqs: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cf, dist_id = cloudfront_distribution(monkeypatch)
    publish_all(aws, app_module, RELEASES)
    before = public_tree(aws)
    sent = len(invalidations(cf, dist_id))
    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")
    monkeypatch.setenv("NEWSROOM_REBUILD_CHUNK_SIZE", "1")

    report = run(aws, sqs, app_module)

    after = public_tree(aws)
    assert after.keys() == before.keys()  # (the stylesheet does not show the title)
    for key in (k for k in after if k.endswith(".html")):
        assert b"Harbor Light Newsroom" in after[key], key
    changed = {k for k in after if after[k] != before.get(k)}
    assert report["written"] == len(changed)
    new_sent = invalidations(cf, dist_id)
    assert len(new_sent) == sent + 1
    want = {p for k in changed for p in invalidation_paths(k)}
    assert set(new_sent[-1]) == want
    assert after == full_build(aws, Renderer(Settings.from_env()))
    # again: the site is converged, nothing is written or sent
    again = run(aws, sqs, app_module)
    assert again["written"] == 0 and len(invalidations(cf, dist_id)) == sent + 1


def test_an_invalid_update_of_a_live_release_keeps_it_as_published(
    aws: Any, sqs: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_all(aws, app_module, RELEASES)
    publish(app_module, aws, "releases/statement.json",
            make_release(slug="statement", kind="opinion"))  # fmt: skip
    page = public_tree(aws)["releases/statement/index.html"]
    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")

    report = run(aws, sqs, app_module)

    assert report["kept"] == ["releases/statement/index.html"]
    assert [p["loc"] for p in report["problems"]] == ["kind"]
    tree = public_tree(aws)
    assert tree["releases/statement/index.html"] == page  # not re-rendered, not removed
    assert b"/releases/statement/" in tree["index.html"]


def test_the_slug_holder_keeps_its_slug(aws: Any, sqs: Any, app_module: Any) -> None:
    holder = make_release(slug="clinics", published_at="2019-01-01T10:00:00Z")
    newcomer = make_release(slug="clinics", title="Older claim",
                            published_at="2017-01-01T10:00:00Z")  # fmt: skip
    publish_all(aws, app_module, {"releases/holder.json": holder})
    publish_all(aws, app_module, {"releases/newcomer.json": newcomer})
    before = public_tree(aws)

    report = run(aws, sqs, app_module, full=True)

    assert [p["source"] for p in report["problems"]] == ["releases/newcomer.json"]
    assert "releases/holder.json" in report["problems"][0]["msg"]
    assert public_tree(aws) == before


def test_prunes_what_the_site_no_longer_has_but_never_media(
    aws: Any, sqs: Any, app_module: Any
) -> None:
    publish_all(aws, app_module, RELEASES)
    extra = {
        "releases/ghost/index.html": b"<p>orphan</p>",
        "topics/gone/index.html": b"<p>old topic</p>",
        "assets/style.000000000000.css": b"body{}",
        "media/clinic.jpg": b"\xff\xd8\xff\xd9",
        "google0123456789abcdef.html": b"google-site-verification",
    }
    for key, body in extra.items():
        aws.put_object(Bucket=PUBLIC, Key=key, Body=body)

    report = run(aws, sqs, app_module)

    assert report["deleted"] == sorted(list(extra)[:3])
    tree = public_tree(aws)
    assert tree["media/clinic.jpg"] == extra["media/clinic.jpg"]
    assert tree["google0123456789abcdef.html"] == extra["google0123456789abcdef.html"]


def test_full_repairs_a_page_edited_by_hand(aws: Any, sqs: Any, app_module: Any) -> None:
    publish_all(aws, app_module, RELEASES)
    run(aws, sqs, app_module)  # every page rendered under this theme: trusted from now on
    key = "releases/clinics/index.html"
    good = aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read()
    aws.put_object(Bucket=PUBLIC, Key=key, Body=b"edited by hand")

    run(aws, sqs, app_module)
    assert aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == b"edited by hand"

    report = run(aws, sqs, app_module, full=True)
    assert report["written"] == 1
    assert aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == good


def test_a_release_whose_embargo_ran_out_still_gets_its_published_receipt(
    aws: Any, sqs: Any, app_module: Any
) -> None:
    earlier = Publisher(
        S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), Renderer(Settings.from_env()),
        clock=lambda: datetime(2020, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    upload(aws, "releases/due.json", make_release(slug="due", embargo_until="2020-06-01T00:00:00Z"))
    assert earlier.sync("releases/due.json").status == "scheduled"

    run(aws, sqs, app_module)

    assert "releases/due/index.html" in public_tree(aws)
    schedule = json.loads(aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read())
    assert [s["source_key"] for s in schedule["releases"]] == ["releases/due.json"]
    event = {  # what the rate(5 minutes) rule delivers
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2026-11-25T14:05:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-publish_due_releases"],
        "detail": {},
    }  # fmt: skip
    out = app_module.publish_due_releases(event, None)
    assert [r["status"] for r in out] == ["published"]
    assert receipt(aws, "releases/due.json")["status"] == "published"


def test_a_malformed_message_is_dropped_not_retried(aws: Any, sqs: Any, app_module: Any) -> None:
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    for body in ["not json", json.dumps({"action": "render"}), json.dumps({"action": "x"})]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert drain(sqs, lambda event: app_module.render_releases(event, None)) == 3


class AfterWrite(StorageWrapper):
    """Runs ``then`` (once) just after the first write of ``key`` landed."""

    def __init__(self, inner: Any, key: str, then: Callable[[], Any]) -> None:
        super().__init__(inner)
        self.key, self.then = key, then

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        out = do()
        if key == self.key and self.then is not None:
            then, self.then = self.then, None
            then()
        return out


@pytest.mark.parametrize(
    ("moment", "step"),
    [(BeforeWrite, "claim"), (BeforeWrite, "page"), (AfterWrite, "page")],
    ids=["before-its-claim", "before-its-page", "after-its-page"],
)
def test_a_publish_taking_a_new_slug_a_chunk_writes_leaves_one_holder(
    aws: Any, sqs: Any, moment: type, step: str
) -> None:
    """A rebuild's chunk finds no page under the slug of a file nobody has
    published yet and takes it, when a publish of another file with that
    slug runs start to finish: just before the chunk claims the slug (the
    publish holds it), just before the chunk writes the page, or just after
    (the chunk holds it: the publish is refused). Either way one file holds
    the slug and the other is nowhere on the site, which ends as a full
    build without it. Before, the chunk wrote over the publish's page, or
    the publish over the chunk's, and the rebuild committed the chunk's
    entry beside the publish's: both listed under one slug."""
    from chalicelib.keys import claim_key

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release(slug="first")))
    publisher(aws).sync("releases/first.json")
    doc = make_release(slug="same", title="From A", published_at="2025-01-10T10:00:00+00:00")
    aws.put_object(Bucket=SOURCE, Key="releases/a.json", Body=dumps(doc))
    r = renderer()
    receipts: list[Any] = []

    def publish_meanwhile() -> None:
        other = make_release(slug="same", title="From B", published_at="2025-05-10T10:00:00+00:00")
        aws.put_object(Bucket=SOURCE, Key="releases/b.json", Body=dumps(other))
        receipts.append(publisher(aws, r).sync("releases/b.json"))

    source, public = S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC)
    if step == "claim":
        source = moment(source, claim_key("same"), publish_meanwhile)
    else:
        public = moment(public, "releases/same/index.html", publish_meanwhile)
    svc = service(aws, r, source=source, public=public)
    svc.start()
    drain(sqs, svc.handle)
    assert len(receipts) == 1, "the publish ran"
    refused = "releases/a.json" if receipts[0].status == "published" else "releases/b.json"
    assert step == "claim" or refused == "releases/b.json", "the chunk held the slug"
    sources = sorted(
        (k, v)
        for k, v in public_tree(aws, SOURCE).items()
        if k.startswith("releases/") and k != refused
    )
    want = build_site(sources, r, now=NOW, workers=1).files
    assert differences(aws, want) == []
    assert claim_key("same") not in public_tree(aws, SOURCE), "no claim left"
