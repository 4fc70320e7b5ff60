"""Shared pieces of the alert tests: moto's DynamoDB, SQS and SES set up as
infra/newsroom.yaml sets them up, the real handlers called with real event
JSON, and every SES SendEmail request recorded as it goes over the wire."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

from newsroom import alerts_local, lambda_sqs

TABLE = "newsroom-subscribers"
QUEUE = "newsroom-alerts"
MAIL_FROM = "alerts@harborlight.example"
API_URL = "https://api.news.example.org/api"
SECRET = "test-secret-0123456789abcdef"
ALERT_ENV = {
    "NEWSROOM_ALERT_QUEUE": QUEUE,
    "NEWSROOM_SUBSCRIBERS_TABLE": TABLE,
    "NEWSROOM_MAIL_FROM": MAIL_FROM,
    "NEWSROOM_API_URL": API_URL,
    "NEWSROOM_ALERT_SECRET": SECRET,
}


def create_alert_resources(region: str = "us-east-1") -> str:
    """The table, the alert queue and the verified sender (the demo's own
    set-up, under the test names); the queue URL."""
    return alerts_local.create_alert_resources(
        lambda name: boto3.client(name, region_name=region), TABLE, QUEUE, MAIL_FROM
    )


def sqs_event(messages: list[dict[str, Any]], queue: str = QUEUE) -> dict[str, Any]:
    """The event Lambda gives an SQS consumer for received messages."""
    return lambda_sqs.sqs_event(messages, lambda_sqs.queue_arn(queue))


def subscribe(client: Any, outbox: Outbox, email: str, confirm: bool = True, **prefs: Any) -> None:
    """Sign ``email`` up through the route, and (by default) follow the
    confirmation link of the e-mail it sent."""
    body = json.dumps({"email": email, **prefs}).encode()
    resp = client.http.post(
        "/subscriptions", headers={"Content-Type": "application/json"}, body=body
    )
    assert resp.status_code == 202
    if confirm:
        link = outbox.to(email)[-1].link("confirm")
        assert client.http.get(link.removeprefix(API_URL)).status_code == 200


def sns_event(message: dict[str, Any], topic: str = "newsroom-mail-feedback") -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"arn:aws:sns:us-east-1:123456789012:{topic}:1",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": "2026-11-30T12:00:00.000Z",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "Message": json.dumps(message),
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/unsubscribe",
                    "TopicArn": f"arn:aws:sns:us-east-1:123456789012:{topic}",
                    "Subject": None,
                },
            }
        ]
    }


@dataclass
class Sent:
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]

    def link(self, path: str) -> str:
        match = re.search(r"https?://\S+/subscriptions/" + path + r"\?token=[^\s\"<>]+", self.text)
        assert match, f"no {path} link in {self.text!r}"
        return match.group(0)


class Outbox(alerts_local.MailCapture):
    """Every message SES accepted, as the SendEmail request carried it (the
    demo's capture, kept in a list)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def accepted(self, mail: Any, sender: str, message_id: str) -> None:
        self.sent.append(Sent(mail.to, mail.subject, mail.text, mail.html, dict(mail.headers)))

    def to(self, address: str) -> list[Sent]:
        return [m for m in self.sent if m.to == address]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def receive_all(queue_url: str, max_rounds: int = 1000) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    out: list[dict[str, Any]] = []
    for _ in range(max_rounds):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        out.extend(got)
        for m in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def drain(app_module: Any, queue_url: str, *, twice: bool = False, rounds: int = 50) -> int:
    """Deliver every message of the alert queue to ``send_alerts`` (each twice
    with ``twice``) until the queue is empty; the number of handler calls."""
    calls = 0
    for _ in range(rounds):
        messages = receive_all(queue_url)
        if not messages:
            return calls
        for i in range(0, len(messages), 10):
            batch = messages[i : i + 10]
            for _ in range(2 if twice else 1):
                app_module.send_alerts(sqs_event(batch), None)
                calls += 1
    raise AssertionError("the alert queue never emptied")
