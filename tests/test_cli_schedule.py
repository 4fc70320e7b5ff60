"""``newsroom schedule`` over what the publisher keeps in the source bucket.

The schedule and receipts are written here in the publisher's format, so the
command's reading, ordering and link signing are tested on their own; the
embargo tests run it after real handler invocations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from support import SOURCE

from newsroom.cli import main
from newsroom.cli_schedule import ScheduledRelease, schedule_lines


def put_json(s3: Any, key: str, doc: Any) -> None:
    s3.put_object(Bucket=SOURCE, Key=key, Body=json.dumps(doc).encode())


def scheduled(s3: Any, key: str, slug: str, instant: str, **receipt: Any) -> dict[str, Any]:
    put_json(
        s3,
        f"receipts/{key}",
        {"source_key": key, "status": "scheduled", "slug": slug, "publish_at": instant, **receipt},
    )
    return {"source_key": key, "slug": slug, "embargo_until": instant}


def test_lists_each_release_soonest_first_with_a_fresh_preview_and_warnings(aws: Any) -> None:
    later = scheduled(aws, "releases/later.json", "later", "2031-05-01T09:00:00+02:00")
    soon = scheduled(
        aws,
        "releases/soon one.json",
        "soon",
        "2030-03-01T09:00:00-05:00",
        preview_url="https://expired.example/old-link",
        warnings=[{"loc": "slug", "msg": "the slug soon is held by releases/other.json"}],
    )
    put_json(aws, "receipts/schedule.json", {"version": 1, "releases": [later, soon]})
    aws.put_object(Bucket=SOURCE, Key="previews/soon one/index.html", Body=b"<p>preview</p>")

    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "releases/soon one.json: /releases/soon/: public at 2030-03-01T09:00:00-05:00 "
        "(2030-03-01 14:00 UTC, in "
    )
    # a link signed now, not the (possibly expired) one from the receipt
    assert lines[1].startswith("  preview: https://")
    link = urlsplit(lines[1].removeprefix("  preview: "))
    assert link.path.endswith("/previews/soon%20one/index.html")
    assert parse_qs(link.query)["X-Amz-Expires"] == ["604800"]
    assert lines[2] == "  warning: slug: the slug soon is held by releases/other.json"
    assert lines[3].startswith("releases/later.json: /releases/later/: public at 2031-05-01T09")
    assert lines[4:] == ["2 release(s) scheduled"]  # no preview stored, no warning


def test_an_older_schedule_entry_names_its_instant_embargo_until(aws: Any) -> None:
    put_json(
        aws,
        "receipts/schedule.json",
        {
            "version": 1,
            "releases": [
                {
                    "source_key": "releases/a.json",
                    "slug": "a",
                    "embargo_until": "2030-01-01T00:00:00Z",
                }
            ],
        },
    )
    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "releases/a.json: /releases/a/: public at 2030-01-01T00:00:00+00:00 "
        f"(2030-01-01 00:00 UTC, {result.output.split('UTC, ')[1].split(')')[0]})",
        "1 release(s) scheduled",
    ]


def test_nothing_scheduled(aws: Any) -> None:
    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert (result.exit_code, result.output) == (0, "no releases are scheduled\n")


def test_without_a_bucket_it_says_which_setting_is_missing(
    env: dict[str, str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("NEWSROOM_SOURCE_BUCKET")
    result = CliRunner().invoke(main, ["schedule"])
    assert result.exit_code == 2
    assert "--bucket (or NEWSROOM_SOURCE_BUCKET) is required" in result.output


def test_lines_say_how_soon() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    items = [
        ScheduledRelease("releases/a.json", "a", datetime(2030, 1, 3, 15, 30, tzinfo=UTC)),
        ScheduledRelease("releases/b.json", "b", datetime(2030, 1, 1, 11, 0, tzinfo=UTC)),
    ]
    lines = schedule_lines(items, now)
    assert lines[0].endswith("(2030-01-03 15:30 UTC, in 2d 3h 30m)")
    assert lines[1].endswith("due now; publishes on the next run (every 5 minutes))")


def test_refresh_renders_each_preview_again_with_new_links(app_module: Any, aws: Any) -> None:
    import time_machine
    from support import make_release, queue_event, s3_event

    aws.put_object(Bucket=SOURCE, Key="media/shore.jpg", Body=b"\xff\xd8\xff\xe0 shore")
    doc = make_release(
        slug="shore-report",
        embargo_until="2030-03-01T09:00:00Z",
        image={"url": "/media/shore.jpg", "alt": "A shore"},
    )
    put_json(aws, "releases/shore.json", doc)
    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False) as clock:
        app_module.sync_release(queue_event(s3_event("releases/shore.json")), None)
        key = "previews/shore/index.html"
        before = aws.get_object(Bucket=SOURCE, Key=key)["Body"].read()
        assert b"X-Amz-Date=20300101T000000Z" in before
        clock.move_to(datetime(2030, 1, 6, tzinfo=UTC))
        result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE, "--refresh"])
    assert result.exit_code == 0, result.output
    after = aws.get_object(Bucket=SOURCE, Key=key)["Body"].read()
    assert b"X-Amz-Date=20300101" not in after
    assert b"X-Amz-Date=20300106T000000Z" in after  # the photo's link, signed again
    assert b"Preview \xe2\x80\x94 not public until" in after and doc["title"].encode() in after
    assert "  preview: https://" in result.output


@pytest.mark.parametrize(
    "body", [b'{"releases": [', b"[]", b'{"releases": "abc"}', b'{"releases": ["abc"]}']
)
def test_an_unreadable_schedule_is_reported_not_shown_as_empty(aws: Any, body: bytes) -> None:
    """A truncated or hand-edited schedule stops the embargo runs; the command
    says so and names the fix instead of "no releases are scheduled"."""
    aws.put_object(Bucket=SOURCE, Key="receipts/schedule.json", Body=body)
    result = CliRunner().invoke(main, ["schedule", "--bucket", SOURCE])
    assert result.exit_code == 1, result.output
    assert "no releases are scheduled" not in result.output
    assert "receipts/schedule.json" in result.output and "newsroom rebuild" in result.output
