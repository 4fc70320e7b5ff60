"""publish_due_releases: the schedule and the anti-entropy sweep, through the
real scheduled handler on moto. Every event here is lost on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from support import PUBLIC, SOURCE, dumps, make_release, public_tree, receipt, renderer, sqs_event
from test_embargo import Clock, make_publisher, scheduled_event

from chalicelib.keys import waiting_key
from chalicelib.sweep import Sweeper
from newsroom.build import build_site


def site(s3: Any) -> dict[str, bytes]:
    return public_tree(s3)


def build_now(s3: Any) -> dict[str, bytes]:
    sources = sorted(
        (k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/")
    )
    return build_site(sources, renderer(), now=datetime.now(UTC), workers=1).files


def test_uploads_and_deletes_whose_events_were_lost_converge(app_module: Any, aws: Any) -> None:
    aws.put_object(Bucket=SOURCE, Key="releases/kept.json", Body=dumps(make_release(slug="kept")))
    aws.put_object(Bucket=SOURCE, Key="releases/gone.json", Body=dumps(make_release(slug="gone")))
    app_module.sync_release(sqs_event("releases/gone.json"), None)
    aws.delete_object(Bucket=SOURCE, Key="releases/gone.json")  # its event is lost too
    out = app_module.publish_due_releases(scheduled_event(), None)
    assert sorted((r["source_key"], r["status"]) for r in out) == [
        ("releases/gone.json", "unpublished"),
        ("releases/kept.json", "published"),
    ]
    assert site(aws) == build_now(aws)
    # converged: the next sweep finds nothing to do
    assert app_module.publish_due_releases(scheduled_event(), None) == []


def test_an_overwrite_whose_event_was_lost_is_published(app_module: Any, aws: Any) -> None:
    aws.put_object(Bucket=SOURCE, Key="releases/a.json", Body=dumps(make_release(slug="a")))
    app_module.sync_release(sqs_event("releases/a.json"), None)
    aws.put_object(
        Bucket=SOURCE, Key="releases/a.json", Body=dumps(make_release(slug="a", title="Second"))
    )
    pub = make_publisher(Clock(datetime.now(UTC)))
    report = Sweeper(pub).run()
    assert report.drifted == ["releases/a.json"]
    assert b"Second" in site(aws)["releases/a/index.html"]
    assert site(aws) == build_now(aws)


def test_an_embargoed_update_of_a_live_release_is_left_to_its_instant(aws: Any) -> None:
    """The live version differs from its source until the update's instant: that
    is the embargo, not drift. Synced again by every sweep, it had its receipt
    and preview rewritten every five minutes, each with a new preview link."""
    instant = datetime(2030, 3, 1, 14, 0, tzinfo=UTC)
    clock = Clock(instant - timedelta(days=1))
    pub = make_publisher(clock)
    aws.put_object(Bucket=SOURCE, Key="releases/l.json", Body=dumps(make_release(slug="l")))
    assert pub.sync("releases/l.json").status == "published"
    update = make_release(slug="l", title="Embargoed update", embargo_until=instant.isoformat())
    aws.put_object(Bucket=SOURCE, Key="releases/l.json", Body=dumps(update))
    assert pub.sync("releases/l.json").status == "scheduled"
    link = receipt(aws, "releases/l.json")["preview_url"]
    for _ in range(2):
        report = Sweeper(pub).run()
        assert report.drifted == [] and report.receipts == []
        assert receipt(aws, "releases/l.json")["preview_url"] == link
    assert b"Embargoed update" not in site(aws)["releases/l/index.html"]
    clock.now = instant
    report = Sweeper(pub).run()
    assert [(r.source_key, r.status) for r in report.receipts] == [("releases/l.json", "published")]
    assert b"Embargoed update" in site(aws)["releases/l/index.html"]


def test_a_poison_file_never_stops_the_schedule(aws: Any) -> None:
    instant = datetime(2030, 3, 1, 14, 0, tzinfo=UTC)
    clock = Clock(instant - timedelta(hours=1))
    pub = make_publisher(clock)
    for name in ("first", "poison", "last"):
        doc = make_release(slug=name, summary=None, embargo_until=instant.isoformat())
        aws.put_object(Bucket=SOURCE, Key=f"releases/{name}.json", Body=dumps(doc))
        assert pub.sync(f"releases/{name}.json").status == "scheduled"
    # the scheduled file turns into one that cannot be rendered (lone surrogate)
    bad = dumps(make_release(slug="poison", summary=None, embargo_until=instant.isoformat()))
    aws.put_object(
        Bucket=SOURCE, Key="releases/poison.json", Body=bad.replace(b"The clinics", b"\\ud800")
    )
    clock.now = instant
    report = Sweeper(pub).run()
    statuses = {r.source_key: r.status for r in report.receipts}
    assert statuses == {
        "releases/first.json": "published",
        "releases/poison.json": "rejected",
        "releases/last.json": "published",
    }
    assert receipt(aws, "releases/poison.json")["errors"]
    assert "releases/last/index.html" in site(aws)
    assert not any("poison" in k for k in site(aws))
    assert pub.scheduled() == []


def test_a_freed_slug_goes_to_the_waiting_file_at_once(app_module: Any, aws: Any) -> None:
    aws.put_object(Bucket=SOURCE, Key="releases/holder.json", Body=dumps(make_release(slug="s")))
    app_module.sync_release(sqs_event("releases/holder.json"), None)
    doc = make_release(slug="s", title="Claimant")
    aws.put_object(Bucket=SOURCE, Key="releases/claimant.json", Body=dumps(doc))
    app_module.sync_release(sqs_event("releases/claimant.json"), None)
    assert receipt(aws, "releases/claimant.json")["status"] == "rejected"
    assert aws.get_object(Bucket=SOURCE, Key=waiting_key("s"))
    aws.delete_object(Bucket=SOURCE, Key="releases/holder.json")
    app_module.sync_release(sqs_event("releases/holder.json", "ObjectRemoved:Delete"), None)
    assert receipt(aws, "releases/claimant.json")["status"] == "published"
    assert b"Claimant" in site(aws)["releases/s/index.html"]
    assert site(aws) == build_now(aws)


def test_a_freed_slug_whose_event_was_lost_goes_to_the_waiting_file_in_the_sweep(
    app_module: Any, aws: Any
) -> None:
    aws.put_object(Bucket=SOURCE, Key="releases/holder.json", Body=dumps(make_release(slug="s")))
    app_module.sync_release(sqs_event("releases/holder.json"), None)
    doc = make_release(slug="s", title="Claimant")
    aws.put_object(Bucket=SOURCE, Key="releases/claimant.json", Body=dumps(doc))
    app_module.sync_release(sqs_event("releases/claimant.json"), None)
    aws.delete_object(Bucket=SOURCE, Key="releases/holder.json")  # event lost
    app_module.publish_due_releases(scheduled_event(), None)
    assert receipt(aws, "releases/claimant.json")["status"] == "published"
    assert site(aws) == build_now(aws)
    assert PUBLIC


def test_a_release_named_in_another_case_gets_one_rejected_receipt(
    app_module: Any, aws: Any
) -> None:
    """S3 hears only ``.json`` (its filter is case-sensitive), so ``Report.JSON``
    raised no event, and the sweep passed it by: its author waited for a receipt
    that never came. The sweep refuses it once, saying how to fix it."""
    aws.put_object(
        Bucket=SOURCE, Key="releases/Report.JSON", Body=dumps(make_release(slug="report"))
    )
    out = app_module.publish_due_releases(scheduled_event(), None)
    assert [(r["source_key"], r["status"]) for r in out] == [("releases/Report.JSON", "rejected")]
    doc = receipt(aws, "releases/Report.JSON")
    assert doc["status"] == "rejected"
    assert doc["errors"][0]["loc"] == "(file)"
    assert "rename it to Report.json" in doc["errors"][0]["msg"]
    assert not [k for k in site(aws) if "report" in k]  # nothing of it is public
    # written once: the next sweep finds its receipt newer than the file
    assert app_module.publish_due_releases(scheduled_event(), None) == []


def test_a_misnamed_files_refusal_goes_when_the_file_is_renamed(app_module: Any, aws: Any) -> None:
    """Renaming ``Report.JSON`` raises no event for the old name: its refusal
    stayed for good, telling the office a file it no longer has was refused."""
    doc = dumps(make_release(slug="report"))
    aws.put_object(Bucket=SOURCE, Key="releases/Report.JSON", Body=doc)
    app_module.publish_due_releases(scheduled_event(), None)
    assert receipt(aws, "releases/Report.JSON")["status"] == "rejected"
    aws.delete_object(Bucket=SOURCE, Key="releases/Report.JSON")
    aws.put_object(Bucket=SOURCE, Key="releases/Report.json", Body=doc)
    out = app_module.publish_due_releases(scheduled_event(), None)
    assert [(r["source_key"], r["status"]) for r in out] == [("releases/Report.json", "published")]
    receipts = aws.list_objects_v2(Bucket=SOURCE, Prefix="receipts/releases/").get("Contents", [])
    assert [o["Key"] for o in receipts] == ["receipts/releases/Report.json"]
