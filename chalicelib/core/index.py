"""The index: every public release, newest first, and what the public sees of it.

``Index`` is the publisher's private state (kept in the source bucket): every
public entry with its source key, page revision and source digest, the
releases being withdrawn (taken out of the listings, page still being
deleted, so a retry after a crash knows which page to remove), and the
announcements a commit still owes its listeners. It is an immutable value;
``with_entry`` and ``without_source`` return new ones, so the publisher can
diff the index it read against the index it will write.

The public bucket gets only public fields (contract section 4): ``index.json``
version 2 holds the newest ``NEWEST`` entries and the list of months, and one
``index/<yyyy>-<mm>.json`` per month lists every release of that month.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..keys import release_path
from ..storage import md5_etag
from .model import KIND_LABELS, Release
from .references import media_refs
from .text import topic_slug

NEWEST = 100  # entries in the public index.json


@dataclass(frozen=True)
class Entry:
    slug: str
    title: str
    kind: str
    published_at: datetime
    updated_at: datetime | None
    summary: str
    url: str
    image: dict[str, str] | None
    topics: tuple[str, ...]
    language: str
    source_key: str
    revision: str
    # the release's translation_key: the build finds a release's language
    # versions among the entries, as the publisher's records do (``versions``)
    translation_key: str | None = None
    # media/<name> keys the release references (image, attachments, body):
    # private, they decide which media are public (media follow releases)
    media: tuple[str, ...] = ()
    # fingerprint of the source file's bytes: an unchanged source under an
    # unchanged theme renders to the same page, so a build can skip it
    source_digest: str = ""
    # the entry's serialised form, computed once: a warm publisher reuses the
    # entries of the index it last saw, so only changed entries are re-encoded
    _json_text: str | None = field(default=None, compare=False, repr=False)
    # derived once: the site plan asks for them about once per page that lists
    # the entry (``replace`` resets them, so they never outlive their inputs)
    _month_key: str = field(default="", init=False, compare=False, repr=False)
    _topic_slugs: tuple[str, ...] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    @property
    def json_text(self) -> str:
        if self._json_text is None:
            text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
            object.__setattr__(self, "_json_text", text)
            return text
        return self._json_text

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def path(self) -> str:
        return release_path(self.slug)

    @property
    def sort_key(self) -> tuple[float, str]:
        return (-self.published_at.timestamp(), self.slug)

    @property
    def month(self) -> tuple[int, int]:
        return (self.published_at.year, self.published_at.month)

    @property
    def month_key(self) -> str:
        """``yyyy-mm`` of ``published_at`` in the release's own offset."""
        if not self._month_key:
            key = f"{self.published_at.year:04d}-{self.published_at.month:02d}"
            object.__setattr__(self, "_month_key", key)
        return self._month_key

    def public_json(self) -> dict[str, Any]:
        """What readers see of the entry: no source file name, digest or revision."""
        doc: dict[str, Any] = {
            "slug": self.slug,
            "title": self.title,
            "kind": self.kind,
            "kind_label": self.kind_label,
            "published_at": self.published_at.isoformat(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "summary": self.summary,
            "url": self.url,
            "image": self.image,
            "topics": list(self.topics),
            "language": self.language,
        }
        if self.translation_key:
            doc["translation_key"] = self.translation_key
        return doc

    @property
    def modified(self) -> datetime:
        return self.updated_at or self.published_at

    @property
    def topic_slugs(self) -> tuple[str, ...]:
        if self._topic_slugs is None:
            object.__setattr__(self, "_topic_slugs", tuple(topic_slug(t) for t in self.topics))
        return self._topic_slugs  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """The private form: what readers see plus the facts only the publisher keeps."""
        doc = self.public_json()
        doc.update(
            source_key=self.source_key,
            revision=self.revision,
            source_digest=self.source_digest,
            translation_key=self.translation_key,
            media=list(self.media),
        )
        return doc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            slug=data["slug"],
            title=data["title"],
            kind=data["kind"],
            published_at=datetime.fromisoformat(data["published_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"])
            if data.get("updated_at")
            else None,
            summary=data["summary"],
            url=data["url"],
            image=data.get("image"),
            topics=tuple(data.get("topics", ())),
            language=data.get("language", "en"),
            source_key=data["source_key"],
            revision=data.get("revision", ""),
            source_digest=data.get("source_digest", ""),
            translation_key=data.get("translation_key"),
            media=tuple(data.get("media", ())),
        )

    @classmethod
    def from_release(
        cls,
        release: Release,
        *,
        source_key: str,
        site_url: str,
        summary: str,
        revision: str,
        source_digest: str = "",
    ) -> Entry:
        image = None
        if release.image is not None:
            image = {
                "url": release.image.url,
                "alt": release.image.alt,
                "caption": release.image.caption,
                "credit": release.image.credit,
            }
        return cls(
            slug=release.slug,
            title=release.title,
            kind=release.kind,
            published_at=release.published_at,
            updated_at=release.updated_at,
            summary=summary,
            url=f"{site_url}{release.url_path}",
            image=image,
            topics=release.topics,
            language=release.language,
            source_key=source_key,
            revision=revision,
            source_digest=source_digest,
            translation_key=release.translation_key,
            media=media_refs(release, site_url),
        )


def source_digest(raw: bytes) -> str:
    """MD5 hex of the source bytes: the ETag S3 gives a single-part upload, so a
    rebuild can tell an unchanged source from its listing without reading it."""
    return md5_etag(raw).strip('"')


@dataclass(frozen=True)
class Withdrawal:
    slug: str
    source_key: str


@dataclass(frozen=True)
class Announcement:
    """What a commit owes its listeners (recorded in the commit, drained after it)."""

    kind: str  # "published" | "withdrawn"
    source_key: str
    slug: str
    month: str
    first_time: bool = False
    # the convergence whose commit recorded it, and delivers it: its record
    # in ``state/announced/`` tells the next commit it is done
    by: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "source_key": self.source_key,
            "slug": self.slug,
            "month": self.month,
            "first_time": self.first_time,
        }
        if self.by:
            doc["by"] = self.by
        return doc


@dataclass(frozen=True)
class Index:
    entries: tuple[Entry, ...] = ()
    withdrawing: tuple[Withdrawal, ...] = field(default=())
    theme: str = ""
    announce: tuple[Announcement, ...] = ()

    @classmethod
    def build(cls, entries: list[Entry], withdrawing: tuple[Withdrawal, ...] = ()) -> Index:
        return cls(tuple(sorted(entries, key=lambda e: e.sort_key)), withdrawing)

    def with_theme(self, theme: str) -> Index:
        return replace(self, theme=theme)

    def by_source(self, source_key: str) -> Entry | None:
        return next((e for e in self.entries if e.source_key == source_key), None)

    def by_slug(self, slug: str) -> Entry | None:
        return next((e for e in self.entries if e.slug == slug), None)

    def slug_holder(self, slug: str) -> str | None:
        """Source key of whoever holds ``slug`` now (live, or being withdrawn)."""
        entry = self.by_slug(slug)
        if entry is not None:
            return entry.source_key
        w = next((w for w in self.withdrawing if w.slug == slug), None)
        return w.source_key if w else None

    def with_entry(self, entry: Entry) -> Index:
        rest = [e for e in self.entries if e.source_key != entry.source_key]
        return replace(self, entries=tuple(sorted([*rest, entry], key=lambda e: e.sort_key)))

    def without_source(self, source_key: str) -> Index:
        return replace(self, entries=tuple(e for e in self.entries if e.source_key != source_key))

    def with_withdrawal(self, w: Withdrawal) -> Index:
        keep = tuple(x for x in self.withdrawing if x != w)
        return replace(
            self, withdrawing=tuple(sorted((*keep, w), key=lambda x: (x.slug, x.source_key)))
        )

    def without_withdrawal(self, w: Withdrawal) -> Index:
        return replace(self, withdrawing=tuple(x for x in self.withdrawing if x != w))

    def media_keys(self) -> frozenset[str]:
        """Media public with this index: those at least one entry references."""
        return frozenset(k for e in self.entries for k in e.media)

    def with_announcements(self, items: tuple[Announcement, ...]) -> Index:
        keep = tuple(a for a in self.announce if a not in items)
        return replace(self, announce=keep + items)

    def without_announcements(self, items: tuple[Announcement, ...]) -> Index:
        return replace(self, announce=tuple(a for a in self.announce if a not in items))

    def to_bytes(self) -> bytes:
        # the same bytes as json.dumps of the whole document, assembled from the
        # entries' cached encodings (at 10,000 releases this is most of the cost)
        head = json.dumps(
            {"version": 2, "theme": self.theme}, ensure_ascii=False, separators=(",", ":")
        )
        parts = [head[:-1], ',"releases":[', ",".join(e.json_text for e in self.entries), "]"]
        if self.withdrawing:
            withdrawing = [{"slug": w.slug, "source_key": w.source_key} for w in self.withdrawing]
            parts += [
                ',"withdrawing":',
                json.dumps(withdrawing, ensure_ascii=False, separators=(",", ":")),
            ]
        if self.announce:
            parts += [
                ',"announce":',
                json.dumps(
                    [a.to_json() for a in self.announce], ensure_ascii=False, separators=(",", ":")
                ),
            ]
        parts.append("}\n")
        return "".join(parts).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Index:
        if not raw:
            return cls()
        doc = json.loads(raw)
        entries = tuple(Entry.from_json(e) for e in doc.get("releases", []))
        withdrawing = tuple(
            Withdrawal(w["slug"], w["source_key"]) for w in doc.get("withdrawing", [])
        )
        announce = tuple(Announcement(**a) for a in doc.get("announce", []))
        return cls(entries, withdrawing, doc.get("theme", ""), announce)


def months(entries: tuple[Entry, ...]) -> tuple[tuple[str, int], ...]:
    """``(yyyy-mm, count)`` for every month with a release, newest first."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.month_key] = counts.get(e.month_key, 0) + 1
    return tuple(sorted(counts.items(), reverse=True))


def _dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def month_url(site_url: str, month: str) -> str:
    return f"{site_url}/index/{month}.json"


def public_index(
    newest: tuple[Entry, ...], month_counts: tuple[tuple[str, int], ...], site_url: str
) -> bytes:
    """``index.json`` version 2: the newest releases and the month files."""
    return _dumps(
        {
            "version": 2,
            "releases": [e.public_json() for e in newest[:NEWEST]],
            "months": [
                {"month": m, "url": month_url(site_url, m), "count": n} for m, n in month_counts
            ],
        }
    )


def month_file(month: str, entries: tuple[Entry, ...]) -> bytes:
    """``index/<yyyy>-<mm>.json``: every public release of one month, newest first."""
    return _dumps({"version": 2, "month": month, "releases": [e.public_json() for e in entries]})
