"""Alerts through the publisher: an embargoed release alerts at its instant and
not before; an update, a re-upload or a repeated sweep sends nothing more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from alerts_support import Outbox, drain, receive_all, subscribe
from chalice.test import Client
from support import PUBLIC, SOURCE, make_release, public_tree, sqs_event, upload
from test_embargo import Clock, scheduled_event

from chalicelib import service
from chalicelib.core.render import Renderer
from chalicelib.publisher import Publisher
from chalicelib.settings import Settings
from chalicelib.storage import S3Storage


def alert_subjects(outbox: Outbox) -> list[str]:
    return [m.subject for m in outbox.sent if "List-Unsubscribe" in m.headers]


def test_embargoed_release_alerts_at_its_instant_and_updates_send_nothing(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, aws: Any
) -> None:
    subscribe(client, outbox, "desk@example.org")
    # scheduled by a publisher whose clock is before the embargo (as on upload day)
    before = Publisher(
        S3Storage(boto3.client("s3", region_name="us-east-1"), SOURCE),
        S3Storage(boto3.client("s3", region_name="us-east-1"), PUBLIC),
        Renderer(Settings.from_env()),
        clock=Clock(datetime(2020, 1, 1, tzinfo=UTC)),
        sleep=lambda s: None,
        listeners=[service.alert_announcer(service.settings())],
    )
    doc = make_release(
        slug="harbour-report", title="Harbour report", embargo_until="2020-06-01T00:00:00Z"
    )
    upload(aws, "releases/harbour-report.json", doc)
    assert before.sync("releases/harbour-report.json").status == "scheduled"
    assert receive_all(alerts) == []  # nothing queued while embargoed
    assert alert_subjects(outbox) == []

    # the instant has passed: the scheduled run publishes it, and it alerts once
    out = app_module.publish_due_releases(scheduled_event(), None)
    assert "releases/harbour-report/index.html" in public_tree(aws)
    assert out
    drain(app_module, alerts)
    assert alert_subjects(outbox) == ["Press Release: Harbour report"]

    # an update: published again, no e-mail
    upload(aws, "releases/harbour-report.json", {**doc, "summary": "Corrected figures."})
    app_module.sync_release(sqs_event("releases/harbour-report.json"), None)
    app_module.publish_due_releases(scheduled_event(), None)
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == ["Press Release: Harbour report"]


def test_a_release_deleted_before_its_alert_is_sent_alerts_nobody(
    app_module: Any,
    client: Client,
    outbox: Outbox,
    alerts: str,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A press office that deletes a release published by mistake stops its
    alert while it waits in the queue; a redelivery sends nothing either."""
    monkeypatch.setattr("chalicelib.alerts.sender.RECHECK_S", 0)  # its second look at once
    subscribe(client, outbox, "desk@example.org")
    upload(aws, "releases/oops.json", make_release(slug="oops", title="Oops leaked"))
    app_module.sync_release(sqs_event("releases/oops.json"), None)
    aws.delete_object(Bucket=SOURCE, Key="releases/oops.json")
    app_module.sync_release(sqs_event("releases/oops.json", "ObjectRemoved:Delete"), None)
    assert "releases/oops/index.html" not in public_tree(aws)
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == []

    # the next release still alerts
    upload(aws, "releases/fine.json", make_release(slug="fine", title="Fine news"))
    app_module.sync_release(sqs_event("releases/fine.json"), None)
    drain(app_module, alerts)
    assert alert_subjects(outbox) == ["Press Release: Fine news"]


def test_a_correction_made_before_the_alert_goes_out_is_in_the_alert(
    app_module: Any, client: Client, outbox: Outbox, alerts: str, aws: Any
) -> None:
    subscribe(client, outbox, "desk@example.org")
    doc = make_release(slug="typo", title="Harbour reprot", summary="Three clincs.")
    upload(aws, "releases/typo.json", doc)
    app_module.sync_release(sqs_event("releases/typo.json"), None)
    upload(
        aws, "releases/typo.json", {**doc, "title": "Harbour report", "summary": "Three clinics."}
    )
    app_module.sync_release(sqs_event("releases/typo.json"), None)
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == ["Press Release: Harbour report"]
    [mail] = [m for m in outbox.sent if "List-Unsubscribe" in m.headers]
    assert "Three clinics." in mail.text and "clincs" not in mail.text + mail.html


@pytest.fixture
def corrections(
    app_module: Any, client: Client, outbox: Outbox, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, dict[str, Any]], None]:
    """A subscriber, no 15-minute wait before an unlisted release's second
    look, and ``publish(key, doc)``: upload and sync, as often as a test edits."""
    monkeypatch.setattr("chalicelib.alerts.sender.RECHECK_S", 0)
    subscribe(client, outbox, "desk@example.org")

    def publish(key: str, doc: dict[str, Any]) -> None:
        upload(aws, key, doc)
        app_module.sync_release(sqs_event(key), None)

    return publish


def the_alert(outbox: Outbox) -> Any:
    [mail] = [m for m in outbox.sent if "List-Unsubscribe" in m.headers]
    return mail


@pytest.mark.parametrize(
    ("corrected", "shown"),
    [
        ("2018-11-30T09:00:00-05:00", "November 30, 2018"),  # into another month
        ("2018-12-03T16:30:00-05:00", "December 3, 2018"),  # within the month
    ],
)
def test_a_release_redated_before_its_alert_goes_out_alerts_with_its_new_date(
    app_module: Any, outbox: Outbox, alerts: str, corrections: Any, corrected: str, shown: str
) -> None:
    """A wrong publication date fixed while the alert waits is a correction,
    not a withdrawal: the alert goes out once, with the date the site shows."""
    doc = make_release(
        slug="dated", title="Harbour dates", published_at="2018-12-19T10:00:00-05:00"
    )
    corrections("releases/dated.json", doc)
    corrections("releases/dated.json", {**doc, "published_at": corrected})
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == ["Press Release: Harbour dates"]
    text = the_alert(outbox).text
    assert shown in text and "December 19, 2018" not in text

    # a later update of the redated release sends nothing more
    corrections("releases/dated.json", {**doc, "published_at": corrected, "summary": "Later."})
    drain(app_module, alerts, twice=True)
    assert len(alert_subjects(outbox)) == 1


def test_a_release_whose_slug_changed_before_its_alert_links_to_its_new_address(
    app_module: Any, outbox: Outbox, alerts: str, aws: Any, corrections: Any
) -> None:
    doc = make_release(slug="harbor-news", title="Harbour news")
    corrections("releases/harbour.json", doc)
    corrections("releases/harbour.json", {**doc, "slug": "harbour-news"})
    assert "releases/harbor-news/index.html" not in public_tree(aws)
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == ["Press Release: Harbour news"]
    text = the_alert(outbox).text
    assert "/releases/harbour-news/" in text and "/releases/harbor-news/" not in text


def test_a_release_redated_then_taken_down_before_its_alert_alerts_nobody(
    app_module: Any, outbox: Outbox, alerts: str, aws: Any, corrections: Any
) -> None:
    doc = make_release(slug="gone", title="Gone soon")
    corrections("releases/gone.json", doc)
    corrections("releases/gone.json", {**doc, "published_at": "2018-11-02T10:00:00-05:00"})
    aws.delete_object(Bucket=SOURCE, Key="releases/gone.json")
    app_module.sync_release(sqs_event("releases/gone.json", "ObjectRemoved:Delete"), None)
    drain(app_module, alerts, twice=True)
    assert alert_subjects(outbox) == []
