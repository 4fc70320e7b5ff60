"""``newsroom schedule``: what is scheduled, when it goes public, how to preview it.

Reads what the publisher keeps in the source bucket: its private schedule
(``receipts/schedule.json``, the list ``publish_due_releases`` works from) and
each scheduled file's receipt (warnings, preview). The preview link is signed
afresh with the caller's credentials: the one in the receipt was signed by the
Lambda's role, whose credentials can expire long before the link's 7 days.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from chalicelib.errors import StorageError
from chalicelib.keys import SCHEDULE_KEY, receipt_key, release_path
from chalicelib.previews import preview_url
from chalicelib.receipts import schedule_from_bytes


@dataclass(frozen=True)
class ScheduledRelease:
    source_key: str
    slug: str
    publish_at: datetime
    preview_url: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def _until(moment: datetime, now: datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "due now; publishes on the next run (every 5 minutes)"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    parts.append(f"{minutes}m")
    return "in " + " ".join(parts)


def _json(storage: Any, key: str) -> dict[str, Any]:
    found = storage.get(key)
    if found is None:
        return {}
    try:
        doc = json.loads(found.body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def read_schedule(source: Any) -> list[ScheduledRelease]:
    """Every scheduled release, soonest first, with what its receipt says. The
    schedule is read as the publisher reads it: one it cannot read (cut short,
    edited by hand) is ``ScheduleUnreadable`` here too, not an empty list."""
    found = source.get(SCHEDULE_KEY)
    items = []
    for s in schedule_from_bytes(found.body if found else None):
        receipt = _json(source, receipt_key(s.source_key))
        items.append(
            ScheduledRelease(
                s.source_key,
                s.slug,
                s.embargo_until,
                preview_url(source, s.source_key) or receipt.get("preview_url"),
                [w for w in receipt.get("warnings", []) if isinstance(w, dict)],
            )
        )
    return sorted(items, key=lambda s: (s.publish_at.timestamp(), s.source_key))


def refresh_previews(source: Any) -> None:
    """Re-render the preview of every scheduled release that still has one,
    from its current source: links signed now, valid 7 days from now."""
    from chalicelib.core.model import parse_release
    from chalicelib.core.render import Renderer
    from chalicelib.errors import InvalidRelease
    from chalicelib.previews import Previews
    from chalicelib.settings import Settings
    from chalicelib.versions import VersionRecords

    settings = Settings.from_env()
    previews = Previews(source, Renderer(settings))
    versions = VersionRecords(source, settings.site_url)
    for item in read_schedule(source):
        found = source.get(item.source_key)
        if found is None or preview_url(source, item.source_key) is None:
            continue
        try:
            release = parse_release(found.body, name=item.source_key)
        except InvalidRelease:
            continue  # its receipt says why; the publisher keeps the schedule
        previews.put(
            item.source_key,
            release,
            item.publish_at,
            versions.lookup(item.source_key, release),
        )


def schedule_lines(items: list[ScheduledRelease], now: datetime) -> list[str]:
    """An entry per release: what, when (as written, in UTC, how soon), then
    its preview link and warnings on indented lines."""
    lines = []
    for s in items:
        lines.append(
            f"{s.source_key}: {release_path(s.slug)}: public at {s.publish_at.isoformat()} "
            f"({s.publish_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {_until(s.publish_at, now)})"
        )
        if s.preview_url:
            lines.append(f"  preview: {s.preview_url}")
        lines.extend(f"  warning: {w.get('loc')}: {w.get('msg')}" for w in s.warnings)
    return lines


@click.command()
@click.option(
    "--bucket",
    default=lambda: os.environ.get("NEWSROOM_SOURCE_BUCKET", ""),
    show_default="NEWSROOM_SOURCE_BUCKET",
    help="The source bucket staff upload to.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Render each preview again, so its page and image links last another 7 days.",
)
def schedule(bucket: str, refresh: bool) -> None:
    """List scheduled releases: when each goes public, a preview link, any warning."""
    if not bucket:
        click.echo("schedule: --bucket (or NEWSROOM_SOURCE_BUCKET) is required", err=True)
        sys.exit(2)
    from chalicelib.service import s3_client
    from chalicelib.storage import S3Storage

    source = S3Storage(s3_client(), bucket)
    try:
        if refresh:
            refresh_previews(source)
        items = read_schedule(source)
    except StorageError as exc:
        click.echo(f"schedule: cannot read s3://{bucket}/{SCHEDULE_KEY}: {exc}", err=True)
        sys.exit(1)
    for line in schedule_lines(items, datetime.now(UTC)):
        click.echo(line)
    click.echo(f"{len(items)} release(s) scheduled" if items else "no releases are scheduled")
