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

from .errors import FieldError, StorageError
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
    if not raw:
        return []
    doc = json.loads(raw)
    return [
        Scheduled(s["source_key"], s["slug"], datetime.fromisoformat(s["embargo_until"]))
        for s in doc.get("releases", [])
    ]


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
) -> None:
    """Read-modify-write of the schedule, conditional on the ETag read, so
    overlapping publishes and rebuilds never drop each other's entries.
    ``edit`` maps the current entries to the wanted ones (``None``: leave as
    is); ``on_conflict(attempt)`` runs after each lost race."""
    for attempt in range(1, attempts + 1):
        current = storage.get(SCHEDULE_KEY)
        items = schedule_from_bytes(current.body if current else None)
        updated = edit(items)
        if updated is None or sorted(updated, key=repr) == sorted(items, key=repr):
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
