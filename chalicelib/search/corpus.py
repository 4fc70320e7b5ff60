"""The search corpus: one JSON file of search records per month, in the source bucket.

``search/<yyyy>-<mm>.json`` holds ``{"version": 1, "month", "records": [...]}``,
the records of that month's releases sorted by slug. It is private (the source
bucket), never public. The publisher tells ``SearchCorpus`` what each commit
made public or took down (``listeners.Commit``); the listener rewrites only the
months those releases belong to, so a publish reads and writes one or two small
files however large the archive. Each month is a read-modify-write with a
conditional put, repeated on a lost race, and applying the same commit twice
gives the same file (delivery is at least once).

The corpus may hold more than the public site: a release whose date moved to
another month leaves its old record behind, and a commit whose listener has
not run yet is missing. ``update_search`` therefore indexes a record only when
the public month file lists its slug, so the index never holds anything the
site does not show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import StorageError
from ..keys import PRIVATE_CACHE, SEARCH_PREFIX, search_corpus_key
from ..listeners import Commit
from ..storage import Storage, put_if_unchanged
from .records import month_of, record

CORPUS_PREFIX = SEARCH_PREFIX
_MONTH_KEY = re.compile(r"^search/(\d{4}-\d{2})\.json$")
CONTENT_TYPE = "application/json"
CACHE_CONTROL = PRIVATE_CACHE
ATTEMPTS = 10


corpus_key = search_corpus_key


def month_of_key(key: str) -> str | None:
    m = _MONTH_KEY.match(key)
    return m.group(1) if m else None


@dataclass
class _MonthChange:
    upserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    removals: set[str] = field(default_factory=set)


def parse_month(raw: bytes | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    doc = json.loads(raw)
    return list(doc.get("records", []))


def month_bytes(month: str, records: Iterable[dict[str, Any]]) -> bytes:
    ordered = sorted(records, key=lambda r: r["slug"])
    return _month_file(month, (record_text(r) for r in ordered))


def record_text(record: dict[str, Any]) -> str:
    """One record as ``month_bytes`` writes it."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def month_bytes_of_texts(month: str, texts: dict[str, str]) -> bytes:
    """``month_bytes`` of the records whose texts (``record_text``) are
    ``texts`` by slug: the same bytes, without encoding again the records
    that did not change."""
    return _month_file(month, (texts[slug] for slug in sorted(texts)))


def _month_file(month: str, record_texts: Iterable[str]) -> bytes:
    """A month file (the JSON of ``{"month", "records", "version": 1}``, keys
    sorted, no spaces) around its records' texts, in order."""
    head = json.dumps(month, ensure_ascii=False)
    return f'{{"month":{head},"records":[{",".join(record_texts)}],"version":1}}'.encode()


class SearchCorpus:
    """The ``CommitListener`` that keeps the search corpus (see the module doc)."""

    KEPT_MONTHS = 2  # months whose records this instance keeps encoded

    def __init__(self, storage: Storage, attempts: int = ATTEMPTS) -> None:
        self.storage = storage
        self.attempts = attempts
        # month -> (the ETag of its file as this instance last wrote it, the
        # records' texts by slug): the next publish into that month (nearly
        # always the same one) neither parses nor encodes the file again
        # when the file is still that version
        self._kept: dict[str, tuple[str, dict[str, str]]] = {}

    def on_commit(self, commit: Commit) -> None:
        changes: dict[str, _MonthChange] = {}
        for w in commit.withdrawn:
            changes.setdefault(w.month, _MonthChange()).removals.add(w.slug)
        for p in commit.published:
            summary = (p.entry or {}).get("summary") or p.release.summary or ""
            rec = record(p.release, summary)
            change = changes.setdefault(month_of(rec), _MonthChange())
            change.upserts[rec["slug"]] = rec  # public after the commit: wins over a removal
        for month in sorted(changes):
            self._edit(month, changes[month])

    def _edit(self, month: str, change: _MonthChange) -> None:
        key = corpus_key(month)
        for _ in range(self.attempts):
            current = self.storage.get(key)
            texts = self._texts(month, current)
            for slug in change.removals:
                texts.pop(slug, None)
            texts.update((slug, record_text(r)) for slug, r in change.upserts.items())
            body = month_bytes_of_texts(month, texts)
            if current is not None and current.body == body:
                self._keep(month, current.etag, texts)
                return
            if not texts and current is None:
                return
            etag = current.etag if current is not None else None
            written = put_if_unchanged(
                self.storage,
                key,
                body,
                etag,
                content_type=CONTENT_TYPE,
                cache_control=CACHE_CONTROL,
            )
            if written:
                self._keep(month, written, texts)
                return
        raise StorageError(f"could not update the search corpus of {month}", key)

    def _texts(self, month: str, current: Any) -> dict[str, str]:
        """The records of the month file just read, as texts by slug."""
        if current is None:
            return {}
        kept = self._kept.get(month)
        if kept is not None and kept[0] == current.etag:
            return dict(kept[1])
        return {r["slug"]: record_text(r) for r in parse_month(current.body)}

    def _keep(self, month: str, etag: str, texts: dict[str, str]) -> None:
        self._kept.pop(month, None)
        self._kept[month] = (etag, texts)
        while len(self._kept) > self.KEPT_MONTHS:
            self._kept.pop(next(iter(self._kept)))

    # Whole-corpus operations (backfill after a rebuild, the demo, update_search) ----------
    def replace_all(self, records: Iterable[dict[str, Any]]) -> list[str]:
        """Write the corpus of exactly ``records`` (every public release): each
        month file whose content differs is rewritten, months with no release
        left are deleted. Returns the keys written or deleted."""
        by_month: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            by_month.setdefault(month_of(rec), []).append(rec)
        touched = []
        existing = {m for k in self.storage.list(CORPUS_PREFIX) if (m := month_of_key(k))}
        for month in sorted(by_month):
            key = corpus_key(month)
            body = month_bytes(month, by_month[month])
            current = self.storage.get(key)
            if current is None or current.body != body:
                self.storage.put(key, body, content_type=CONTENT_TYPE, cache_control=CACHE_CONTROL)
                touched.append(key)
        for month in sorted(existing - set(by_month)):
            self.storage.delete(corpus_key(month))
            touched.append(corpus_key(month))
        return touched

    def read_all(self) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for key in sorted(self.storage.list(CORPUS_PREFIX)):
            month = month_of_key(key)
            if month is None:
                continue
            obj = self.storage.get(key)
            if obj is not None:
                out[month] = parse_month(obj.body)
        return out
