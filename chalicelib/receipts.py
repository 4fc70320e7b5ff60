"""Receipts: what happened to each uploaded file, written beside the sources.

Staff read ``receipts/releases/<name>.json`` instead of logs. The schedule of
embargoed releases lives at ``receipts/schedule.json`` — private, in the source
bucket, because nothing embargoed may reach the public bucket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import FieldError, ScheduleUnreadable, StorageError
from .keys import RELEASES_PREFIX, SCHEDULE_KEY
from .storage import Storage, put_if_unchanged

RECEIPT_CACHE = "no-store"


def misnamed_release(key: str) -> str | None:
    """What to tell the author of ``releases/<name>.JSON`` (``.Json``…): S3's
    event filter and the publisher take only ``.json``, so that file would
    otherwise wait forever for a receipt. ``None`` for any other key."""
    name = key.removeprefix(RELEASES_PREFIX)
    if key == name or not name.lower().endswith(".json") or name.endswith(".json"):
        return None
    fixed = name[: -len(".json")] + ".json"
    return (
        f"is not published: a release file's name must end in .json (lower case); "
        f"rename it to {fixed}"
    )


@dataclass
class Receipt:
    source_key: str
    status: str  # published | scheduled | rejected | unpublished
    slug: str | None = None
    url: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    processed_at: datetime | None = None
    embargo_until: datetime | None = None
    message: str = ""
    changed: list[str] = field(default_factory=list)
    publish_at: datetime | None = None  # while scheduled: the publication instant
    preview_url: str | None = None  # while scheduled: the private preview

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "source_key": self.source_key,
            "status": self.status,
            "slug": self.slug,
            "url": self.url,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
            "processed_at": self.processed_at.isoformat() if self.processed_at else None,
            "message": self.message,
            "changed": self.changed,
        }
        if self.embargo_until is not None:
            doc["embargo_until"] = self.embargo_until.isoformat()
        if self.publish_at is not None:
            doc["publish_at"] = self.publish_at.isoformat()
            doc["preview_url"] = self.preview_url
        return doc

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n").encode()


@dataclass(frozen=True)
class Scheduled:
    source_key: str
    slug: str
    embargo_until: datetime


def schedule_from_bytes(raw: bytes | None) -> list[Scheduled]:
    """The entries of ``receipts/schedule.json``; ``ScheduleUnreadable`` when
    it is not one (it is private state, but a person or a tool may edit it)."""
    if not raw:
        return []
    try:
        items = [
            Scheduled(s["source_key"], s["slug"], datetime.fromisoformat(s["embargo_until"]))
            for s in json.loads(raw).get("releases", [])
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ScheduleUnreadable(SCHEDULE_KEY, f"{type(exc).__name__}: {exc}") from exc
    if any(s.embargo_until.tzinfo is None for s in items):
        raise ScheduleUnreadable(SCHEDULE_KEY, "an embargo_until has no UTC offset")
    return items


def schedule_to_bytes(items: list[Scheduled]) -> bytes:
    items = sorted(items, key=lambda s: (s.embargo_until.timestamp(), s.source_key))
    doc = {
        "version": 1,
        "releases": [
            {
                "source_key": s.source_key,
                "slug": s.slug,
                "embargo_until": s.embargo_until.isoformat(),
            }
            for s in items
        ],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def update_schedule(
    storage: Storage,
    edit: Callable[[list[Scheduled]], list[Scheduled] | None],
    *,
    attempts: int,
    on_conflict: Callable[[int], None] = lambda attempt: None,
    replace_unreadable: bool = False,
) -> None:
    """Read-modify-write of the schedule, conditional on the ETag read, so
    overlapping publishes and rebuilds never drop each other's entries.
    ``edit`` maps the current entries to the wanted ones (``None``: leave as
    is); ``on_conflict(attempt)`` runs after each lost race.
    ``replace_unreadable``: a schedule that is not one is taken as empty and
    written over (a rebuild, which has read every source, knows it all);
    otherwise it raises ``ScheduleUnreadable``."""
    for attempt in range(1, attempts + 1):
        current = storage.get(SCHEDULE_KEY)
        unreadable = False
        try:
            items = schedule_from_bytes(current.body if current else None)
        except ScheduleUnreadable:
            if not replace_unreadable:
                raise
            items, unreadable = [], True
        updated = edit(items)
        if updated is None or (
            not unreadable and sorted(updated, key=repr) == sorted(items, key=repr)
        ):
            return
        written = put_if_unchanged(
            storage,
            SCHEDULE_KEY,
            schedule_to_bytes(updated),
            current.etag if current else None,
            content_type="application/json",
            cache_control=RECEIPT_CACHE,
        )
        if written is not None:
            return
        on_conflict(attempt)
    raise StorageError("could not update the embargo schedule", SCHEDULE_KEY)
