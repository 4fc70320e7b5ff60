"""The alert path of ``newsroom demo``: the subscription routes on the demo's
own host (chalice.local), SES, DynamoDB and SQS on the local moto server, and
every accepted e-mail in the outbox as an ``.eml`` file."""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from support import make_release, serving_demo

from newsroom.demo import SECURITY_HEADERS, Demo


class Running:
    def __init__(self, demo: Demo, outbox: Path) -> None:
        self.demo = demo
        self.outbox = outbox

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.demo.port, timeout=30)
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def mails(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.outbox.glob("*.eml"))
        ]

    def publish(self, slug: str, **fields: Any) -> None:
        doc = make_release(slug=slug, image=None, **fields)
        body = json.dumps(doc).encode()
        key = f"releases/{slug}.json"
        [receipt] = self.demo.publish([lambda: self.demo.put_source(key, body)], [key])
        assert receipt["status"] == "published", receipt

    def alerts(
        self, expected: int, within: float = 15.0, subject: str = ""
    ) -> list[email.message.EmailMessage]:
        """The alerts (whose subject holds ``subject``) in the outbox once there
        are ``expected`` (the demo's pump thread sends them), or when ``within``
        seconds have passed. A sample the demo is still publishing may alert too."""
        deadline = time.monotonic() + within
        while True:
            found = [
                m for m in self.mails() if m["List-Unsubscribe"] and subject in (m["Subject"] or "")
            ]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def text_of(mail: email.message.EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def link(mail: email.message.EmailMessage, path: str) -> str:
    match = re.search(
        r"http://127\.0\.0\.1:\d+/subscriptions/" + path + r"\?token=\S+", text_of(mail)
    )
    assert match, text_of(mail)
    return match.group(0)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    samples = tmp_path_factory.mktemp("samples")
    (samples / "releases").mkdir()
    (samples / "releases" / "first.json").write_text(json.dumps(make_release(image=None)))
    outbox = tmp_path_factory.mktemp("outbox")
    with serving_demo(samples, poll_interval=0.05, outbox=outbox) as (demo, _receipts):
        yield Running(demo, outbox)


def test_pages_post_the_form_to_the_demo_itself(running: Running) -> None:
    status, headers, html = running.request("GET", "/")
    assert status == 200
    assert f'action="{running.demo.url}/subscriptions"' in html
    assert "form-action 'self'" in headers["content-security-policy"]
    assert "form-action 'self'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_sign_up_confirm_alert_and_one_click_unsubscribe(running: Running) -> None:
    form = urlencode([("email", "reporter@example.org"), ("kinds", "press-release")]).encode()
    status, headers, html = running.request(
        "POST", "/subscriptions", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 202 and "Check your inbox" in html
    [confirmation] = running.mails()
    assert confirmation["To"] == "reporter@example.org"
    [name] = [p.name for p in running.outbox.glob("*.eml")]
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{12}\.eml", name)
    printed = running.demo.out.getvalue()  # type: ignore[union-attr]
    assert f"mail: {running.outbox / name}" in printed
    assert "reporter@example.org" not in printed

    status, _, html = running.request("GET", local(link(confirmation, "confirm")))
    assert status == 200 and "You are subscribed" in html

    running.publish("storm-warning", kind="press-release", title="Storm warning for Bayline")
    alerts = running.alerts(1, subject="Storm warning for Bayline")
    assert [m["Subject"] for m in alerts] == ["Press Release: Storm warning for Bayline"]
    [alert] = alerts
    assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert alert.get_body(preferencelist=("html",)) is not None
    unsubscribe = alert["List-Unsubscribe"].strip("<>")

    # what a mail client does for RFC 8058 one-click
    status, _, html = running.request(
        "POST", local(unsubscribe), b"List-Unsubscribe=One-Click",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 200 and "unsubscribed" in html
    sent = len(running.alerts(0))
    running.publish("second-warning", kind="press-release")
    assert len(running.alerts(sent + 1, within=3.0)) == sent
