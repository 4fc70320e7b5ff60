"""Entry maps: which release file each CMS entry (and language version) wrote.

``cms/<cms>/<entry id>.json``, or ``cms/<cms>/<entry id>/<locale>.json`` for an
entry in several languages, = ``{"cms", "entry", "slug", "source_key",
"locale", "published_at"}`` (``cms/`` is a prefix ``sync_release`` never sees).
A map names the files its entry may overwrite or delete, keeps the entry's first
publication date, and is found under an older name after a CMS renames its
entries (a map from before languages; Strapi 4's ``id`` before Strapi 5's
``documentId``; the map holding the slug). Every write of a map is conditional
on the version read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import keys
from ..core.model import SLUG_MAX, SLUG_RE
from ..storage import Storage, StoredObject, put_if_unchanged
from .mapping import Change

SOURCE_CACHE = "no-cache"
MAP_PREFIX = keys.CMS_PREFIX  # entry maps; sync_release never sees them


def map_key(entry: str, locale: str = "") -> str:
    """``contentful/<id>`` -> ``cms/contentful/<id>.json``; with a locale
    ``cms/contentful/<id>/<locale>.json``."""
    return f"{MAP_PREFIX}{entry}/{locale}.json" if locale else f"{MAP_PREFIX}{entry}.json"


def release_key(slug: str) -> str:
    return keys.source_key(slug)


class BrokenMap(Exception):
    """An entry map that is not what this service writes (edited by hand?)."""


class MapChanged(Exception):
    """The entry map changed under a concurrent request for the same entry."""


@dataclass
class Found:
    """An entry map read: where it is and what it says (``None``: no map)."""

    key: str
    obj: StoredObject | None
    doc: dict[str, Any] | None


class EntryMaps:
    """The entry maps in the source bucket."""

    def __init__(self, source: Storage) -> None:
        self.source = source

    def adopt(self, change: Change, slug: str) -> Found:
        """A map of this entry under an older name, to move to its new name: the
        map from before languages, or, for an entry down to one language, the map
        of a language version (either only if it holds the same slug), or one
        under an alias (Strapi 4's ``id``)."""
        own_key = map_key(change.entry, change.locale)
        candidates: list[tuple[str, bool]] = []  # (map key, only if it holds the same slug)
        if change.locale:
            candidates.append((map_key(change.entry), True))
        else:  # its other language versions removed in the CMS: this one stays at its address
            versions = self.source.list(f"{MAP_PREFIX}{change.entry}/")
            candidates += [(k, True) for k in versions if k.endswith(".json")]
        for alias in change.aliases:
            candidates += [(map_key(alias, change.locale), False), (map_key(alias), False)]
        for cand_key, same_slug in dict.fromkeys(candidates):
            if cand_key == own_key:
                continue
            found = self.read(cand_key)
            if found.doc and (not same_slug or found.doc["slug"] == slug):
                return found
        return Found(own_key, None, None)

    def holding(self, change: Change, key: str) -> Found | None:
        """For a CMS that renames its entries (``aliases``): the map in the same
        folder (of this language version, or from before languages) whose entry
        holds ``key``."""
        if not change.aliases:
            return None
        prefix = f"{MAP_PREFIX}{change.entry.rsplit('/', 1)[0]}/"
        own = map_key(change.entry, change.locale)
        for cand in self.source.list(prefix):
            name, _, locale = cand[len(prefix) : -len(".json")].partition("/")
            if cand == own or not cand.endswith(".json") or "/" in locale:
                continue
            if locale and locale != change.locale:
                continue  # another language version of that entry
            found = self.read(cand)
            if found.doc and key in owned(found.doc):
                return found
        return None

    def sibling_holds(self, change: Change, key: str) -> bool:
        prefix = f"{MAP_PREFIX}{change.entry}/"
        for cand in [map_key(change.entry), *self.source.list(prefix)]:
            if cand == map_key(change.entry, change.locale) or not cand.endswith(".json"):
                continue
            found = self.read(cand)
            if found.doc and key in owned(found.doc):
                return True
        return False

    def read(self, key: str) -> Found:
        found = self.source.get(key)
        return Found(key, found, _parse(found, key))

    def put(
        self,
        change: Change,
        slug: str,
        key: str,
        published_at: Any,
        retired: list[str],
        found: StoredObject | None,
    ) -> StoredObject:
        """Write the entry map unless unchanged, conditional on the version read."""
        cms, _, ref = change.entry.partition("/")
        doc: dict[str, Any] = {"cms": cms, "entry": ref, "slug": slug, "source_key": key}
        if change.locale:
            doc["locale"] = change.locale
        if isinstance(published_at, str):
            doc["published_at"] = published_at
        if retired:
            doc["retired"] = retired
        body = (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
        mkey = map_key(change.entry, change.locale)
        if found is not None and found.body == body:
            return found
        etag = put_if_unchanged(
            self.source,
            mkey,
            body,
            found.etag if found else None,
            content_type="application/json",
            cache_control=SOURCE_CACHE,
        )
        if etag is None:
            raise MapChanged(
                f"{change.entry} changed during this request (another webhook for the same "
                "entry); retry"
            )
        return StoredObject(mkey, body, etag)


def _valid_release_key(key: Any) -> bool:
    if not isinstance(key, str) or not keys.is_release_key(key):
        return False
    slug = keys.release_name(key)
    return len(slug) <= SLUG_MAX and bool(SLUG_RE.match(slug))


def _parse(found: StoredObject | None, key: str) -> dict[str, Any] | None:
    """The entry map, checked: it names the files this service may delete."""
    if found is None:
        return None
    try:
        doc = json.loads(found.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("slug"), str)
        or doc.get("source_key") != release_key(doc["slug"])
        or not _valid_release_key(doc["source_key"])
        or not isinstance(doc.get("retired", []), list)
        or not all(_valid_release_key(k) for k in doc.get("retired", []))
    ):
        raise BrokenMap(f"{key} is not a valid entry map; fix or delete it (docs/cms.md)")
    return doc


def owned(doc: dict[str, Any] | None) -> list[str]:
    """The release files an entry map says its entry wrote."""
    if doc is None:
        return []
    return [doc["source_key"], *doc.get("retired", [])]
