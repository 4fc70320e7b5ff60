"""``newsroom rebuild`` over moto: the whole public bucket re-rendered from the
source bucket, writing only what changed, safe against concurrent publishes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from support import (
    PUBLIC,
    SOURCE,
    cloudfront_distribution,
    make_release,
    public_tree,
    publish,
    receipt,
    sqs_event,
    upload,
)

from chalicelib import service
from chalicelib.core.render import Renderer
from chalicelib.keys import invalidation_paths
from chalicelib.publisher import Publisher
from chalicelib.settings import Settings
from chalicelib.storage import S3Storage
from newsroom.build import build_site
from newsroom.cli import main
from newsroom.ops import Rebuilder

RELEASES = {
    "releases/clinics.json": make_release(slug="clinics"),
    "releases/water report.json": make_release(
        slug="water-report",
        title="Unequal shores: the clean water report",
        kind="report",
        published_at="2019-03-02T09:00:00+01:00",
        topics=["Clean Water"],
        image=None,
    ),
    "releases/statement.json": make_release(
        slug="statement",
        title="Statement on the flood relief",
        kind="statement",
        published_at="2020-07-14T16:30:00-04:00",
        topics=["Floods"],
        image=None,
    ),
}


def encoded(key: str) -> str:
    return key.replace(" ", "+")


def publish_all(aws: Any, app_module: Any, docs: dict[str, Any]) -> None:
    for key, doc in docs.items():
        upload(aws, key, doc)
        app_module.sync_release(sqs_event(encoded(key)), None)


def rebuild(*args: str) -> Any:
    return CliRunner().invoke(main, ["rebuild", *args])


def invalidations(cf: Any, dist_id: str) -> list[list[str]]:
    out = []
    for item in cf.list_invalidations(DistributionId=dist_id)["InvalidationList"].get("Items", []):
        inv = cf.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"]
        out.append(inv["InvalidationBatch"]["Paths"]["Items"])
    return out


@pytest.fixture
def cloudfront(aws: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    return cloudfront_distribution(monkeypatch)


def etags(aws: Any, bucket: str = PUBLIC) -> dict[str, tuple[str, datetime]]:
    out = {}
    for page in aws.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = (item["ETag"], item["LastModified"])
    return out


def test_rebuild_of_a_site_published_by_the_lambda_writes_nothing(
    aws: Any, app_module: Any, cloudfront: tuple[Any, str]
) -> None:
    cf, dist_id = cloudfront
    publish_all(aws, app_module, RELEASES)
    publish(
        app_module, aws, "releases/later.json", make_release(embargo_until="2999-01-01T00:00:00Z")
    )
    before_tree, before_etags = public_tree(aws), etags(aws)
    before_schedule = aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    sent_before = len(invalidations(cf, dist_id))

    result = rebuild()

    assert result.exit_code == 0, result.output
    assert "3 releases: 0 written" in result.stdout
    assert "0 removed" in result.stdout
    assert "releases/later.json: scheduled" in result.stdout
    assert result.stderr == ""
    assert public_tree(aws) == before_tree
    assert etags(aws) == before_etags  # same ETag *and* LastModified: nothing was PUT
    after_schedule = aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    assert after_schedule == before_schedule
    assert len(invalidations(cf, dist_id)) == sent_before  # nothing changed, nothing sent


def test_settings_change_rewrites_shared_pages_and_sends_one_invalidation(
    aws: Any, app_module: Any, cloudfront: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cf, dist_id = cloudfront
    publish_all(aws, app_module, RELEASES)
    before = public_tree(aws)
    sent_before = len(invalidations(cf, dist_id))

    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")
    result = rebuild("--workers", "4")

    assert result.exit_code == 0, result.output + result.stderr
    after = public_tree(aws)
    assert after.keys() == before.keys()
    html = [k for k in after if k.endswith(".html")]
    for key in html:  # the title is on every page: each was re-rendered
        assert b"Harbor Light Newsroom" in after[key], key
    changed = {k for k in after if after[k] != before[k]}
    # index.json shows no site setting (and no theme: that is private state)
    assert set(html) <= changed and "feed.xml" in changed and "index.json" not in changed
    assert f"{len(changed)} written" in result.stdout

    # one invalidation, exactly the paths of the changed objects
    sent = invalidations(cf, dist_id)
    assert len(sent) == sent_before + 1
    expected = sorted({p for k in changed for p in invalidation_paths(k)})
    assert sorted(sent[-1]) == expected
    assert "/" in sent[-1] and "/releases/clinics/" in sent[-1]

    # the Lambda, under the same settings, now finds the site converged
    again = rebuild()
    assert "0 written" in again.stdout
    assert len(invalidations(cf, dist_id)) == sent_before + 1


def test_rejected_sources_are_reported_at_the_end_and_skipped(aws: Any, app_module: Any) -> None:
    publish_all(aws, app_module, RELEASES)
    upload(aws, "releases/bad.json", make_release(kind="opinion", image={"url": "/x.jpg"}))
    upload(aws, "releases/broken.json", b"{not json")

    result = rebuild()

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "releases/bad.json: kind: " in result.stderr
    assert "releases/bad.json: image.alt: " in result.stderr
    assert any(line.startswith("releases/broken.json: (file): is not valid JSON") for line in lines)
    assert lines[-1] == "2 source file(s) rejected"
    assert "3 releases: 0 written" in result.stdout
    assert not any("bad" in k for k in public_tree(aws))


def test_a_live_release_whose_source_turned_invalid_stays_published(
    aws: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_all(aws, app_module, RELEASES)
    # an invalid update: the publisher rejects it and keeps the last good version live
    publish(
        app_module, aws, "releases/statement.json", make_release(slug="statement", kind="opinion")
    )
    assert receipt(aws, "releases/statement.json")["status"] == "rejected"
    page = public_tree(aws)["releases/statement/index.html"]

    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")
    result = rebuild()

    assert result.exit_code == 1
    assert "releases/statement.json: kind: " in result.stderr
    assert "releases/statement/index.html: kept as published" in result.stdout
    tree = public_tree(aws)
    assert tree["releases/statement/index.html"] == page  # not re-rendered, not removed
    slugs = [e["slug"] for e in json.loads(tree["index.json"])["releases"]]
    assert "statement" in slugs
    assert b"/releases/statement/" in tree["index.html"]


def test_the_slug_holder_keeps_its_slug(aws: Any, app_module: Any) -> None:
    """The publisher gives a contested slug to whoever holds it now, even if the
    newcomer claims an earlier date; a rebuild must not hand it over."""
    holder = make_release(slug="clinics", published_at="2019-01-01T10:00:00Z")
    newcomer = make_release(
        slug="clinics", title="Older claim", published_at="2017-01-01T10:00:00Z"
    )
    publish_all(aws, app_module, {"releases/holder.json": holder})
    publish_all(aws, app_module, {"releases/newcomer.json": newcomer})
    before = public_tree(aws)

    result = rebuild()

    assert result.exit_code == 1
    assert "releases/newcomer.json: slug: " in result.stderr
    assert "releases/holder.json" in result.stderr  # the reason names the holder
    assert public_tree(aws) == before
    assert "0 written" in result.stdout


def test_prunes_what_the_site_no_longer_has_but_never_media(aws: Any, app_module: Any) -> None:
    publish_all(aws, app_module, RELEASES)
    extra = {
        "releases/ghost/index.html": b"<p>orphan</p>",
        "topics/gone/index.html": b"<p>old topic</p>",
        "assets/style.000000000000.css": b"body{}",
        "media/clinic.jpg": b"\xff\xd8\xff\xd9",
        "google0123456789abcdef.html": b"google-site-verification",
    }
    for key, body in extra.items():
        aws.put_object(Bucket=PUBLIC, Key=key, Body=body)

    dry = rebuild("--dry-run")
    assert dry.exit_code == 0
    assert "0 would write" in dry.stdout and "3 would remove" in dry.stdout
    assert "releases/ghost/index.html" in public_tree(aws)  # a dry run deletes nothing

    result = rebuild()

    assert result.exit_code == 0, result.stderr
    assert "3 removed" in result.stdout
    tree = public_tree(aws)
    for key in (
        "releases/ghost/index.html",
        "topics/gone/index.html",
        "assets/style.000000000000.css",
    ):
        assert key not in tree
    assert tree["media/clinic.jpg"] == extra["media/clinic.jpg"]
    assert tree["google0123456789abcdef.html"] == extra["google0123456789abcdef.html"]


def test_rebuild_writes_the_embargo_schedule(aws: Any, app_module: Any) -> None:
    publish_all(aws, app_module, RELEASES)
    upload(
        aws, "releases/later.json", make_release(slug="later", embargo_until="2999-01-01T00:00:00Z")
    )
    # the event never arrived (or the schedule was lost): nothing knows about it
    aws.delete_object(Bucket=SOURCE, Key="receipts/schedule.json")

    result = rebuild()

    assert result.exit_code == 0
    schedule = json.loads(
        aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    )
    assert schedule["releases"] == [
        {
            "source_key": "releases/later.json",
            "slug": "later",
            "embargo_until": "2999-01-01T00:00:00+00:00",
        }
    ]
    assert not any("later" in k for k in public_tree(aws))


def test_an_upload_processed_during_the_rebuild_is_not_clobbered(
    aws: Any, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """index.json changes between the rebuild's read and its commit: the commit
    fails, the rebuild starts over from fresh state, and the new release stays."""
    publish_all(aws, app_module, RELEASES)
    monkeypatch.setenv("NEWSROOM_SITE_TITLE", "Harbor Light Newsroom")  # so there is work
    settings = Settings.from_env()
    client = service.s3_client()
    late = make_release(
        slug="late-news", title="Late news", published_at="2021-05-05T10:00:00Z", image=None
    )
    phases: list[tuple[str, int, int]] = []

    def progress(phase: str, done: int, total: int) -> None:
        phases.append((phase, done, total))
        if phase == "write" and done == 0 and sum(p[0] == "write" for p in phases) == 1:
            # the Lambda processes an upload while the rebuild is writing
            publish(app_module, aws, "releases/late.json", late)
            assert receipt(aws, "releases/late.json")["status"] == "published"

    report = Rebuilder(
        S3Storage(client, SOURCE),
        S3Storage(client, PUBLIC),
        Renderer(settings),
        workers=4,
        progress=progress,
    ).run()

    assert report.attempts == 2
    assert report.releases == 4
    tree = public_tree(aws)
    index = json.loads(tree["index.json"])
    assert [e["slug"] for e in index["releases"]][0] == "late-news"
    assert b"Late news" in tree["index.html"] and b"Late news" in tree["feed.xml"]
    assert "releases/late-news/index.html" in tree

    # the bucket is exactly what a clean build of the sources gives
    sources = []
    for key in sorted(etags(aws, SOURCE)):
        if key.startswith("releases/"):
            sources.append((key, aws.get_object(Bucket=SOURCE, Key=key)["Body"].read()))
    clean = build_site(sources, Renderer(settings), now=datetime.now(UTC))
    assert tree == clean.files


def test_a_release_whose_embargo_ran_out_still_gets_its_published_receipt(
    aws: Any, app_module: Any
) -> None:
    """The rebuild puts a release live once its embargo has passed; the schedule
    entry stays, so the next scheduled run writes the ``published`` receipt."""
    client = service.s3_client()
    earlier = Publisher(
        S3Storage(client, SOURCE),
        S3Storage(client, PUBLIC),
        Renderer(Settings.from_env()),
        clock=lambda: datetime(2020, 1, 1, tzinfo=UTC),
    )
    upload(aws, "releases/due.json", make_release(slug="due", embargo_until="2020-06-01T00:00:00Z"))
    assert earlier.sync("releases/due.json").status == "scheduled"

    result = rebuild()

    assert result.exit_code == 0, result.stderr
    assert "releases/due/index.html" in public_tree(aws)
    event = {  # what the rate(5 minutes) rule delivers
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T14:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-publish_due_releases"],
        "detail": {},
    }
    out = app_module.publish_due_releases(event, None)
    assert [r["status"] for r in out] == ["published"]
    assert receipt(aws, "releases/due.json")["status"] == "published"
    schedule = json.loads(
        aws.get_object(Bucket=SOURCE, Key="receipts/schedule.json")["Body"].read()
    )
    assert schedule["releases"] == []


def test_unchanged_releases_are_trusted_unless_full_is_asked(aws: Any, app_module: Any) -> None:
    """A rebuild skips releases whose source and theme are unchanged (that is
    what makes it cheap); --full renders everything and repairs hand edits."""
    publish_all(aws, app_module, RELEASES)
    key = "releases/clinics/index.html"
    good = aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read()
    aws.put_object(
        Bucket=PUBLIC, Key=key, Body=b"edited by hand", ContentType="text/html; charset=utf-8"
    )

    assert rebuild().exit_code == 0
    assert aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == b"edited by hand"

    result = rebuild("--full")
    assert result.exit_code == 0, result.output
    assert "1 written" in result.stdout
    assert aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == good


def test_a_no_op_rebuild_does_not_download_unchanged_sources(aws: Any, app_module: Any) -> None:
    """The source listing's ETag (the MD5 of the bytes) matches the digest each
    index entry records, so unchanged sources are not even read."""
    publish_all(aws, app_module, RELEASES)
    read: list[str] = []
    aws.meta.events.register(
        "before-call.s3.GetObject", lambda params, **kw: read.append(params["url_path"])
    )
    rebuilder = Rebuilder(
        S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), Renderer(Settings.from_env())
    )
    report = rebuilder.run()
    assert report.written == []

    def sources_read() -> list[str]:  # url paths; release sources are releases/*.json
        return [p for p in read if p.startswith("/releases/") and p.endswith(".json")]

    assert sources_read() == [], read

    # one changed source is read (and only that one), and its page rewritten
    upload(aws, "releases/clinics.json", make_release(slug="clinics", title="Clinics, corrected"))
    read.clear()
    report = rebuilder.run()
    assert sources_read() == ["/releases/clinics.json"]
    assert "releases/clinics/index.html" in report.written
