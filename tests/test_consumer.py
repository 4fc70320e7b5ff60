"""sync_release as the publish queue's consumer: real SQS event JSON (S3
notifications inside), the real handler, moto S3. A batch converges together;
bad input is a receipt; an infrastructure fault sends back only its messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from support import (
    EVENTS,
    PUBLIC,
    SOURCE,
    dumps,
    make_release,
    public_tree,
    publish,
    queue_event,
    receipt,
    renderer,
    s3_event,
    upload,
)
from test_media import JPEG

from chalicelib import service
from chalicelib.keys import STATE_KEY
from newsroom.build import build_site

OK = {"batchItemFailures": []}


def build_now(s3: Any) -> dict[str, bytes]:
    from datetime import UTC, datetime

    sources = sorted(
        (k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/")
    )
    return build_site(sources, renderer(), now=datetime.now(UTC), workers=1).files


def site_pages(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in tree.items() if not k.startswith("media/")}


@contextmanager
def refused_gets(key: str, code: str, message: str, status: int) -> Iterator[None]:
    """S3 answers every GET of ``key`` with this error, injected at the SDK's
    edge, below our code."""
    from botocore.exceptions import ClientError

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key:
            raise ClientError(
                {"Error": {"Code": code, "Message": message},
                 "ResponseMetadata": {"HTTPStatusCode": status}},
                "GetObject",
            )  # fmt: skip

    events = service.s3_client().meta.events
    events.register("before-parameter-build.s3.GetObject", refuse, "test-refuse")
    try:
        yield
    finally:
        events.unregister("before-parameter-build.s3.GetObject", unique_id="test-refuse")


def failing_reads(key: str) -> Any:
    """A throttled or broken request: an infrastructure fault."""
    return refused_gets(key, "SlowDown", "Please reduce your request rate.", 503)


def sse_c_object(key: str) -> Any:
    """S3's answer to a GET, without the key, of an object uploaded with a
    customer-provided key (SSE-C), which moto does not enforce; the
    publisher never sends such a key."""
    message = (
        "The object was stored using a form of Server Side Encryption. The correct "
        "parameters must be provided to retrieve the object."
    )
    return refused_gets(key, "InvalidRequest", message, 400)


def test_a_mixed_batch_from_a_real_event_file_converges(app_module: Any, aws: Any) -> None:
    """Deletes, a URL-encoded key delivered twice, media, S3's test event, all
    out of order: the site is what a build of the sources gives."""
    publish(
        app_module,
        aws,
        "releases/old news.json",
        make_release(slug="old-news", title="Old news"),
        encoded="releases/old+news.json",
    )
    assert "releases/old-news/index.html" in public_tree(aws)
    aws.delete_object(Bucket=SOURCE, Key="releases/old news.json")
    upload(aws, "releases/Café (draft).json", make_release(slug="cafe", title="Café"))
    aws.put_object(Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG)

    event = json.loads((EVENTS / "sqs_mixed_batch.json").read_text())
    assert app_module.sync_release(event, None) == OK

    tree = public_tree(aws)
    assert "releases/old-news/index.html" not in tree
    assert receipt(aws, "releases/old news.json")["status"] == "unpublished"
    assert receipt(aws, "releases/Café (draft).json")["status"] == "published"
    assert tree["media/clinic.jpg"] == JPEG
    assert site_pages(tree) == build_now(aws)
    # one commit for the whole batch
    index = json.loads(tree["index.json"])
    assert [r["slug"] for r in index["releases"]] == ["cafe"]


def test_the_s3_test_event_is_ignored(app_module: Any, aws: Any) -> None:
    event = json.loads((EVENTS / "sqs_s3_test_event.json").read_text())
    assert app_module.sync_release(event, None) == OK
    assert public_tree(aws) == {}
    assert public_tree(aws, SOURCE) == {}


def test_a_batch_publishes_with_one_commit(app_module: Any, aws: Any) -> None:
    keys = [f"releases/r{n}.json" for n in range(8)]
    for n, key in enumerate(keys):
        upload(aws, key, make_release(slug=f"r{n}", title=f"Release {n}"))
    publisher = service.publisher()
    puts_before = publisher.public.counters.requests.get("PutObject", 0)
    out = app_module.sync_release(queue_event(*(s3_event(k) for k in keys)), None)
    assert out == OK
    assert all(receipt(aws, k)["status"] == "published" for k in keys)
    tree = public_tree(aws)
    assert tree == build_now(aws)
    puts = publisher.public.counters.requests.get("PutObject", 0) - puts_before
    # each page and listing once, plus the slug claim: not a rewrite per release
    assert puts <= len(tree) + 1, (puts, len(tree))


def test_a_poison_file_is_rejected_and_the_rest_of_the_batch_goes_on(
    app_module: Any, aws: Any
) -> None:
    """A lone surrogate in the body (valid JSON, not encodable as UTF-8)."""
    upload(aws, "releases/good.json", make_release(slug="good"))
    raw = dumps(make_release(slug="poison", summary=None)).replace(
        b"The clinics", b"The \\ud800 clinics"
    )
    upload(aws, "releases/poison.json", raw)
    event = queue_event(s3_event("releases/poison.json"), s3_event("releases/good.json"))
    assert app_module.sync_release(event, None) == OK
    bad = receipt(aws, "releases/poison.json")
    assert bad["status"] == "rejected" and bad["errors"]
    assert receipt(aws, "releases/good.json")["status"] == "published"
    tree = public_tree(aws)
    assert "releases/good/index.html" in tree
    assert not any("poison" in k for k in tree)


def test_an_archived_source_is_rejected_with_why_and_the_batch_goes_on(
    app_module: Any, aws: Any
) -> None:
    """A file S3 keeps in Glacier cannot be read by any retry: before, its
    message failed until the dead-letter queue and every sweep failed on it."""
    aws.put_object(
        Bucket=SOURCE,
        Key="releases/cold.json",
        Body=dumps(make_release(slug="cold")),
        StorageClass="GLACIER",
    )
    upload(aws, "releases/warm.json", make_release(slug="warm"))
    event = queue_event(s3_event("releases/cold.json"), s3_event("releases/warm.json"))
    assert app_module.sync_release(event, None) == OK
    cold = receipt(aws, "releases/cold.json")
    assert cold["status"] == "rejected"
    [error] = cold["errors"]
    assert error["loc"] == "(file)" and "archive storage class" in error["msg"]
    assert receipt(aws, "releases/warm.json")["status"] == "published"
    assert not any("cold" in k for k in public_tree(aws))
    # the sweep finds nothing left to do for it (its receipt is newer), and no fault
    report = service.sweeper().run()
    assert report.failed == [] and [r.source_key for r in report.receipts] == []


def test_a_source_encrypted_with_the_uploaders_own_key_is_rejected_with_why(
    app_module: Any, aws: Any
) -> None:
    upload(aws, "releases/sealed.json", make_release(slug="sealed"))
    upload(aws, "releases/open.json", make_release(slug="open"))
    event = queue_event(s3_event("releases/sealed.json"), s3_event("releases/open.json"))
    with sse_c_object("releases/sealed.json"):
        assert app_module.sync_release(event, None) == OK
    sealed = receipt(aws, "releases/sealed.json")
    assert sealed["status"] == "rejected" and "SSE-C" in sealed["errors"][0]["msg"]
    assert receipt(aws, "releases/open.json")["status"] == "published"
    assert not any("sealed" in k for k in public_tree(aws))


def test_an_infrastructure_fault_sends_back_only_its_messages(app_module: Any, aws: Any) -> None:
    upload(aws, "releases/ok.json", make_release(slug="ok"))
    upload(aws, "releases/stuck.json", make_release(slug="stuck"))
    event = queue_event(
        s3_event("releases/ok.json"), s3_event("releases/stuck.json"), s3_event("releases/ok.json")
    )
    with failing_reads("releases/stuck.json"):
        out = app_module.sync_release(event, None)
    assert out == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert receipt(aws, "releases/ok.json")["status"] == "published"
    assert "releases/stuck/index.html" not in public_tree(aws)
    # the redelivered message converges
    redelivered = {"Records": [event["Records"][1]]}
    assert app_module.sync_release(redelivered, None) == OK
    assert receipt(aws, "releases/stuck.json")["status"] == "published"
    assert public_tree(aws) == build_now(aws)


def test_a_fault_in_the_shared_commit_sends_back_every_message(app_module: Any, aws: Any) -> None:
    """The commit point cannot be read: nothing is decided, every message comes
    back (media too: whether a media file is public depends on the index)."""
    upload(aws, "releases/a.json", make_release(slug="a"))  # its image is media/clinic.jpg
    aws.put_object(Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG)
    event = queue_event(s3_event("releases/a.json"), s3_event("media/clinic.jpg"))
    with failing_reads(STATE_KEY):
        out = app_module.sync_release(event, None)
    assert out == {
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
    }
    assert public_tree(aws) == {}
    assert app_module.sync_release(event, None) == OK
    assert site_pages(public_tree(aws)) == build_now(aws)
    assert public_tree(aws, PUBLIC)["media/clinic.jpg"] == JPEG


def test_a_malformed_message_does_not_hold_up_the_batch(app_module: Any, aws: Any) -> None:
    """A body no S3 notification ever looked like, among good ones: it is
    acknowledged and the rest of the batch publishes."""
    upload(aws, "releases/good.json", make_release(slug="good"))
    event = queue_event(s3_event("releases/good.json"))
    broken = dict(event["Records"][0], messageId="broken")
    broken["body"] = json.dumps({"Records": [{"s3": None}, {"s3": {"object": None}}]})
    event["Records"].insert(0, broken)
    assert app_module.sync_release(event, None) == OK
    assert receipt(aws, "releases/good.json")["status"] == "published"


def test_folder_markers_are_not_files(app_module: Any, aws: Any) -> None:
    """Staff create folders under media/ in the console; the zero-byte marker
    is announced like a file, but gets no receipt and publishes nothing."""
    for key in ("media/", "media/2024/", "releases/drafts/"):
        aws.put_object(Bucket=SOURCE, Key=key, Body=b"")
    event = queue_event(*(s3_event(k) for k in ("media/", "media/2024/", "releases/drafts/")))
    assert app_module.sync_release(event, None) == OK
    assert public_tree(aws) == {}
    assert not [k for k in public_tree(aws, SOURCE) if k.startswith("receipts/")]


def test_records_of_another_bucket_change_nothing(app_module: Any, aws: Any) -> None:
    """Another bucket's events on the publish queue (its rule pointed at the
    wrong queue): no receipt, no state, no page for a key we never held."""
    event = queue_event(
        s3_event("releases/theirs.json", bucket="staging-source"),
        s3_event("media/theirs.jpg", bucket="staging-source"),
    )
    assert app_module.sync_release(event, None) == OK
    assert public_tree(aws) == {}
    assert public_tree(aws, SOURCE) == {}


def test_a_notification_through_sns_publishes(app_module: Any, aws: Any) -> None:
    """The bucket's events fanned out through an SNS topic to the publish
    queue (raw message delivery off): the release is published at once, not
    at the next sweep."""
    upload(aws, "releases/a b.json", make_release(slug="a-b"))
    envelope = {
        "Type": "Notification",
        "MessageId": "0a7d4d6b-6c4f-5b0e-9f7c-1e2d3c4b5a69",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:newsroom-source-events",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(s3_event("releases/a+b.json")),
        "Timestamp": "2026-11-25T10:00:00.000Z",
    }
    event = queue_event(s3_event("releases/unused.json"))
    event["Records"][0]["body"] = json.dumps(envelope)
    assert app_module.sync_release(event, None) == OK
    assert receipt(aws, "releases/a b.json")["status"] == "published"
    assert "releases/a-b/index.html" in public_tree(aws)


def test_a_body_that_names_nothing_is_logged(app_module: Any, aws: Any, caplog: Any) -> None:
    """An EventBridge event routed to the publish queue is not an S3
    notification: acknowledged, and said in a warning (ops see why nothing
    was published until the sweep)."""
    import logging

    body = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": SOURCE}, "object": {"key": "releases/a.json"}},
    }
    event = queue_event(s3_event("releases/unused.json"))
    event["Records"][0]["body"] = json.dumps(body)
    log = logging.getLogger("newsroom")
    log.addHandler(caplog.handler)
    try:
        assert app_module.sync_release(event, None) == OK
    finally:
        log.removeHandler(caplog.handler)
    warnings = [r for r in caplog.records if r.name == "newsroom.queue"]
    assert warnings and warnings[0].levelname == "WARNING"
    assert event["Records"][0]["messageId"] in warnings[0].getMessage()
