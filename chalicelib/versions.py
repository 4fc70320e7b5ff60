"""Language versions on the Lambda path: one small private record per translation key.

A release page links to every live release sharing its ``translation_key``
(contract section 12). A full build finds them among all its releases; a
publish must not scan the archive for them, so the publisher keeps, per
translation key, the record ``state/versions/<key>.json`` in the source
bucket: the live members (source key, slug, language, date, URL) and, for
each, which versions its public page links to now (``rendered``, a digest).

- Rendering a page (or a preview) reads the record of its key (one GET,
  once per batch) and adds the release itself: ``lookup``.
- After each commit ``reconcile`` brings the records of the keys the batch
  touched in line with the committed index (members read from it, so a
  record heals whatever an earlier crash left), writes them conditionally,
  and returns the members whose page links to other versions than the
  record now lists: the publisher converges those sources again, which
  renders them with the new versions. So a version appearing, changing
  (title aside, what the links show: slug, language) or going re-renders
  its siblings, and a crash anywhere is finished by the retry of the batch.

The cost is bounded by the number of versions of one release, never by the
archive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from .core.i18n import Version, language_versions, linked_versions
from .errors import StorageError
from .keys import PRIVATE_CACHE, VERSIONS_PREFIX, versions_key
from .storage import Storage, put_if_unchanged


def links_digest(slug: str, versions: tuple[Version, ...]) -> str:
    """What the page of ``slug`` links to, as a short digest ("" for nothing)."""
    linked = linked_versions(slug, versions)
    if not linked:
        return ""
    text = json.dumps([[v.language, v.slug, v.url] for v in linked], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Member:
    """One live version, as the record keeps it."""

    source_key: str
    slug: str
    language: str
    published_at: datetime
    url: str
    rendered: str = "?"  # links_digest of the live page ("?": not known)

    def item(self, translation_key: str) -> Any:
        """What ``language_versions`` reads."""
        return SimpleNamespace(
            translation_key=translation_key,
            slug=self.slug,
            language=self.language,
            published_at=self.published_at,
            url=self.url,
        )

    def to_json(self) -> dict[str, str]:
        return {
            "source_key": self.source_key,
            "slug": self.slug,
            "language": self.language,
            "published_at": self.published_at.isoformat(),
            "url": self.url,
            "rendered": self.rendered,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Member:
        return cls(
            source_key=data["source_key"],
            slug=data["slug"],
            language=data["language"],
            published_at=datetime.fromisoformat(data["published_at"]),
            url=data["url"],
            rendered=data.get("rendered", "?"),
        )


def record_bytes(translation_key: str, members: Iterable[Member]) -> bytes:
    doc = {
        "translation_key": translation_key,
        "members": [m.to_json() for m in sorted(members, key=lambda m: m.source_key)],
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


def record_members(body: bytes | None) -> dict[str, Member]:
    """The members of a record; an unreadable one counts as empty (the next
    reconcile rewrites it from the index) rather than blocking its releases."""
    if body is None:
        return {}
    try:
        members = json.loads(body).get("members", [])
        return {m["source_key"]: Member.from_json(m) for m in members}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


class VersionRecords:
    """The publisher's view of the records: ``begin`` a batch, ``lookup`` while
    rendering, ``rendered`` after each page, ``reconcile`` after the commit."""

    def __init__(
        self,
        source: Storage,
        site_url: str,
        *,
        max_attempts: int = 25,
        on_conflict: Callable[[int], None] = lambda _attempt: None,
    ) -> None:
        self.source = source
        self.site_url = site_url
        self.max_attempts = max_attempts
        self.on_conflict = on_conflict
        self._records: dict[str, dict[str, Member]] = {}
        # source key -> (revision, links digest) of the page this batch rendered
        self._rendered: dict[str, tuple[str, str]] = {}

    def begin(self) -> None:
        """A new batch: records are read afresh."""
        self._records.clear()
        self._rendered.clear()

    def _members(self, translation_key: str) -> dict[str, Member]:
        if translation_key not in self._records:
            obj = self.source.get(versions_key(translation_key))
            self._records[translation_key] = record_members(obj.body if obj else None)
        return self._records[translation_key]

    def lookup(self, source_key: str, release: Any) -> tuple[Version, ...]:
        """The versions of ``release`` (from ``source_key``) as they are once it
        is live: the record's other members and itself."""
        key = release.translation_key
        if not key:
            return ()
        items = [m.item(key) for m in self._members(key).values() if m.source_key != source_key]
        items.append(release)
        return language_versions(key, items, self.site_url)

    def rendered(
        self, source_key: str, slug: str, revision: str, versions: tuple[Version, ...]
    ) -> None:
        """The page of ``source_key`` with ``revision`` links to ``versions``."""
        self._rendered[source_key] = (revision, links_digest(slug, versions))

    def reconcile(
        self,
        batch: Iterable[str],
        keys: Iterable[str],
        live: Callable[[str], Any],
    ) -> list[str]:
        """Bring the records of translation ``keys`` in line with the committed
        index (``live(source_key)``: the live entry or ``None``) for the batch's
        sources and every member they list. Returns the source keys whose page
        must be rendered again: it links to other versions than the record now
        lists (a batch source is returned only if this batch rendered its live
        page, so a source that cannot be rendered is never tried forever)."""
        batch = set(batch)
        stale: set[str] = set()
        for key in sorted(set(keys)):
            stale |= self._reconcile_one(key, batch, live)
        return sorted(stale)

    def _reconcile_one(self, key: str, batch: set[str], live: Callable[[str], Any]) -> set[str]:
        for attempt in range(1, self.max_attempts + 1):
            obj = self.source.get(versions_key(key))
            before = record_members(obj.body if obj else None)
            members: dict[str, Member] = {}
            for source_key in sorted(set(before) | batch):
                entry = live(source_key)
                if entry is None or getattr(entry, "translation_key", None) != key:
                    continue
                rendered = before[source_key].rendered if source_key in before else "?"
                mine = self._rendered.get(source_key)
                if mine is not None and mine[0] == entry.revision:
                    rendered = mine[1]  # this batch wrote (or kept the bytes of) that page
                members[source_key] = Member(
                    source_key, entry.slug, entry.language, entry.published_at, entry.url, rendered
                )
            versions = language_versions(
                key, [m.item(key) for m in members.values()], self.site_url
            )
            stale = {
                k
                for k, m in members.items()
                if m.rendered != links_digest(m.slug, versions)
                and (k not in batch or k in self._rendered)
            }
            if members == before:
                self._records[key] = members
                return stale
            committed = put_if_unchanged(
                self.source,
                versions_key(key),
                record_bytes(key, members.values()),
                obj.etag if obj else None,
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )
            if committed is not None:
                self._records[key] = members
                return stale
            self.on_conflict(attempt)
        raise StorageError(f"the versions of {key!r} kept changing", versions_key(key))


def write_records(source: Storage, entries: Iterable[Any], site_url: str) -> int:
    """Every record from a whole index whose release pages were all rendered
    with the versions it implies (``newsroom rebuild``): each member
    ``rendered`` as linked; records of keys no longer live emptied. Each write
    is conditional on the record read: one a publish changed meanwhile is left
    as that publish wrote it. Returns how many records were written."""
    groups: dict[str, dict[str, Member]] = {}
    for e in entries:
        if e.translation_key:
            groups.setdefault(e.translation_key, {})[e.source_key] = Member(
                e.source_key, e.slug, e.language, e.published_at, e.url
            )
    listed = {k[len(VERSIONS_PREFIX) : -len(".json")] for k in source.list(VERSIONS_PREFIX)}
    written = 0
    for key in sorted(set(groups) | listed):
        members = groups.get(key, {})
        versions = language_versions(key, [m.item(key) for m in members.values()], site_url)
        done = {k: replace(m, rendered=links_digest(m.slug, versions)) for k, m in members.items()}
        obj = source.get(versions_key(key))
        if obj is None and not done:
            continue
        if obj is not None and record_members(obj.body) == done:
            continue
        committed = put_if_unchanged(
            source,
            versions_key(key),
            record_bytes(key, done.values()),
            obj.etag if obj else None,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        written += committed is not None
    return written
