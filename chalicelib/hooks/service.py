"""HookService: one CMS webhook request -> (HTTP status, JSON body).

The order of checks is fixed and every rejection happens before anything is written: unknown CMS
(404), size (413), secret and signature (401), JSON and release validation (422), order and
replay (409, ``order.py``). One exception: in a request carrying several language versions, a
version whose slug another file holds is refused on its own (409 with a result per version)
while the others are written; the request stays unfinished, so the same request sent again once
the slug is free writes what is missing. Every route writes a valid release to
``releases/<slug>.json`` (or deletes it); publishing itself then goes through ``sync_release``
like any upload. What is written is re-read with ``model.parse_release`` (the function
``sync_release`` uses) first, so the webhook can never accept a file the publisher would reject
for its form.

CMS entries also keep a small private map per entry and language version (``entries.py``), so
that an unpublish finds the file by entry id alone, a slug changed in the CMS deletes the old
file, an entry never overwrites a release file it did not write (a new slug is written with
``If-None-Match: *``; a file already there answers 409, unless another language version of the
same entry holds it: then this version takes ``<slug>-<locale>``), a re-publish keeps the first
publication date and sets ``updated_at``, and an entry renamed by its CMS keeps its release.

Write order for a publish, each step safe to repeat when the CMS retries: release file, map
(listing the old file under ``retired``), delete the retired files and any map it replaces, map
without ``retired``. If the run dies after the release file and before the map, the retry finds
its own file: the ``If-None-Match`` write fails, but an ``If-Match`` on the MD5 of the very
same bytes succeeds (S3's ETag of a plain PUT), which no other writer's file can match unless it
is byte-identical. An unpublish deletes the files first and the map last.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .. import keys
from ..core.model import MAX_BYTES, parse_release, release_from_obj
from ..errors import FieldError, InvalidRelease
from ..settings import Settings
from ..storage import Storage, StoredObject, md5_etag
from . import cms as registry
from . import mapping, order, verify
from .base import Request
from .entries import (
    MAP_PREFIX,
    SOURCE_CACHE,
    BrokenMap,
    EntryMaps,
    Found,
    MapChanged,
    map_key,
    owned,
    release_key,
)
from .payload import decode as decode_body

log = logging.getLogger("newsroom.hooks")


class SlugTaken(Exception):
    def __init__(self, key: str, slug: str) -> None:
        super().__init__(key)
        self.key = key
        self.slug = slug


class HookService:
    claim: order.Claim  # set on each request's own copy (``_handle``)

    def __init__(
        self,
        source: Storage,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.maps = EntryMaps(source)
        self.settings = settings
        self.clock = clock
        self.field_maps = mapping.parse_field_maps(
            settings.cms_field_map,
            {c.name: c.field_defaults for c in registry.registry().values() if c.mapped},
            settings.timezone,
        )

    # ---------------------------------------------------------------- entry
    def handle(
        self,
        cms: str,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        method: str = "POST",
        paths: Iterable[str] = (),
    ) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        status, body = self._handle(cms, headers, raw_body, method, list(paths))
        log.info(
            "webhook",
            extra={
                "cms": cms,
                "status": status,
                "outcome": body.get("status") or body.get("error") or "rejected",
                "key": body.get("key"),
                # where, not what: a message may quote a value (an e-mail address)
                "errors": [e.get("loc") for e in body.get("errors", [])],
                "bytes": len(raw_body),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return status, body

    def _handle(
        self, name: str, headers: Mapping[str, str], raw: bytes, method: str, paths: list[str]
    ) -> tuple[int, dict[str, Any]]:
        cms = registry.get(name)
        if cms is None:
            return 404, {"error": f"no webhook for {name!r}"}
        if len(raw) > MAX_BYTES:
            return 413, {"error": f"body is {len(raw):,} bytes; at most 1 MiB (1,048,576) allowed"}
        request = Request(verify.normalize_headers(headers), raw, method, paths)
        try:
            signed = cms.verify(request, cms.secret(self.settings), self.clock())
        except verify.VerificationError as exc:
            return 401, {"error": str(exc)}
        try:
            changes = cms.changes(decode_body(raw), request, self.field_maps.get(name))
            acting = [c for c in changes if c.action != "ignore"]
            if not acting:
                reason = changes[0].reason if changes else "nothing to do"
                return 202, {"status": "ignored", "reason": reason, "key": None}
            prepared = [
                (c, *self._validated(c)) if c.action == "publish" else (c, "", "", b"")
                for c in acting
            ]
            subjects = list(dict.fromkeys(c.subject for c in acting if c.subject))
            for subject in subjects:
                order.claim(self.source, subject, signed)
            # its own copy (the service may serve several threads), whose writes
            # of release files give way to a newer request for the same entry
            run = copy.copy(self)
            run.claim = order.Claim(self.source, subjects, signed)
            if len(prepared) == 1:
                results = [run._apply(*prepared[0])]
            else:
                results, refused = run._apply_versions(prepared)
                if refused is not None:
                    # not finished: the same request, sent again once the slug
                    # is free, writes the versions still missing
                    return 409, {**_taken(refused), "releases": results}
            for subject in subjects:
                order.finish(self.source, subject, signed)
        except InvalidRelease as exc:
            return 422, {"errors": [e.as_dict() for e in exc.errors]}
        except order.Stale as exc:
            return 409, {"error": str(exc)}
        except SlugTaken as exc:
            return 409, _taken(exc)
        except BrokenMap as exc:
            return 500, {"error": str(exc)}
        except (MapChanged, order.Busy) as exc:
            return 503, {"error": str(exc)}  # the CMS retries
        if len(results) == 1:
            return 202, results[0]
        first = dict(results[0])
        first["releases"] = results
        return 202, first

    def _apply_versions(
        self, prepared: list[tuple[mapping.Change, str, str, bytes]]
    ) -> tuple[list[dict[str, Any]], SlugTaken | None]:
        """Every language version of one request, each on its own: a version
        whose slug another file holds is refused (its result says so) and the
        others are written, so one locale never holds up another. Returns the
        results and the first refusal (``None`` when all were written)."""
        results: list[dict[str, Any]] = []
        refused: SlugTaken | None = None
        for change, key, slug, payload in prepared:
            try:
                results.append(self._apply(change, key, slug, payload))
            except SlugTaken as exc:
                refused = refused or exc
                result = {**_taken(exc), "status": "refused", "action": change.action}
                if change.locale:
                    result["locale"] = change.locale
                results.append(result)
        return results, refused

    def _apply(self, change: mapping.Change, key: str, slug: str, payload: bytes) -> dict[str, Any]:
        if change.action == "unpublish":
            if change.entry:
                return self._unpublish_entry(change)
            self.claim.delete(change.key)
            return {"status": "accepted", "action": "unpublish", "key": change.key}
        if change.entry:
            return self._publish_entry(change, key, slug, payload)
        self._put_release(key, payload)
        return {"status": "accepted", "action": "publish", "key": key, "slug": slug}

    # ------------------------------------------------------- CMS entries
    def _publish_entry(
        self, change: mapping.Change, key: str, slug: str, payload: bytes
    ) -> dict[str, Any]:
        own = self.maps.read(map_key(change.entry, change.locale))
        current = own if own.doc else self.maps.adopt(change, slug)
        original = change
        if change.locale and own.doc and own.doc.get("slug") == _suffixed(slug, change.locale):
            # this version took <slug>-<locale> while a sibling held the slug:
            # it keeps that address, whoever holds the slug now
            original = change = _with_slug(change, own.doc["slug"])
            key, slug, payload = self._validated(change)
        change, key, slug, payload = self._dated(original, current, key, slug, payload)
        try:
            etag = self._claim_file(key, payload, current.doc)
        except SlugTaken:
            held = None if own.doc else self.maps.holding(change, key)
            if held is not None:
                # the entry under an older name (a CMS upgrade), found by the slug it holds
                current = held
                change, key, slug, payload = self._dated(original, current, key, slug, payload)
            elif change.locale and self.maps.sibling_holds(change, key):
                # another language version of this entry holds the slug: <slug>-<locale>
                change = _with_slug(change, _suffixed(slug, change.locale))
                key, slug, payload = self._validated(change)
            else:
                raise
            etag = self._claim_file(key, payload, current.doc)
        old = current.doc
        retired = sorted({*owned(old)} - {key})
        published_at = change.document.get("published_at")
        try:
            self.claim.check()
            written = self.maps.put(change, slug, key, published_at, retired, own.obj)
            for old_key in retired:
                self.claim.delete(old_key)
        except (order.Superseded, MapChanged):
            if key not in owned(old):  # a file under a new slug: gone if a newer request won
                self.claim.withdraw(key, etag)
            raise
        if current.key != own.key and current.doc is not None:
            self.source.delete(current.key)  # the map this one replaces (moved)
        if retired:
            self.maps.put(change, slug, key, published_at, [], written)
        body: dict[str, Any] = {"status": "accepted", "action": "publish", "key": key, "slug": slug}
        if change.locale:
            body["locale"] = change.locale
        if retired:
            body["removed"] = retired
        return body

    def _dated(
        self, change: mapping.Change, current: Found, key: str, slug: str, payload: bytes
    ) -> tuple[mapping.Change, str, str, bytes]:
        """A re-publish keeps the first publication date and sets ``updated_at``."""
        if current.doc is None:
            return change, key, slug, payload
        first = self._first_published(current.doc)
        document = self._redate(change, first)
        if document == change.document:
            return change, key, slug, payload
        change = replace(change, document=document)
        return (change, *self._validated(change))

    def _claim_file(self, key: str, payload: bytes, old: dict[str, Any] | None) -> str:
        """Write the release file; returns its ETag."""
        if key in owned(old):
            return self._put_release(key, payload)  # the entry's own file: overwrite
        # absent, or taken: unless it is this very release from a run that died
        # before writing the map (the CMS retries with the same body)
        etag = self._put_release(
            key, payload, only_if=lambda found: found is None or found.etag == md5_etag(payload)
        )
        if etag is None:
            raise SlugTaken(key, keys.release_name(key))
        return etag

    def _first_published(self, old: dict[str, Any] | None) -> str | None:
        """The date the entry first went live: kept in its map, or (for a map
        written before the date was kept) read from the release file it holds."""
        if old is None:
            return None
        if isinstance(old.get("published_at"), str):
            return old["published_at"]
        found = self.source.get(old["source_key"])
        if found is None:
            return None
        try:
            doc = json.loads(found.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        value = doc.get("published_at") if isinstance(doc, dict) else None
        return value if isinstance(value, str) else None

    def _redate(self, change: mapping.Change, first: str | None) -> dict[str, Any]:
        """A re-publish: the first publication date stays, ``updated_at`` is this
        publish's time (unless the entry gives its own)."""
        doc = dict(change.document)
        if first:
            doc["published_at"] = first
        start = mapping.instant(doc.get("published_at"))
        now = mapping.instant(mapping.local_datetime(change.published_now, self.settings.timezone))
        if "updated_at" not in doc and start and now and now > start:
            doc["updated_at"] = mapping.local_datetime(change.published_now, self.settings.timezone)
        return doc

    def _unpublish_entry(self, change: mapping.Change) -> dict[str, Any]:
        if change.locale == "*":  # the whole entry: every language version
            found = [map_key(change.entry), *self.source.list(f"{MAP_PREFIX}{change.entry}/")]
            found += [map_key(a) for a in change.aliases]
            maps = [self.maps.read(k) for k in dict.fromkeys(found)]
        else:
            own = self.maps.read(map_key(change.entry, change.locale))
            maps = [own if own.doc else self.maps.adopt(change, change.document.get("slug", ""))]
        maps = [m for m in maps if m.doc]
        if not maps:
            return {
                "status": "ignored",
                "reason": f"no release was published from {change.entry}",
                "key": None,
            }
        for found in maps:
            for key in owned(found.doc):
                self.claim.delete(key)
            self.claim.delete(found.key, if_match=found.obj.etag if found.obj else None)
        first = maps[0].doc or {}
        body: dict[str, Any] = {
            "status": "accepted",
            "action": "unpublish",
            "key": first["source_key"],
            "slug": first["slug"],
        }
        if len(maps) > 1:
            body["keys"] = [m.doc["source_key"] for m in maps if m.doc]
        return body

    def _put_release(
        self,
        key: str,
        payload: bytes,
        *,
        only_if: Callable[[StoredObject | None], bool] | None = None,
    ) -> Any:
        return self.claim.put(
            key,
            payload,
            only_if=only_if,
            content_type="application/json",
            cache_control=SOURCE_CACHE,
        )

    # -------------------------------------------------------------- steps
    def _validated(self, change: mapping.Change) -> tuple[str, str, bytes]:
        """The source key, slug and bytes to write; ``InvalidRelease`` if invalid."""
        where = change.key or map_key(change.entry, change.locale)
        try:
            release = release_from_obj(change.document, source=where)
        except InvalidRelease as exc:
            raise InvalidRelease(
                [_name_source(e, change.sources) for e in exc.errors], where
            ) from None
        key = change.key or release_key(release.slug)
        payload = (json.dumps(change.document, ensure_ascii=False, indent=2) + "\n").encode()
        # the very check sync_release makes (size, encoding, slug from the file name)
        parse_release(payload, name=key)
        return key, release.slug, payload


def _suffixed(slug: str, locale: str) -> str:
    return f"{slug}-{locale.lower()}"


def _with_slug(change: mapping.Change, slug: str) -> mapping.Change:
    return replace(change, document={**change.document, "slug": slug})


def _taken(exc: SlugTaken) -> dict[str, Any]:
    msg = (
        f"slug {exc.slug!r} is taken: {exc.key} already exists and was not "
        "published from this entry; choose another slug, or remove that "
        "release first"
    )
    return {"error": msg, "errors": [{"loc": "slug", "msg": msg}], "key": exc.key, "slug": exc.slug}


def _name_source(error: FieldError, sources: Mapping[str, str]) -> FieldError:
    """Tell editors which CMS field to fix: ``title`` -> "... (CMS field 'headline')"."""
    head = error.loc.split(".", 1)[0]
    src = sources.get(head)
    if src and src != head:
        return FieldError(error.loc, f"{error.msg} (CMS field '{src}')")
    return error
