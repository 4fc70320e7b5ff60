"""E-mail alerts in a real browser, on the demo: sign up with the page's form,
follow the confirmation link from the ``.eml`` in the outbox, publish a
release through the inbox, find its alert in the outbox, and unsubscribe with
one click on the alert's link."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import serving_demo

from newsroom.demo import Demo

from .test_pages import axe_violations, close, visit

pytestmark = pytest.mark.browser


def _release(slug: str, title: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": title,
        "kind": "statement",
        "published_at": "2026-11-30T09:00:00+00:00",
        "summary": "The harbour authority closed the north pier.",
        "body": "The north pier is closed until further notice.",
        "topics": ["Coastal Communities"],
    }


class Demoed:
    def __init__(self, demo: Demo, inbox: Path, outbox: Path) -> None:
        self.demo, self.inbox, self.outbox = demo, inbox, outbox

    @property
    def url(self) -> str:
        return self.demo.url

    def mails(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.outbox.glob("*.eml"))
        ]

    def wait(self, what: str, found: Callable[[], Any], within: float = 20.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")

    def publish(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Drop a release into the demo's inbox; its public index entry once live."""
        (self.inbox / f"{doc['slug']}.json").write_text(json.dumps(doc), encoding="utf-8")

        def entry() -> dict[str, Any] | None:
            with urllib.request.urlopen(self.url + "/index.json") as resp:
                releases = json.load(resp)["releases"]
            return next((e for e in releases if e["slug"] == doc["slug"]), None)

        return self.wait(f"{doc['slug']} on the site", entry)


@pytest.fixture(scope="module")
def demoed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demoed]:
    samples = tmp_path_factory.mktemp("samples")
    (samples / "releases").mkdir()
    (samples / "releases" / "first.json").write_text(
        json.dumps(_release("harbour-survey", "Harbour survey published"))
    )
    inbox, outbox = tmp_path_factory.mktemp("inbox"), tmp_path_factory.mktemp("outbox")
    options = {"inbox": inbox, "outbox": outbox, "poll_interval": 0.1}
    with serving_demo(samples, watch=True, **options) as (demo, _receipts):
        yield Demoed(demo, inbox, outbox)


def text_link(mail: email.message.EmailMessage, path: str) -> str:
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://127\.0\.0\.1:\d+/subscriptions/" + path + r"\?token=\S+", text)
    assert match, text
    return match.group(0)


def test_sign_up_confirm_alert_unsubscribe_in_the_browser(demoed: Demoed, browser: Any) -> None:
    # sign up with the form at the foot of a topic page, narrowing to statements
    v = visit(browser, demoed.url + "/topics/coastal-communities/", 1280)
    page = v.page
    form = page.locator("form[action$='/subscriptions']")
    assert form.locator("input[name=topics][value=coastal-communities]").is_checked()
    page.fill("#signup-email", "desk@example.org")
    page.locator("summary", has_text="Choose kinds").click()
    page.get_by_label("Statements").check()
    with page.expect_navigation():
        form.get_by_role("button", name="Subscribe").click()
    assert "Check your inbox" in page.content()
    assert axe_violations(page) == []

    # the confirmation e-mail, as the outbox keeps it
    [confirmation] = demoed.wait("the confirmation .eml", demoed.mails)
    assert confirmation["To"] == "desk@example.org"
    page.goto(text_link(confirmation, "confirm"))
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert "Statements about coastal communities" in page.content()

    # a new statement on that topic: one alert
    demoed.publish(_release("north-pier-closed", "North pier closed"))

    def alerts() -> list[email.message.EmailMessage]:
        return [m for m in demoed.mails() if m["List-Unsubscribe"]]

    [alert] = demoed.wait("the alert .eml", alerts)
    assert alert["Subject"] == "Statement: North pier closed"
    assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = alert.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert f"{demoed.url}/releases/north-pier-closed/" in html

    # one click: the link of the alert, its button
    page.goto(alert["List-Unsubscribe"].strip("<>"))
    with page.expect_navigation():
        page.get_by_role("button", name="Unsubscribe").click()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert axe_violations(page) == []
    close(v)

    # the next statement reaches nobody
    demoed.publish(_release("south-pier-closed", "South pier closed"))
    time.sleep(1.5)
    assert len(alerts()) == 1
