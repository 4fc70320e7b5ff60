"""The embargo promise as a property: nothing of a release is public before its
publication instant, at any moment, whatever staff do in whatever order.

Hypothesis writes a history of uploads, overwrites and deletes of releases
(some embargoed, some dated in the future, some referencing media) and of
media files, interleaved with deliveries of the publish queue (batches of
S3 notifications, some delivered twice) and with the clock moving on, each
followed by the scheduled ``publish_due_releases`` run. Everything goes
through the real Chalice handlers on moto; the clock is the system clock,
moved by time-machine.

A botocore hook on the handlers' S3 client checks every object the moment it
is written to the public bucket, so states that exist only in the middle of
a publish are checked too. Every release version carries a unique token (in
its title, summary, body and topic) and a slug of its own; a version becomes
*due* once it is the source's content at or after its publication instant.
Until then no public object may contain its token, its slug (unless a due
version has the same slug), or a media file only it references.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    PUBLIC,
    SOURCE,
    dumps,
    empty_buckets,
    make_release,
    public_tree,
    queue_event,
    s3_event,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RELEASE_KEYS = ["releases/alpha.json", "releases/beta two.json", "releases/gamma+3.json"]
MEDIA = {
    "media/m0.jpg": b"\xff\xd8\xff\xe0 photo zero",
    "media/m1.pdf": b"%PDF-1.7 report one",
    "media/m2.png": b"\x89PNG\r\n\x1a\n chart two",
}
IMAGES = ["media/m0.jpg", "media/m2.png"]
WRITES = ("PutObject", "CopyObject", "CompleteMultipartUpload")


@dataclass(frozen=True)
class Version:
    uid: int
    slug: str
    instant: datetime
    media: frozenset[str]
    doc: dict[str, Any]

    @property
    def token(self) -> str:
        return f"tok{self.uid:04d}"


@dataclass
class World:
    """What staff did and when: the model the public bucket is judged by."""

    now: datetime = T0
    uids: int = 0
    current: dict[str, Version] = field(default_factory=dict)
    versions: list[Version] = field(default_factory=list)
    due: set[int] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)

    def version(self, k: int, spec: dict[str, Any]) -> Version:
        self.uids += 1
        tok = f"tok{self.uids:04d}"
        published = T0 + spec["published"]
        embargo = T0 + spec["embargo"] if spec["embargo"] is not None else None
        media = set()
        image = None
        if spec["image"] is not None:
            media.add(spec["image"])
            image = {"url": "/" + spec["image"], "alt": f"Photo {tok}a"}
        attachments = []
        if spec["attachment"]:
            media.add("media/m1.pdf")
            attachments = [{"title": f"Report {tok}f", "url": "/media/m1.pdf"}]
        body = f"Body {tok}b of the release."
        if spec["body_media"] is not None:
            media.add(spec["body_media"])
            body += f" [Download](/{spec['body_media']})."
        doc = make_release(
            slug=f"rel{k}-{spec['variant']}",
            title=f"Title {tok}t",
            summary=f"Summary {tok}s",
            body=body,
            topics=[f"Topic {tok}p"],
            published_at=published.isoformat(),
            embargo_until=embargo.isoformat() if embargo else None,
            image=image,
            attachments=attachments or None,
            contacts=None,
        )
        return Version(
            self.uids,
            doc["slug"],
            max(published, embargo or published),
            frozenset(media),
            doc,
        )

    def mark_due(self) -> None:
        for v in self.current.values():
            if v.instant <= self.now:
                self.due.add(v.uid)

    def secrets(self) -> tuple[list[str], set[str]]:
        """Needles no public object may hold now, and the media that may be public."""
        due = [v for v in self.versions if v.uid in self.due]
        allowed_slugs = {v.slug for v in due}
        allowed_media = set().union(*(v.media for v in due)) if due else set()
        needles = [v.token for v in self.versions if v.uid not in self.due]
        needles += sorted({v.slug for v in self.versions} - allowed_slugs)
        return needles, allowed_media

    def check(self, key: str, body: bytes) -> None:
        needles, allowed_media = self.secrets()
        if key.startswith("media/") and key not in allowed_media:
            self.violations.append(f"{self.now:%d %H:%M}: {key} is public before its release")
        if body[:2] == b"\x1f\x8b":  # search index fragments are gzip
            body = gzip.decompress(body)
        text = (key + "\n" + body.decode("utf-8", "replace")).lower()
        for needle in needles:
            if needle in text:
                self.violations.append(f"{self.now:%d %H:%M}: {key} holds {needle!r}")


def watch_public_writes(client: Any, reader: Any, world: World) -> None:
    """Check each object the moment the handlers' client writes it to the public bucket."""

    def after_call(context: dict[str, Any], event_name: str, **_: Any) -> None:
        params = context.get("input_params", {})
        if event_name.rsplit(".", 1)[1] in WRITES and params.get("Bucket") == PUBLIC:
            key = params["Key"]
            world.check(key, reader.get_object(Bucket=PUBLIC, Key=key)["Body"].read())

    for op in WRITES:
        client.meta.events.register(f"after-call.s3.{op}", after_call, f"secrecy-{op}")


def unwatch(client: Any) -> None:
    for op in WRITES:
        client.meta.events.unregister(f"after-call.s3.{op}", unique_id=f"secrecy-{op}")


def backstop(s3: Any, world: World, seen: dict[str, str]) -> None:
    """Check every public object new or changed since the last look, in case
    a write went through a client the hook does not watch."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=PUBLIC):
        for item in page.get("Contents", []):
            if seen.get(item["Key"]) != item["ETag"]:
                seen[item["Key"]] = item["ETag"]
                world.check(
                    item["Key"], s3.get_object(Bucket=PUBLIC, Key=item["Key"])["Body"].read()
                )


def notification(key: str, removed: bool) -> dict[str, Any]:
    name = "ObjectRemoved:Delete" if removed else "ObjectCreated:Put"
    return s3_event(quote_plus(key, safe="/"), name)


SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2030-01-01T12:05:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-publish_due_releases"],
    "detail": {},
}

versions = st.fixed_dictionaries(
    {
        "variant": st.sampled_from("ab"),
        "published": st.sampled_from([timedelta(days=-1), timedelta(hours=1), timedelta(hours=3)]),
        "embargo": st.sampled_from(
            [None, None, timedelta(hours=-1), timedelta(hours=2), timedelta(days=1)]
        ),
        "image": st.none() | st.sampled_from(IMAGES),
        "attachment": st.booleans(),
        "body_media": st.none() | st.sampled_from(sorted(MEDIA)),
    }
)
steps = st.one_of(
    st.tuples(st.just("release"), st.integers(0, len(RELEASE_KEYS) - 1), st.none() | versions),
    st.tuples(st.just("media"), st.sampled_from(sorted(MEDIA)), st.booleans()),
    st.tuples(st.just("deliver"), st.integers(0, 100), st.integers(1, 4), st.booleans()),
    st.tuples(
        st.just("tick"),
        st.sampled_from([timedelta(minutes=30), timedelta(hours=2), timedelta(days=1)]),
    ),
)


@pytest.fixture
def handlers(app_module: Any, aws: Any) -> Iterator[Any]:
    from chalicelib import service

    yield app_module
    unwatch(service.s3_client())


HISTORIES = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=8, **HISTORIES)
@given(history=st.lists(steps, min_size=1, max_size=16))
def test_nothing_of_a_release_is_public_before_its_instant(
    handlers: Any, aws: Any, history: list
) -> None:
    """Random histories of versions, media, deliveries and ticks (8 of them in
    the suite, 40 in the stress set below)."""
    nothing_public_before_its_instant(handlers, aws, history)


@pytest.mark.stress
@settings(max_examples=40, **HISTORIES)
@given(history=st.lists(steps, min_size=1, max_size=16))
def test_nothing_of_a_release_is_public_before_its_instant_in_many_histories(
    handlers: Any, aws: Any, history: list
) -> None:
    nothing_public_before_its_instant(handlers, aws, history)


def nothing_public_before_its_instant(handlers: Any, aws: Any, history: list) -> None:
    from chalicelib import service

    empty_buckets(aws)
    world = World()
    queued: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    with time_machine.travel(T0, tick=False) as clock:
        unwatch(service.s3_client())
        watch_public_writes(service.s3_client(), aws, world)

        def deliver(batch: list[dict[str, Any]]) -> None:
            handlers.sync_release(queue_event(*batch), None)

        def sweep() -> None:
            handlers.publish_due_releases(SCHEDULED_EVENT, None)
            if hasattr(handlers, "update_search"):
                handlers.update_search(SCHEDULED_EVENT, None)

        for step in history:
            if step[0] == "release":
                _, k, spec = step
                key = RELEASE_KEYS[k]
                if spec is None:
                    aws.delete_object(Bucket=SOURCE, Key=key)
                    world.current.pop(key, None)
                else:
                    v = world.version(k, spec)
                    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(v.doc))
                    world.current[key] = v
                    world.versions.append(v)
                    world.mark_due()
                queued.append(notification(key, spec is None))
            elif step[0] == "media":
                _, key, present = step
                if present:
                    aws.put_object(Bucket=SOURCE, Key=key, Body=MEDIA[key])
                else:
                    aws.delete_object(Bucket=SOURCE, Key=key)
                queued.append(notification(key, not present))
            elif step[0] == "deliver" and queued:
                _, i, n, again = step
                start = i % len(queued)
                batch = queued[start : start + n]
                if not again:
                    del queued[start : start + n]
                deliver(batch)
            elif step[0] == "tick":
                clock.shift(step[1])
                world.now += step[1]
                world.mark_due()
                sweep()
            assert world.violations == [], (step, world.violations)
            backstop(aws, world, seen)
            assert world.violations == [], (step, world.violations)

        # every event arrives, and time moves past every instant
        if queued:
            deliver(queued)
        clock.shift(timedelta(days=2))
        world.now += timedelta(days=2)
        world.mark_due()
        sweep()
        assert world.violations == []
    tree = public_tree(aws)
    index = json.loads(tree["index.json"]) if "index.json" in tree else {"releases": []}
    assert sorted(r["slug"] for r in index["releases"]) == sorted(
        v.slug for v in world.current.values()
    )
    sources = public_tree(aws, SOURCE)
    wanted_media = {m for v in world.current.values() for m in v.media if m in sources}
    assert {k for k in tree if k.startswith("media/")} == wanted_media


# Named cases, through the same handlers ------------------------------------------
REPORT_AT = T0 + timedelta(days=1)
PDF = MEDIA["media/m1.pdf"]


@pytest.fixture
def at_t0(handlers: Any) -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as clock:
        yield clock


def publish(handlers: Any, *keys: str, removed: bool = False) -> None:
    handlers.sync_release(queue_event(*(notification(k, removed) for k in keys)), None)


def sweep_at(handlers: Any, clock: Any, moment: datetime) -> None:
    clock.move_to(moment)
    handlers.publish_due_releases(SCHEDULED_EVENT, None)


def receipt_of(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=SOURCE, Key=f"receipts/{key}")["Body"].read())


def embargoed_report(**overrides: Any) -> dict[str, Any]:
    doc = make_release(
        slug="unequal-shores",
        title="Unequal shores report",
        kind="report",
        embargo_until=REPORT_AT.isoformat(),
        image=None,
        attachments=[{"title": "Full report", "url": "/media/m1.pdf"}],
    )
    doc.update(overrides)
    return doc


def preview_page(receipt: dict[str, Any]) -> str:
    import requests

    resp = requests.get(receipt["preview_url"], timeout=10)
    assert resp.status_code == 200, resp.status_code
    return resp.text


def test_embargoed_reports_pdf_is_public_only_from_the_instant(
    handlers: Any, aws: Any, at_t0: Any
) -> None:
    from chalicelib import service

    written: list[str] = []
    service.s3_client().meta.events.register(
        "after-call.s3.PutObject",
        lambda context, **_: (
            written.append(context["input_params"]["Key"])
            if context["input_params"]["Bucket"] == PUBLIC
            else None
        ),
        "written-order",
    )
    try:
        aws.put_object(Bucket=SOURCE, Key="media/m1.pdf", Body=PDF)
        aws.put_object(Bucket=SOURCE, Key="releases/report.json", Body=dumps(embargoed_report()))
        publish(handlers, "media/m1.pdf", "releases/report.json")

        r = receipt_of(aws, "releases/report.json")
        assert r["status"] == "scheduled"
        assert datetime.fromisoformat(r["publish_at"]) == REPORT_AT
        assert "media/m1.pdf" not in public_tree(aws)
        sweep_at(handlers, at_t0, REPORT_AT - timedelta(minutes=1))
        assert "media/m1.pdf" not in public_tree(aws)

        sweep_at(handlers, at_t0, REPORT_AT + timedelta(minutes=1))
        tree = public_tree(aws)
        assert tree["media/m1.pdf"] == PDF
        assert "releases/unequal-shores/index.html" in tree
        assert receipt_of(aws, "releases/report.json")["status"] == "published"
        # the PDF before the page that links to it
        assert written.index("media/m1.pdf") < written.index("releases/unequal-shores/index.html")
    finally:
        service.s3_client().meta.events.unregister(
            "after-call.s3.PutObject", unique_id="written-order"
        )


def test_embargoed_update_of_a_live_release_keeps_it_live_until_the_instant(
    handlers: Any, aws: Any, at_t0: Any
) -> None:
    live = make_release(slug="harbour-report", title="Harbour report, first edition")
    aws.put_object(Bucket=SOURCE, Key="releases/harbour.json", Body=dumps(live))
    publish(handlers, "releases/harbour.json")
    first = public_tree(aws)["releases/harbour-report/index.html"]

    update = make_release(
        slug="harbour-report",
        title="Harbour report, second edition",
        summary="The corrected figures.",
        embargo_until=REPORT_AT.isoformat(),
    )
    aws.put_object(Bucket=SOURCE, Key="releases/harbour.json", Body=dumps(update))
    publish(handlers, "releases/harbour.json")
    assert receipt_of(aws, "releases/harbour.json")["status"] == "scheduled"
    tree = public_tree(aws)
    assert tree["releases/harbour-report/index.html"] == first
    assert not [k for k, body in tree.items() if b"second edition" in body]

    sweep_at(handlers, at_t0, REPORT_AT - timedelta(seconds=1))
    assert public_tree(aws)["releases/harbour-report/index.html"] == first
    sweep_at(handlers, at_t0, REPORT_AT)
    page = public_tree(aws)["releases/harbour-report/index.html"]
    assert b"Harbour report, second edition" in page
    assert receipt_of(aws, "releases/harbour.json")["status"] == "published"


def test_preview_follows_each_version_and_goes_at_publication_or_delete(
    handlers: Any, aws: Any, at_t0: Any
) -> None:
    aws.put_object(Bucket=SOURCE, Key="media/m0.jpg", Body=MEDIA["media/m0.jpg"])
    doc = embargoed_report(image={"url": "/media/m0.jpg", "alt": "A shore"})
    aws.put_object(Bucket=SOURCE, Key="releases/report.json", Body=dumps(doc))
    publish(handlers, "releases/report.json")
    first = receipt_of(aws, "releases/report.json")
    page = preview_page(first)
    assert "Preview — not public until" in page and "Unequal shores report" in page
    assert '<meta name="robots" content="noindex">' in page

    doc["title"] = "Unequal shores report, final"
    aws.put_object(Bucket=SOURCE, Key="releases/report.json", Body=dumps(doc))
    publish(handlers, "releases/report.json")
    page = preview_page(receipt_of(aws, "releases/report.json"))
    assert "Unequal shores report, final" in page
    assert preview_page(first) == page  # the first link shows the newest version too

    sweep_at(handlers, at_t0, REPORT_AT)
    assert receipt_of(aws, "releases/report.json")["status"] == "published"
    assert "preview_url" not in receipt_of(aws, "releases/report.json")
    assert [k for k in public_tree(aws, SOURCE) if k.startswith("previews/")] == []

    later = embargoed_report(
        slug="later-report", embargo_until=(REPORT_AT + timedelta(days=3)).isoformat()
    )
    aws.put_object(Bucket=SOURCE, Key="releases/later.json", Body=dumps(later))
    publish(handlers, "releases/later.json")
    assert [k for k in public_tree(aws, SOURCE) if k.startswith("previews/")] == [
        "previews/later/index.html"
    ]
    aws.delete_object(Bucket=SOURCE, Key="releases/later.json")
    publish(handlers, "releases/later.json", removed=True)
    assert [k for k in public_tree(aws, SOURCE) if k.startswith("previews/")] == []


def test_scheduled_release_claiming_a_held_slug_is_warned_at_once(
    handlers: Any, aws: Any, at_t0: Any
) -> None:
    aws.put_object(
        Bucket=SOURCE, Key="releases/holder.json", Body=dumps(make_release(slug="water"))
    )
    publish(handlers, "releases/holder.json")
    # scheduled by a future published_at, which is an embargo by another name
    claimant = make_release(slug="water", published_at=REPORT_AT.isoformat())
    aws.put_object(Bucket=SOURCE, Key="releases/claimant.json", Body=dumps(claimant))
    publish(handlers, "releases/claimant.json")
    r = receipt_of(aws, "releases/claimant.json")
    assert r["status"] == "scheduled"
    assert datetime.fromisoformat(r["publish_at"]) == REPORT_AT
    assert r["preview_url"].startswith("https://")
    assert any("releases/holder.json" in w["msg"] for w in r["warnings"]), r["warnings"]
