"""The subscription routes through the real Chalice app on moto (DynamoDB, SES)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from alerts_support import API_URL, SECRET, TABLE, Outbox, token_of
from chalice.test import Client
from support import log_text

from chalicelib.alerts.tokens import CONFIRM, UNSUBSCRIBE, Keys

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def post_json(client: Client, doc: Any) -> Any:
    return client.http.post("/subscriptions", headers=JSON, body=json.dumps(doc).encode())


def post_form(client: Client, fields: list[tuple[str, str]]) -> Any:
    return client.http.post("/subscriptions", headers=FORM, body=urlencode(fields).encode())


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert url.startswith(API_URL)
    return parts.path.removeprefix("/api") + "?" + parts.query


def items() -> list[dict[str, Any]]:
    return boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]


def subscribe_and_confirm(client: Client, outbox: Outbox, email: str, **prefs: Any) -> str:
    assert post_json(client, {"email": email, **prefs}).status_code == 202
    confirm = outbox.to(email)[-1].link("confirm")
    assert client.http.get(path_of(confirm)).status_code == 200
    return confirm


# POST /subscriptions ------------------------------------------------------------
def test_json_sign_up_sends_one_confirmation(client: Client, outbox: Outbox) -> None:
    resp = post_json(
        client, {"email": "ada@example.org", "topics": ["Clean Water"], "kinds": ["report"]}
    )
    assert resp.status_code == 202
    assert json.loads(resp.body)["status"] == "accepted"
    [mail] = outbox.sent
    assert mail.to == "ada@example.org"
    assert "Confirm" in mail.subject
    link = mail.link("confirm")
    assert link.startswith(f"{API_URL}/subscriptions/confirm?token=")
    assert "ada" not in link and "example.org" not in token_of(link)
    assert "Reports about clean water" in mail.text
    # nothing is active before the link is followed
    [item] = items()
    assert item["state"]["S"] == "pending"
    assert item["pk"]["S"].startswith("sub#") and "@" not in item["sk"]["S"]


def test_form_sign_up_with_repeated_fields(client: Client, outbox: Outbox) -> None:
    resp = post_form(
        client,
        [
            ("email", "bo@example.org"),
            ("topics", "clean-water"),
            ("topics", "Côte d'Ivoire"),
            ("kinds", "report"),
            ("kinds", "statement"),
            ("website", ""),
        ],
    )
    assert resp.status_code == 202
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Check your inbox" in resp.body.decode()
    subscribe_path = path_of(outbox.sent[0].link("confirm"))
    page = client.http.get(subscribe_path)
    assert page.status_code == 200
    assert "Reports and Statements about clean water, cote d ivoire" in page.body.decode()


def test_same_202_for_every_address_state(client: Client, outbox: Outbox) -> None:
    """New, pending, active, rate-limited, unsubscribed, honeypot: one body."""
    confirm = subscribe_and_confirm(client, outbox, "known@example.org")
    bodies = set()
    for doc in (
        {"email": "new@example.org"},
        {"email": "new@example.org"},  # pending and rate-limited
        {"email": "known@example.org"},  # active
        {"email": "bot@example.org", "website": "http://spam.example"},
    ):
        resp = post_json(client, doc)
        assert resp.status_code == 202
        bodies.add(resp.body)
    unsub = outbox.to("known@example.org")
    assert confirm and unsub
    form = {post_form(client, [("email", e)]).body for e in ("x@example.org", "known@example.org")}
    assert len(bodies) == 1 and len(form) == 1


def test_one_confirmation_per_address_per_hour(
    client: Client, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    for _ in range(3):
        assert post_json(client, {"email": "Eve@Example.org"}).status_code == 202
    assert post_json(client, {"email": "eve@example.org"}).status_code == 202
    assert len(outbox.sent) == 1
    later = time.time() + 3601
    monkeypatch.setattr("chalicelib.alerts.subscriptions.now", lambda: later)
    assert post_json(client, {"email": "eve@example.org", "kinds": ["report"]}).status_code == 202
    assert len(outbox.sent) == 2
    # the newer sign-up's link wins; the older one is refused
    old, new = (m.link("confirm") for m in outbox.sent)
    assert client.http.get(path_of(old)).status_code == 400
    assert client.http.get(path_of(new)).status_code == 200
    assert [k["S"] for k in items()[0]["kinds"]["L"]] == ["report"]


def test_an_address_with_an_apostrophe_is_not_malformed(client: Client, outbox: Outbox) -> None:
    resp = post_form(client, [("email", "o'brien@example.org")])
    assert resp.status_code == 202
    [mail] = outbox.sent
    assert mail.to == "o'brien@example.org"


def test_an_internationalised_domain_is_an_address_mailed_in_its_ascii_form(
    client: Client, outbox: Outbox
) -> None:
    assert post_json(client, {"email": "ada@Bücher.example"}).status_code == 202
    [mail] = outbox.sent
    assert mail.to == "ada@xn--bcher-kva.example"  # what SES accepts
    # the same mailbox spelled in ASCII is the same subscriber (one per hour)
    assert post_json(client, {"email": "ada@xn--bcher-kva.example"}).status_code == 202
    assert len(outbox.sent) == 1 and len(items()) == 1


def test_one_address_composed_or_decomposed_is_one_subscriber(
    client: Client, outbox: Outbox
) -> None:
    composed, decomposed = "ada@b\u00fccher.example", "ada@bu\u0308cher.example"
    assert post_json(client, {"email": composed}).status_code == 202
    [mail] = outbox.sent
    assert mail.to == "ada@xn--bcher-kva.example"
    assert client.http.get(path_of(mail.link("confirm"))).status_code == 200
    assert post_json(client, {"email": decomposed}).status_code == 202
    assert len(outbox.sent) == 1 and len(items()) == 1


@pytest.mark.parametrize("email", ["jos\u00e9@example.org", "\u7528\u6237@example.org"])
def test_a_mailbox_name_outside_ascii_is_400_naming_the_field(
    client: Client, outbox: Outbox, email: str
) -> None:
    """SES cannot deliver to it (no SMTPUTF8): a sign-up that could never be
    confirmed is refused at once, with the reason, rather than accepted."""
    resp = post_json(client, {"email": email})
    assert resp.status_code == 400
    [error] = json.loads(resp.body)["errors"]
    assert error["loc"] == "email" and "ASCII" in error["msg"]
    assert outbox.sent == [] and items() == []


def test_a_multipart_form_signs_up_like_any_form(client: Client, outbox: Outbox) -> None:
    # what fetch() sends for a FormData, and what many form builders post
    body = (
        b"".join(
            b'--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % field
            for field in [
                (b"email", b"multi@example.org"),
                (b"topics", b"Clean Water"),
                (b"topics", b"health"),
                (b"kinds", b"report"),
                (b"website", b""),
            ]
        )
        + b"--XyZ--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=XyZ"}
    resp = client.http.post("/subscriptions", headers=headers, body=body)
    assert resp.status_code == 202
    [mail] = outbox.sent
    assert mail.to == "multi@example.org"
    assert "Reports about clean water, health" in mail.text


def test_honeypot_sends_nothing(client: Client, outbox: Outbox) -> None:
    resp = post_form(client, [("email", "bot@example.org"), ("website", "buy pills")])
    assert resp.status_code == 202
    assert outbox.sent == [] and items() == []


@pytest.mark.parametrize(
    "doc",
    [
        {"email": "not-an-address"},
        {"email": "a@b"},
        {"email": "a..b@example.org"},
        {"email": "two@example.org, three@example.org"},
        {"email": "line@example.org\nBcc: x@example.org"},
        {"email": ""},
        {"email": 42},
        {},
        [],
    ],
)
def test_malformed_address_is_400_naming_the_field(
    client: Client, outbox: Outbox, doc: Any
) -> None:
    resp = post_json(client, doc)
    assert resp.status_code == 400
    assert json.loads(resp.body)["errors"][0]["loc"] == "email"
    assert outbox.sent == [] and items() == []


def test_malformed_json_and_form_are_400(client: Client) -> None:
    assert client.http.post("/subscriptions", headers=JSON, body=b"{nope").status_code == 400
    resp = post_form(client, [("email", "nope")])
    assert resp.status_code == 400
    assert "does not look right" in resp.body.decode()


def test_unsupported_media_type(client: Client) -> None:
    resp = client.http.post("/subscriptions", headers={"Content-Type": "text/xml"}, body=b"<x/>")
    assert resp.status_code == 415


def test_unknown_kinds_are_dropped(client: Client, outbox: Outbox) -> None:
    subscribe_and_confirm(client, outbox, "k@example.org", kinds=["report", "gossip"])
    [item] = items()
    assert [k["S"] for k in item["kinds"]["L"]] == ["report"]


# GET /subscriptions/confirm -----------------------------------------------------
def test_confirm_activates_and_is_idempotent(client: Client, outbox: Outbox) -> None:
    confirm = subscribe_and_confirm(client, outbox, "c@example.org")
    [item] = items()
    assert item["state"]["S"] == "active"
    again = client.http.get(path_of(confirm))  # mail scanners and double clicks
    assert again.status_code == 200
    assert "You are subscribed" in again.body.decode()
    assert again.headers["Referrer-Policy"] == "no-referrer"
    assert again.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "token",
    # a signature with a letter outside ASCII is a forgery, not a server error
    ["", "garbage", "v1.c.abc.def.0.sig", "v1.c.abc.def.0.sigé", None],
)
def test_confirm_refuses_bad_tokens(client: Client, token: str | None) -> None:
    path = "/subscriptions/confirm" + ("" if token is None else "?" + urlencode({"token": token}))
    resp = client.http.get(path)
    assert resp.status_code == 400
    assert "not valid" in resp.body.decode()


def test_confirm_refuses_forged_expired_and_wrong_purpose(client: Client, outbox: Outbox) -> None:
    post_json(client, {"email": "f@example.org"})
    real = token_of(outbox.sent[0].link("confirm"))
    _, purpose, sid, nonce, expires, _ = real.split(".")
    other = Keys("another-secret-0123456789")
    forged = other.make(CONFIRM, sid, nonce, int(expires))
    expired = Keys(SECRET).make(CONFIRM, sid, nonce, 1_000_000)
    wrong = Keys(SECRET).make(UNSUBSCRIBE, sid, nonce)
    for token in (forged, expired, wrong, real[:-2] + "xx"):
        assert (
            client.http.get("/subscriptions/confirm?" + urlencode({"token": token})).status_code
            == 400
        )
    assert items()[0]["state"]["S"] == "pending"
    assert (
        client.http.get("/subscriptions/confirm?" + urlencode({"token": real})).status_code == 200
    )


def test_active_subscriber_changes_preferences_only_by_confirming(
    client: Client, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    subscribe_and_confirm(client, outbox, "p@example.org", kinds=["report"])
    later = time.time() + 3601
    monkeypatch.setattr("chalicelib.alerts.subscriptions.now", lambda: later)
    assert post_json(client, {"email": "p@example.org", "kinds": ["victory"]}).status_code == 202
    [item] = items()
    assert item["state"]["S"] == "active"  # a sign-up by someone else changes nothing yet
    assert [k["S"] for k in item["kinds"]["L"]] == ["report"]
    nonce = item["nonce"]["S"]
    assert client.http.get(path_of(outbox.sent[-1].link("confirm"))).status_code == 200
    [item] = items()
    assert [k["S"] for k in item["kinds"]["L"]] == ["victory"]
    assert item["nonce"]["S"] == nonce  # unsubscribe links already sent keep working


# unsubscribe --------------------------------------------------------------------
def test_unsubscribe_page_and_one_click(client: Client, outbox: Outbox) -> None:
    subscribe_and_confirm(client, outbox, "u@example.org")
    sid = Keys(SECRET).address_id("u@example.org")
    item = items()[0]
    url = f"{API_URL}/subscriptions/unsubscribe?token=" + Keys(SECRET).make(
        UNSUBSCRIBE, sid, item["nonce"]["S"]
    )
    page = client.http.get(path_of(url))
    assert page.status_code == 200
    html = page.body.decode()
    assert 'method="post"' in html and "<button" in html
    resp = client.http.post(path_of(url), headers=FORM, body=b"List-Unsubscribe=One-Click")
    assert resp.status_code == 200
    assert "unsubscribed" in resp.body.decode()
    [tomb] = items()
    assert tomb["state"]["S"] == "gone"
    assert "email" not in tomb and "topics" not in tomb
    assert "u@example.org" not in json.dumps(items())
    # replayed: still 200, nothing comes back
    assert (
        client.http.post(path_of(url), headers=FORM, body=b"List-Unsubscribe=One-Click").status_code
        == 200
    )
    # the old confirmation link cannot bring the address back
    confirm = outbox.to("u@example.org")[0].link("confirm")
    assert client.http.get(path_of(confirm)).status_code == 400
    assert items()[0]["state"]["S"] == "gone"


def test_unsubscribe_refuses_bad_tokens(client: Client, outbox: Outbox) -> None:
    post_json(client, {"email": "z@example.org"})
    confirm_token = token_of(outbox.sent[0].link("confirm"))
    for token in ("", "nope", confirm_token, confirm_token + "é", "v1.u.a.b.0.ü"):
        q = "?" + urlencode({"token": token})
        assert client.http.get("/subscriptions/unsubscribe" + q).status_code == 400
        assert (
            client.http.post("/subscriptions/unsubscribe" + q, headers=FORM, body=b"").status_code
            == 400
        )


def test_resubscribe_after_unsubscribe(client: Client, outbox: Outbox) -> None:
    subscribe_and_confirm(client, outbox, "r@example.org")
    sid = Keys(SECRET).address_id("r@example.org")
    old_nonce = items()[0]["nonce"]["S"]
    old = "/subscriptions/unsubscribe?token=" + Keys(SECRET).make(UNSUBSCRIBE, sid, old_nonce)
    assert client.http.post(old, headers=FORM, body=b"").status_code == 200
    # signing up again within the hour sends nothing (rate limit survives the tombstone)
    assert post_json(client, {"email": "r@example.org"}).status_code == 202
    assert len(outbox.to("r@example.org")) == 1


# privacy ------------------------------------------------------------------------
def test_no_address_in_logs(
    client: Client, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # every logger: ours and the libraries they call
    subscribe_and_confirm(client, outbox, "secret.person@example.org")
    post_json(client, {"email": "secret.person@example.org"})
    post_json(client, {"email": "secret.person@example.org", "website": "x"})
    post_json(client, {"email": "bad address@example.org"})
    text = log_text(caplog.records)
    assert "secret.person" not in text and "bad address" not in text
    sid = Keys(SECRET).address_id("secret.person@example.org")
    assert sid[:16] in text


class SesBusy:
    """SES answers every SendEmail with throttling while on (after the
    mailer's backoff, made short)."""

    def __init__(self) -> None:
        from chalicelib import service

        self.ses = service.aws_client("sesv2")
        self.mailer = service.alert_sender().mailer  # the shared one, with its backoff
        self.mailer.base_delay, self.previous = 0.001, self.mailer.base_delay

    @staticmethod
    def _busy(**_: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"},
             "ResponseMetadata": {"HTTPStatusCode": 429}},
            "SendEmail",
        )  # fmt: skip

    def on(self) -> None:
        self.ses.meta.events.register("before-call.sesv2.SendEmail", self._busy, unique_id="busy")

    def off(self) -> None:
        self.ses.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="busy")


@pytest.fixture
def ses(client: Client) -> Any:
    busy = SesBusy()
    yield busy
    busy.off()
    busy.mailer.base_delay = busy.previous


def test_ses_busy_answers_the_same_202_and_the_confirmation_follows(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, ses: SesBusy
) -> None:
    """While SES throttles, a new address gets the same answer as a known one
    (a 503 for new addresses only told them apart); its confirmation goes out
    through the alert queue, retried until SES takes mail again."""
    from alerts_support import receive_all, sqs_event

    subscribe_and_confirm(client, outbox, "known@example.org")
    ses.on()
    asked: list[str] = []
    ses.ses.meta.events.register_first(
        "before-call.sesv2.SendEmail", lambda **_: asked.append("SendEmail"), unique_id="count"
    )
    new = post_json(client, {"email": "later@example.org", "topics": ["clean-water"]})
    ses.ses.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="count")
    # asked once, not with seconds of backoff a known address never waits
    assert asked == ["SendEmail"]
    known = post_json(client, {"email": "known@example.org"})  # within its hour
    assert (new.status_code, new.body) == (known.status_code, known.body) == (202, new.body)
    assert "Retry-After" not in new.headers
    form = post_form(client, [("email", "form@example.org")])
    assert form.status_code == 202
    assert outbox.to("later@example.org") == []

    messages = receive_all(alerts)
    assert "later@example.org" not in json.dumps([m["Body"] for m in messages])
    with pytest.raises(Exception, match="TooManyRequests"):
        app_module.send_alerts(sqs_event(messages), None)  # still busy: it comes back
    ses.off()
    app_module.send_alerts(sqs_event(messages), None)
    app_module.send_alerts(sqs_event(messages), None)  # delivered twice: sent once
    [mail] = outbox.to("later@example.org")
    assert len(outbox.to("form@example.org")) == 1
    assert client.http.get(path_of(mail.link("confirm"))).status_code == 200
    # the hour was spent on that confirmation: a sign-up now sends nothing more
    assert post_json(client, {"email": "later@example.org"}).status_code == 202
    assert len(outbox.to("later@example.org")) == 1


def test_ses_busy_and_the_queue_failing_gives_the_hour_back(
    client: Client, outbox: Outbox, alerts: str, ses: SesBusy
) -> None:
    """The same 202; nothing can send the confirmation, so the next sign-up may."""
    from chalicelib import service

    def fail(**_: Any) -> None:
        raise ConnectionError("sqs unreachable")

    sqs = service.aws_client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", fail, unique_id="down")
    ses.on()
    try:
        assert post_json(client, {"email": "lost@example.org"}).status_code == 202
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="down")
    ses.off()
    assert outbox.to("lost@example.org") == []
    assert post_json(client, {"email": "lost@example.org"}).status_code == 202
    assert len(outbox.to("lost@example.org")) == 1


def test_a_queued_confirmation_of_a_replaced_sign_up_is_not_sent(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, ses: SesBusy, monkeypatch: Any
) -> None:
    from alerts_support import receive_all, sqs_event

    from chalicelib.alerts import subscriptions

    ses.on()
    assert post_json(client, {"email": "twice@example.org"}).status_code == 202
    ses.off()
    monkeypatch.setattr(subscriptions, "CONFIRM_INTERVAL", 0)  # the hour has passed
    assert post_json(client, {"email": "twice@example.org", "kinds": ["report"]}).status_code == 202
    app_module.send_alerts(sqs_event(receive_all(alerts)), None)
    [mail] = outbox.to("twice@example.org")  # the newer sign-up's, not the stale one's
    assert client.http.get(path_of(mail.link("confirm"))).status_code == 200


def test_oversized_body_is_413(client: Client, outbox: Outbox) -> None:
    body = json.dumps({"email": "big@example.org", "topics": ["x" * 100] * 200}).encode()
    resp = client.http.post("/subscriptions", headers=JSON, body=body)
    assert resp.status_code == 413
    assert json.loads(resp.body)["errors"][0]["loc"] == "body"
    assert outbox.sent == []


def test_an_older_subscriptions_unsubscribe_link_still_stops_mail(
    client: Client, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    subscribe_and_confirm(client, outbox, "again@example.org")
    sid = Keys(SECRET).address_id("again@example.org")
    old = "/subscriptions/unsubscribe?" + urlencode(
        {"token": Keys(SECRET).make(UNSUBSCRIBE, sid, items()[0]["nonce"]["S"])}
    )
    assert client.http.post(old, headers=FORM, body=b"").status_code == 200
    later = time.time() + 3601
    monkeypatch.setattr("chalicelib.alerts.subscriptions.now", lambda: later)
    subscribe_and_confirm(client, outbox, "again@example.org")
    assert items()[0]["state"]["S"] == "active"
    assert (
        client.http.post(old, headers=FORM, body=b"List-Unsubscribe=One-Click").status_code == 200
    )
    assert items()[0]["state"]["S"] == "gone"
