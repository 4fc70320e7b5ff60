"""SES bounces and complaints through the SNS handler (real SNS event JSON)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from alerts_support import API_URL, TABLE, Outbox, sns_event
from chalice.test import Client

from chalicelib.alerts.feedback import suppressed_addresses


def sign_up(client: Client, email: str) -> int:
    body = json.dumps({"email": email}).encode()
    return client.http.post(
        "/subscriptions", headers={"Content-Type": "application/json"}, body=body
    ).status_code


def bounce(address: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1"}],
            "timestamp": "2026-11-30T12:00:00.000Z",
            "feedbackId": "0100018c-bounce",
        },
        "mail": {"source": "alerts@harborlight.example", "destination": [address]},
    }


def complaint(address: str) -> dict[str, Any]:
    # configuration-set event publishing uses eventType instead of notificationType
    return {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": "2026-11-30T12:00:00.000Z",
            "feedbackId": "0100018c-complaint",
        },
        "mail": {"source": "alerts@harborlight.example", "destination": [address]},
    }


def state() -> dict[str, dict[str, Any]]:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    return {i["sk"]["S"]: i for i in items if i["pk"]["S"].startswith("sub#")}


def confirm(client: Client, outbox: Outbox, email: str) -> None:
    assert sign_up(client, email) == 202
    link = outbox.to(email)[-1].link("confirm")
    assert client.http.get(link.removeprefix(API_URL)).status_code == 200


def test_permanent_bounce_removes_and_suppresses(
    app_module: Any, client: Client, outbox: Outbox
) -> None:
    confirm(client, outbox, "gone@example.org")
    result = app_module.mail_feedback(sns_event(bounce("gone@example.org")), None)
    assert result == {"outcome": "bounce", "suppressed": 1}
    [item] = state().values()
    assert item["state"]["S"] == "gone" and item["suppressed"]["BOOL"] is True
    assert "gone@example.org" not in json.dumps(state())
    # a later sign-up for that address sends nothing (same 202)
    assert sign_up(client, "gone@example.org") == 202
    assert len(outbox.to("gone@example.org")) == 1


def test_complaint_suppresses(app_module: Any, client: Client, outbox: Outbox) -> None:
    confirm(client, outbox, "angry@example.org")
    result = app_module.mail_feedback(sns_event(complaint("angry@example.org")), None)
    assert result == {"outcome": "complaint", "suppressed": 1}
    [item] = state().values()
    assert item["gone_reason"]["S"] == "complaint"


def test_transient_bounce_changes_nothing(app_module: Any, client: Client, outbox: Outbox) -> None:
    confirm(client, outbox, "full@example.org")
    result = app_module.mail_feedback(sns_event(bounce("full@example.org", "Transient")), None)
    assert result == {"outcome": "ignored", "suppressed": 0}
    [item] = state().values()
    assert item["state"]["S"] == "active"


def test_malformed_notification_is_dropped(app_module: Any, alerts: str) -> None:
    event = sns_event({})
    event["Records"][0]["Sns"]["Message"] = "not json"
    assert app_module.mail_feedback(event, None)["outcome"] == "malformed"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"notificationType": "Delivery"}, ("", [])),
        ({"notificationType": "Bounce", "bounce": {"bounceType": "Undetermined"}}, ("", [])),
        (
            {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "bouncedRecipients": [{"emailAddress": "a@b.org"}],
                },
            },
            ("bounce", ["a@b.org"]),
        ),
    ],
)
def test_which_notifications_suppress(doc: dict[str, Any], expected: tuple[str, list[str]]) -> None:
    assert suppressed_addresses(doc) == expected
