"""``newsroom schedule``: what is embargoed, and when it goes live.

Reads the private schedule (``receipts/schedule.json`` in the source bucket),
the same object ``publish_due_releases`` works from.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

import click

from chalicelib.errors import StorageError
from chalicelib.keys import SCHEDULE_KEY, release_path
from chalicelib.receipts import Scheduled, schedule_from_bytes


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


def schedule_lines(items: list[Scheduled], now: datetime) -> list[str]:
    """One line per scheduled release, soonest first."""
    items = sorted(items, key=lambda s: (s.embargo_until.timestamp(), s.source_key))
    return [
        f"{s.source_key}: {release_path(s.slug)}: embargoed until "
        f"{s.embargo_until.isoformat()} ({s.embargo_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{_until(s.embargo_until, now)})"
        for s in items
    ]


@click.command()
@click.option(
    "--bucket",
    default=lambda: os.environ.get("NEWSROOM_SOURCE_BUCKET", ""),
    show_default="NEWSROOM_SOURCE_BUCKET",
    help="The source bucket staff upload to.",
)
def schedule(bucket: str) -> None:
    """List embargoed releases and the time each one goes live."""
    if not bucket:
        click.echo("schedule: --bucket (or NEWSROOM_SOURCE_BUCKET) is required", err=True)
        sys.exit(2)
    from chalicelib.service import s3_client
    from chalicelib.storage import S3Storage

    try:
        current = S3Storage(s3_client(), bucket).get(SCHEDULE_KEY)
    except StorageError as exc:
        click.echo(f"schedule: cannot read s3://{bucket}/{SCHEDULE_KEY}: {exc}", err=True)
        sys.exit(1)
    lines = schedule_lines(
        schedule_from_bytes(current.body if current else None), datetime.now(UTC)
    )
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} release(s) scheduled" if lines else "no releases are scheduled")
