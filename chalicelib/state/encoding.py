"""The bytes of the private state's objects and records: compact JSON, and
entries as their stored JSON text, spliced in rather than decoded and encoded
again. The publisher's commit and the rebuild write them through these, so
both write the same bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..core.index import Entry


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def entries_json(entries: Iterable[Entry]) -> str:
    return "[" + ",".join(e.json_text for e in entries) + "]"


def with_entries(doc: dict[str, Any], field: str, entries: Iterable[Entry]) -> bytes:
    """``doc`` with ``field`` last, holding ``entries``."""
    body = dumps({**doc, field: []})
    return body[: -len(b"[]}")] + entries_json(entries).encode() + b"}"


def month_body(month: str, entries: Iterable[Entry]) -> bytes:
    """A month's object: every entry of the month."""
    return with_entries({"month": month}, "entries", entries)


def slice_body(months: Iterable[tuple[str, int]], newest: Iterable[Entry]) -> bytes:
    """A topic's or kind's object: its count per month, newest month first,
    and its newest entries."""
    return with_entries({"months": [list(m) for m in months]}, "newest", newest)


def hint_body(months: list[str]) -> bytes:
    """A hint (``state/sources/…``, ``state/slugs/…``): the months that may
    hold the entry."""
    return dumps({"months": months})
