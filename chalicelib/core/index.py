"""The index: every public release, newest first, as ``index.json`` carries it.

``Index`` is an immutable value; ``with_entry`` and ``without`` return new ones,
so the publisher can diff the index it read against the index it will write.
``withdrawing`` lists releases taken out of the listings whose page is still
being deleted, so a retry after a crash knows which page to remove.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..keys import release_path
from ..storage import md5_etag
from .model import KIND_LABELS, Release
from .text import topic_slug


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
    # fingerprint of the source file's bytes: an unchanged source under an
    # unchanged theme renders to the same page, so a build can skip it
    source_digest: str = ""
    # the entry's serialised form, computed once: a warm publisher reuses the
    # entries of the index it last saw, so only changed entries are re-encoded
    _json_text: str | None = field(default=None, compare=False, repr=False)

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
    def modified(self) -> datetime:
        return self.updated_at or self.published_at

    @property
    def topic_slugs(self) -> tuple[str, ...]:
        return tuple(topic_slug(t) for t in self.topics)

    def to_json(self) -> dict[str, Any]:
        return {
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
            "source_key": self.source_key,
            "revision": self.revision,
            "source_digest": self.source_digest,
        }

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
class Index:
    entries: tuple[Entry, ...] = ()
    withdrawing: tuple[Withdrawal, ...] = field(default=())
    theme: str = ""

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

    def to_bytes(self) -> bytes:
        # the same bytes as json.dumps of the whole document, assembled from the
        # entries' cached encodings (at 10,000 releases this is most of the cost)
        head = json.dumps(
            {"version": 1, "theme": self.theme}, ensure_ascii=False, separators=(",", ":")
        )
        parts = [head[:-1], ',"releases":[', ",".join(e.json_text for e in self.entries), "]"]
        if self.withdrawing:
            withdrawing = [{"slug": w.slug, "source_key": w.source_key} for w in self.withdrawing]
            parts += [
                ',"withdrawing":',
                json.dumps(withdrawing, ensure_ascii=False, separators=(",", ":")),
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
        return cls(entries, withdrawing, doc.get("theme", ""))
