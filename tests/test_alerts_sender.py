"""From a commit to one e-mail per matching subscriber, exactly once: the
listener, ``send_alerts`` on real SQS event JSON, DynamoDB and SES on moto."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest
from alerts_support import API_URL, TABLE, Outbox, drain, receive_all, sqs_event, subscribe
from botocore.exceptions import ClientError, ReadTimeoutError
from chalice.test import Client
from support import PUBLIC, log_text

from chalicelib import service
from chalicelib.alerts.mail import OutgoingMail
from chalicelib.alerts.sender import alert_payload, matches, release_id
from chalicelib.listeners import Commit, Published

ENTRY = {
    "slug": "clinics-reopen",
    "title": "Coastal clinics reopen after the storm",
    "kind": "report",
    "kind_label": "Report",
    "published_at": "2018-12-19T10:00:00-05:00",
    "updated_at": None,
    "summary": "Three clinics reopen in Bayline.",
    "url": "https://news.example.org/releases/clinics-reopen/",
    "image": {"url": "/media/clinic.jpg", "alt": "Nurses outside a clinic", "credit": "Mara Quint"},
    "topics": ["Clean Water", "Côte d'Ivoire"],
    "language": "en",
    "source_key": "releases/clinics-reopen.json",
    "revision": "abc",
    "source_digest": "def",
}


def entry(**overrides: Any) -> dict[str, Any]:
    return {**ENTRY, **overrides}


def list_publicly(*entries: dict[str, Any]) -> None:
    """What the publisher's commit does before it announces: each entry listed
    in its month file of the public bucket (the sender checks it is there)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    for e in entries:
        key = f"index/{e['published_at'][:7]}.json"
        try:
            doc = json.loads(s3.get_object(Bucket=PUBLIC, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            doc = {"version": 2, "month": e["published_at"][:7], "releases": []}
        doc["releases"] = [r for r in doc["releases"] if r["slug"] != e["slug"]] + [e]
        s3.put_object(Bucket=PUBLIC, Key=key, Body=json.dumps(doc).encode())


def take_down(slug: str, month: str = "2018-12") -> None:
    """What deleting its source file does to the month file of a release."""
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"index/{month}.json"
    doc = json.loads(s3.get_object(Bucket=PUBLIC, Key=key)["Body"].read())
    doc["releases"] = [r for r in doc["releases"] if r["slug"] != slug]
    s3.put_object(Bucket=PUBLIC, Key=key, Body=json.dumps(doc).encode())


def announce(*published: Published) -> None:
    list_publicly(*(p.entry for p in published if p.first_time))
    service.alert_announcer(service.settings()).on_commit(Commit(published=list(published)))


def alerts_to(outbox: Outbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in outbox.sent:
        if "List-Unsubscribe" in m.headers:
            counts[m.to] = counts.get(m.to, 0) + 1
    return counts


def deliveries() -> dict[str, str]:
    """state of every (release, subscriber) record"""
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    return {
        i["pk"]["S"] + "|" + i["sk"]["S"]: i["state"]["S"]
        for i in items
        if i["pk"]["S"].startswith("sent#")
    }


# pure rules -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topics", "kinds", "expected"),
    [
        ([], [], True),
        (["clean-water"], [], True),
        (["cote-d-ivoire", "other"], [], True),
        (["other"], [], False),
        ([], ["report"], True),
        ([], ["statement", "victory"], False),
        (["clean-water"], ["statement"], False),
        (["clean-water"], ["report"], True),
    ],
)
def test_topic_and_kind_filters(topics: list[str], kinds: list[str], expected: bool) -> None:
    release = alert_payload(ENTRY, "https://news.example.org")
    assert matches({"topics": topics, "kinds": kinds}, release) is expected


def test_payload_has_absolute_urls_and_no_private_fields() -> None:
    payload = alert_payload(ENTRY, "https://news.example.org")
    assert payload["image"]["url"] == "https://news.example.org/media/clinic.jpg"
    assert "source_key" not in payload and "source_digest" not in payload
    assert release_id(payload) == "clinics-reopen@2018-12-19T10:00:00-05:00"


# the listener ---------------------------------------------------------------------
def test_first_time_public_queues_one_message_and_updates_none(alerts: str) -> None:
    announce(
        Published("releases/a.json", None, entry(slug="a"), True),
        Published("releases/b.json", None, entry(slug="b"), False),
    )
    messages = [json.loads(m["Body"]) for m in receive_all(alerts)]
    assert [(m["type"], m["release"]["slug"]) for m in messages] == [("release", "a")]
    announce(Published("releases/b.json", None, entry(slug="b"), False))
    assert receive_all(alerts) == []


def test_no_queue_configured_means_no_listener(env: dict[str, str]) -> None:
    assert service.alert_announcer(service.settings()) is None


# sending --------------------------------------------------------------------------
def test_alert_reaches_matching_subscribers_once_with_both_parts(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    subscribe(client, outbox, "all@example.org")
    subscribe(client, outbox, "water@example.org", topics=["clean-water"])
    subscribe(client, outbox, "reports@example.org", kinds=["report"])
    subscribe(client, outbox, "statements@example.org", kinds=["statement"])
    subscribe(client, outbox, "health@example.org", topics=["Health"])
    client.http.post(
        "/subscriptions",
        headers={"Content-Type": "application/json"},
        body=b'{"email": "pending@example.org"}',
    )
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain(app_module, alerts)
    assert alerts_to(outbox) == {
        "all@example.org": 1,
        "water@example.org": 1,
        "reports@example.org": 1,
    }

    mail = outbox.to("water@example.org")[-1]
    assert mail.subject == "Report: Coastal clinics reopen after the storm"
    for part in (mail.text, mail.html):
        assert "Coastal clinics reopen after the storm" in part
        assert "Report" in part
        assert "December 19, 2018" in part
        assert "Three clinics reopen in Bayline." in part
        assert "https://news.example.org/releases/clinics-reopen/" in part
    assert 'src="https://news.example.org/media/clinic.jpg"' in mail.html
    assert 'alt="Nurses outside a clinic"' in mail.html
    unsubscribe = mail.headers["List-Unsubscribe"]
    assert unsubscribe.startswith(
        f"<{API_URL}/subscriptions/unsubscribe?token="
    ) and unsubscribe.endswith(">")
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "water@example.org" not in unsubscribe

    # one click (RFC 8058) and the next release does not reach that address
    path = unsubscribe[1:-1].removeprefix(API_URL)
    resp = client.http.post(
        path,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"List-Unsubscribe=One-Click",
    )
    assert resp.status_code == 200
    announce(Published("releases/next.json", None, entry(slug="next"), True))
    drain(app_module, alerts)
    assert alerts_to(outbox) == {
        "all@example.org": 2,
        "water@example.org": 1,
        "reports@example.org": 2,
    }


def test_every_message_delivered_twice_sends_once(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    for n in range(7):
        subscribe(client, outbox, f"s{n}@example.org")
    # the publisher may announce twice (at least once), SQS may deliver twice
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain(app_module, alerts, twice=True)
    assert alerts_to(outbox) == {f"s{n}@example.org": 1 for n in range(7)}
    assert set(deliveries().values()) == {"sent"}


def test_duplicate_release_after_a_crashed_fan_out_sends_once(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out that queued its pages but died before marking the release done
    is repeated in full; the per-recipient records still stop every duplicate."""
    monkeypatch.setattr("chalicelib.alerts.sender.PAGE", 2)
    for n in range(5):
        subscribe(client, outbox, f"f{n}@example.org")
    from chalicelib.alerts.store import SubscriberStore

    real = SubscriberStore.mark_fanned_out
    monkeypatch.setattr(
        SubscriberStore,
        "mark_fanned_out",
        lambda *a, **k: (_ for _ in ()).throw(TimeoutError("Lambda timed out")),
    )
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    messages = receive_all(alerts)
    with pytest.raises(TimeoutError):
        app_module.send_alerts(sqs_event(messages), None)
    monkeypatch.setattr(SubscriberStore, "mark_fanned_out", real)
    app_module.send_alerts(sqs_event(messages), None)  # the release message again
    drain(app_module, alerts)
    assert alerts_to(outbox) == {f"f{n}@example.org": 1 for n in range(5)}


def test_crash_between_record_and_send_never_sends_twice(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    """The documented side of the race: the subscriber whose send was cut off
    misses that alert; nobody gets it twice; everyone else gets it."""
    for n in range(4):
        subscribe(client, outbox, f"c{n}@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    page = receive_all(alerts)
    assert len(page) == 1

    class Killed(BaseException):
        """the Lambda runtime stopping the process mid-invocation"""

    sesv2 = service.aws_client("sesv2")
    calls = {"n": 0}

    def kill_on_second_send(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed()

    sesv2.meta.events.register("before-call.sesv2.SendEmail", kill_on_second_send, unique_id="kill")
    try:
        with pytest.raises(Killed):
            app_module.send_alerts(sqs_event(page), None)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="kill")
    app_module.send_alerts(sqs_event(page), None)  # SQS redelivers after the visibility timeout
    app_module.send_alerts(sqs_event(page), None)
    counts = alerts_to(outbox)
    assert sorted(counts.values()) == [1, 1, 1]  # 4 subscribers, 1 cut off, 0 twice
    assert sorted(deliveries().values()) == ["sending", "sent", "sent", "sent"]


def drain_release_only(app_module: Any, queue_url: str) -> None:
    [message] = receive_all(queue_url)
    assert json.loads(message["Body"])["type"] == "release"
    app_module.send_alerts(sqs_event([message]), None)


def ses_error(code: str, message: str, status: int) -> ClientError:
    """The error SES answers SendEmail with."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendEmail",
    )


def _throttle(times: int) -> Any:
    calls = {"n": 0}

    def handler(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ses_error("TooManyRequestsException", "Maximum sending rate exceeded.", 429)

    return handler


@pytest.fixture
def fast_backoff(alerts: str) -> Any:
    sender = service.alert_sender()
    previous = sender.mailer.base_delay
    sender.mailer.base_delay = 0.001
    yield sender.mailer
    sender.mailer.base_delay = previous


def test_ses_throttling_is_retried_with_backoff(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, fast_backoff: Any
) -> None:
    for n in range(3):
        subscribe(client, outbox, f"t{n}@example.org")
    sesv2 = service.aws_client("sesv2")
    sesv2.meta.events.register("before-call.sesv2.SendEmail", _throttle(3), unique_id="throttle")
    try:
        announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
        drain(app_module, alerts)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="throttle")
    assert alerts_to(outbox) == {f"t{n}@example.org": 1 for n in range(3)}


def test_persistent_throttling_retries_the_message_later(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, fast_backoff: Any
) -> None:
    for n in range(3):
        subscribe(client, outbox, f"p{n}@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    page = receive_all(alerts)
    sesv2 = service.aws_client("sesv2")
    # one sent, then SES refuses every attempt of the second
    sesv2.meta.events.register(
        "before-call.sesv2.SendEmail", _after(1, _throttle(100)), unique_id="t"
    )
    try:
        with pytest.raises(Exception, match="TooManyRequests"):
            app_module.send_alerts(sqs_event(page), None)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="t")
    assert sorted(deliveries().values()) == ["sent"]  # the throttled claim was given back
    app_module.send_alerts(sqs_event(page), None)
    assert alerts_to(outbox) == {f"p{n}@example.org": 1 for n in range(3)}


@pytest.mark.parametrize(
    "code",
    ["SendingPausedException", "AccountSuspendedException", "MailFromDomainNotVerifiedException"],
)
def test_an_account_that_cannot_send_for_now_loses_no_alert(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, fast_backoff: Any, code: str
) -> None:
    # SES pauses an account under review (or at a high bounce rate); the sender's
    # domain may lose its verification: nothing is sent, and nothing is wrong
    # with the message, so it must go out once the operator has fixed the account
    subscribe(client, outbox, "paused@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    page = receive_all(alerts)

    calls = []

    def refuse(**_: Any) -> None:
        calls.append(code)
        raise ses_error(code, "Sending is paused for this account.", 400)

    sesv2 = service.aws_client("sesv2")
    sesv2.meta.events.register("before-call.sesv2.SendEmail", refuse, unique_id="paused")
    try:
        with pytest.raises(Exception, match=code):
            app_module.send_alerts(sqs_event(page), None)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="paused")
    assert deliveries() == {}  # nothing recorded as failed
    # asked once: no backoff for a state that lasts hours (a batch of such
    # messages would outlast the function's timeout)
    assert calls == [code]
    app_module.send_alerts(sqs_event(page), None)  # the message comes back
    assert alerts_to(outbox) == {"paused@example.org": 1}


def _no_answer(**_: Any) -> None:
    """SES took the message, then the connection broke before its answer came."""
    raise ReadTimeoutError(
        endpoint_url="https://email.us-east-1.amazonaws.com/v2/email/outbound-emails"
    )


def test_a_send_without_an_answer_is_never_sent_again(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, fast_backoff: Any
) -> None:
    subscribe(client, outbox, "once@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    page = receive_all(alerts)
    sesv2 = service.aws_client("sesv2")
    # botocore itself would send the request again after a read timeout
    assert sesv2.meta.config.retries["total_max_attempts"] == 1
    sesv2.meta.events.register("after-call.sesv2.SendEmail", _no_answer, unique_id="lost")
    try:
        for _ in range(2):  # the message delivered again
            app_module.send_alerts(sqs_event(page), None)
    finally:
        sesv2.meta.events.unregister("after-call.sesv2.SendEmail", unique_id="lost")
    # it may have gone out: recorded as failed, never sent a second time
    assert alerts_to(outbox) == {"once@example.org": 1}
    assert list(deliveries().values()) == ["failed"]


def test_persistent_throttling_stops_the_batch_before_the_function_times_out(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, fast_backoff: Any
) -> None:
    # each throttled message waits out its backoff (about 6 s in production):
    # ten of them in one batch would outlast the 60 s timeout and leave a
    # claim in "sending" for good; the first one throttled sends the batch back
    subscribe(client, outbox, "busy@example.org")
    for n in range(10):
        announce(Published(f"releases/r{n}.json", None, entry(slug=f"r{n}"), True))
    releases = receive_all(alerts)
    app_module.send_alerts(sqs_event(releases), None)  # one recipients message each
    pages = receive_all(alerts)
    assert len(pages) == 10
    calls = {"n": 0}

    def refuse(**_: Any) -> None:
        calls["n"] += 1
        raise ses_error("TooManyRequestsException", "Maximum sending rate exceeded.", 429)

    sesv2 = service.aws_client("sesv2")
    sesv2.meta.events.register("before-call.sesv2.SendEmail", refuse, unique_id="busy")
    try:
        with pytest.raises(Exception, match="TooManyRequests"):
            app_module.send_alerts(sqs_event(pages), None)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="busy")
    assert calls["n"] == fast_backoff.attempts  # one message's tries, not ten
    assert deliveries() == {}
    app_module.send_alerts(sqs_event(pages), None)
    assert alerts_to(outbox) == {"busy@example.org": 10}


def _after(n: int, handler: Any) -> Any:
    calls = {"n": 0}

    def wrapped(**kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > n:
            handler(**kwargs)

    return wrapped


def test_permanent_failure_is_recorded_and_the_rest_go_on(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    for n in range(3):
        subscribe(client, outbox, f"r{n}@example.org")

    def reject_r1(params: dict[str, Any], **_: Any) -> None:
        if params["Destination"]["ToAddresses"] == ["r1@example.org"]:
            raise ses_error("MessageRejected", "Email address is not verified.", 400)

    sesv2 = service.aws_client("sesv2")
    sesv2.meta.events.register(
        "before-call.sesv2.SendEmail", _params(reject_r1), unique_id="reject"
    )
    try:
        announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
        drain(app_module, alerts, twice=True)
    finally:
        sesv2.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="reject")
    assert sorted(deliveries().values()) == ["failed", "sent", "sent"]
    sent = [m.to for m in outbox.sent if "List-Unsubscribe" in m.headers]
    assert sorted(set(sent) - {"r1@example.org"}) == ["r0@example.org", "r2@example.org"]


def _params(check: Any) -> Any:
    def handler(params: dict[str, Any] | None = None, model: Any = None, **kwargs: Any) -> None:
        body = json.loads(params["body"]) if isinstance(params, dict) and "body" in params else {}
        check(body)

    return handler


def test_unsubscribed_after_fan_out_gets_nothing(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    subscribe(client, outbox, "stay@example.org")
    subscribe(client, outbox, "leave@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    from chalicelib.alerts.tokens import Keys

    keys = Keys(service.settings().alert_secret)
    sid = keys.address_id("leave@example.org")
    store = service.alert_sender().store
    service.subscriptions().unsubscribe(keys.make("u", sid, store.get(sid)["nonce"]))
    drain(app_module, alerts)
    assert alerts_to(outbox) == {"stay@example.org": 1}


@pytest.mark.parametrize("image", [None, {"url": "https://cdn.example.org/x.jpg", "alt": "A pier"}])
def test_release_without_image_credit_or_summary(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, image: Any
) -> None:
    subscribe(client, outbox, "plain@example.org")
    announce(Published("releases/x.json", None, entry(slug="x", image=image, summary=""), True))
    drain(app_module, alerts)
    [mail] = [m for m in outbox.to("plain@example.org") if "List-Unsubscribe" in m.headers]
    assert ("https://cdn.example.org/x.jpg" in mail.html) is bool(image)
    assert set(deliveries().values()) == {"sent"}


def test_a_title_with_line_breaks_makes_a_one_line_subject(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    # the release format allows line breaks in a title (only other controls
    # are refused); a header line break would end the Subject and start a new
    # header, and Python's mail module refuses to write it at all
    subscribe(client, outbox, "lines@example.org")
    title = "Clinics reopen\r\nBcc: someone@elsewhere.example\n\n  after the storm"
    announce(Published("releases/x.json", None, entry(slug="x", title=title), True))
    drain(app_module, alerts)
    [mail] = [m for m in outbox.to("lines@example.org") if "List-Unsubscribe" in m.headers]
    assert mail.subject == "Report: Clinics reopen Bcc: someone@elsewhere.example after the storm"
    eml = OutgoingMail(mail.to, mail.subject, mail.text, mail.html, tuple(mail.headers.items()))
    head = eml.as_mime("alerts@harborlight.example").split(b"\r\n\r\n")[0]
    assert b"\nBcc:" not in head
    assert set(deliveries().values()) == {"sent"}


def test_a_right_to_left_release_reads_right_to_left_in_the_alert(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    # the e-mail's own words are English; the release's title and summary keep
    # their language and direction (else an Arabic title's final full stop and
    # the summary's alignment land on the wrong side)
    subscribe(client, outbox, "rtl@example.org")
    title, summary = "إعادة فتح العيادات الساحلية.", "ثلاث عيادات تفتح أبوابها."
    arabic = entry(slug="clinics-ar", title=title, summary=summary, language="ar")
    announce(Published("releases/clinics-ar.json", None, arabic, True))
    drain(app_module, alerts)
    [mail] = [m for m in outbox.to("rtl@example.org") if "List-Unsubscribe" in m.headers]
    assert '<html lang="en">' in mail.html
    assert '<h1 lang="ar" dir="rtl"' in mail.html
    assert f'<p lang="ar" dir="rtl" style="margin:0 0 16px">{summary}</p>' in mail.html


def test_malformed_message_is_dropped_not_retried(
    app_module: Any, alerts: str, caplog: Any
) -> None:
    fake = [{"MessageId": "1", "ReceiptHandle": "r", "Body": "not json"}]
    assert app_module.send_alerts(sqs_event(fake), None) == [{"outcome": "malformed"}]


def test_no_address_in_logs_while_sending(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, caplog: pytest.LogCaptureFixture
) -> None:
    subscribe(client, outbox, "hidden.name@example.org")
    caplog.set_level(logging.INFO)
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain(app_module, alerts)
    assert alerts_to(outbox) == {"hidden.name@example.org": 1}
    text = log_text(caplog.records)
    assert "alert_deliver" in text and "hidden.name" not in text


# a release taken down before its alert went out ------------------------------------
@pytest.fixture
def recheck_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second look at a release not listed comes at once, not 15 minutes later."""
    monkeypatch.setattr("chalicelib.alerts.sender.RECHECK_S", 0)


def test_a_release_not_listed_is_checked_again_later_before_its_alert_is_stopped(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    """A concurrent publish may rewrite the month file from a plan made
    without the release for a moment: one look is not enough to stop an alert."""
    subscribe(client, outbox, "again@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    take_down("clinics-reopen")
    drain_release_only(app_module, alerts)
    assert receive_all(alerts) == []  # nothing now: the release message comes back later
    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=alerts, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert deliveries() == {}


def test_a_release_listed_again_when_checked_again_alerts(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, recheck_now: None
) -> None:
    subscribe(client, outbox, "again@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    take_down("clinics-reopen")
    drain_release_only(app_module, alerts)
    list_publicly(ENTRY)  # the concurrent publish's own commit rewrote it
    drain(app_module, alerts)
    assert alerts_to(outbox) == {"again@example.org": 1}


def test_a_release_taken_down_between_fan_out_and_send_alerts_nobody(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, recheck_now: None
) -> None:
    for n in range(3):
        subscribe(client, outbox, f"w{n}@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    drain_release_only(app_module, alerts)
    pages = receive_all(alerts)
    assert [json.loads(p["Body"])["type"] for p in pages] == ["recipients"]
    take_down("clinics-reopen")
    app_module.send_alerts(sqs_event(pages), None)
    app_module.send_alerts(sqs_event(pages), None)  # delivered again
    drain(app_module, alerts)  # and checked again
    assert alerts_to(outbox) == {}
    assert deliveries() == {}


def test_a_release_put_back_after_its_alert_was_stopped_sends_nothing(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, recheck_now: None
) -> None:
    """Our choice: the deletion stopped that alert for good; putting the
    release back is an update, and updates never alert."""
    subscribe(client, outbox, "back@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    take_down("clinics-reopen")
    drain(app_module, alerts)
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))  # announced again
    drain(app_module, alerts)
    assert alerts_to(outbox) == {}


def test_a_different_release_on_the_freed_slug_does_not_send_the_old_alert(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, recheck_now: None
) -> None:
    subscribe(client, outbox, "slug@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    take_down("clinics-reopen")
    newer = entry(title="Clinics: a new report", published_at="2018-12-20T09:00:00-05:00")
    list_publicly(newer)
    drain(app_module, alerts)
    assert alerts_to(outbox) == {}
    announce(Published("releases/clinics-new.json", None, newer, True))
    drain(app_module, alerts)
    assert [m.subject for m in outbox.to("slug@example.org")][1:] == [
        "Report: Clinics: a new report"
    ]


def test_a_fault_while_checking_the_release_is_retried_not_skipped(
    app_module: Any, client: Client, outbox: Outbox, alerts: str
) -> None:
    subscribe(client, outbox, "fault@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    messages = receive_all(alerts)

    def slow_down(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
            "GetObject",
        )

    s3 = service.s3_client()
    s3.meta.events.register("before-call.s3.GetObject", slow_down, unique_id="slow")
    try:
        with pytest.raises(Exception, match="SlowDown"):
            app_module.send_alerts(sqs_event(messages), None)
    finally:
        s3.meta.events.unregister("before-call.s3.GetObject", unique_id="slow")
    assert receive_all(alerts) == []  # nothing queued, nothing recorded
    app_module.send_alerts(sqs_event(messages), None)  # the message comes back
    drain(app_module, alerts)
    assert alerts_to(outbox) == {"fault@example.org": 1}


def test_a_withdrawn_release_is_logged_without_addresses(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, caplog: Any, recheck_now: None
) -> None:
    subscribe(client, outbox, "quiet@example.org")
    announce(Published("releases/clinics-reopen.json", None, ENTRY, True))
    take_down("clinics-reopen")
    with caplog.at_level(logging.INFO, logger="newsroom"):
        drain(app_module, alerts)
    text = log_text(caplog.records)
    assert "alert_withdrawn" in text and "clinics-reopen@2018-12-19" in text
    assert "quiet@example.org" not in text
