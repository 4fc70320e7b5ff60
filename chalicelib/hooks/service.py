"""HookService: one CMS webhook request -> (HTTP status, JSON body).

The order of checks is fixed and every rejection happens before anything is
written: size (413), secret and signature (401), JSON and release validation
(422). Every route writes a valid release to ``releases/<slug>.json`` (or deletes
it); publishing itself then goes through ``sync_release`` like any upload.

What is written is re-read with ``model.parse_release`` (the function
``sync_release`` uses) before the write, so the webhook can never accept a file
the publisher would reject for its form.

CMS entries (Contentful, Sanity, Strapi) also keep a small private map in the
source bucket, ``cms/<cms>/<entry id>.json`` = ``{"cms", "entry", "slug",
"source_key"}`` (``cms/`` is a prefix ``sync_release`` never sees), so that

- an unpublish or delete finds the file by entry id alone (Contentful sends no
  fields), and an unknown entry is a no-op: a slug in the payload is not trusted,
  since a file the entry never wrote may hold it;
- a slug changed in the CMS deletes the old ``releases/<old>.json``;
- an entry never overwrites a release file it did not write: a new slug is
  written with ``If-None-Match: *``, and a file already there answers 409.

Write order for a publish, each step safe to repeat when the CMS retries:
release file, map (listing the old file under ``retired``), delete the retired
files, map without ``retired``. If the run dies after the release file and before
the map, the retry finds its own file: the ``If-None-Match`` write fails, but an
``If-Match`` on the MD5 of the very same bytes succeeds (S3's ETag of a plain
PUT), which no other writer's file can match unless it is byte-identical.
An unpublish deletes the files first and the map last.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.model import MAX_BYTES, SLUG_MAX, SLUG_RE, parse_release, release_from_obj
from ..errors import FieldError, InvalidRelease, PreconditionFailed
from ..settings import Settings
from ..storage import Storage, StoredObject, md5_etag, put_if_unchanged
from . import mapping, verify

log = logging.getLogger("newsroom.hooks")

CMS_NAMES = ("generic", *mapping.CMS_NAMES)
SOURCE_CACHE = "no-cache"
MAP_PREFIX = "cms/"  # entry maps; outside releases/, so sync_release never sees them


def map_key(entry: str) -> str:
    """``contentful/<id>`` -> ``cms/contentful/<id>.json``."""
    return f"{MAP_PREFIX}{entry}.json"


def release_key(slug: str) -> str:
    return f"releases/{slug}.json"


class BrokenMap(Exception):
    """An entry map that is not what this service writes (edited by hand?)."""


class MapChanged(Exception):
    """The entry map changed under a concurrent request for the same entry."""


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRelease([FieldError("(file)", f"is not UTF-8 (byte {exc.start})")]) from None
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InvalidRelease(
            [
                FieldError(
                    "(file)",
                    f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                )
            ]
        ) from None


class HookService:
    def __init__(
        self,
        source: Storage,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.field_maps = mapping.parse_field_maps(settings.cms_field_map)

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
            json.dumps(
                {
                    "event": "webhook",
                    "cms": cms,
                    "status": status,
                    "outcome": body.get("status") or body.get("error") or "rejected",
                    "key": body.get("key"),
                    "errors": body.get("errors", []),
                    "bytes": len(raw_body),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
                ensure_ascii=False,
            )
        )
        return status, body

    def _handle(
        self, cms: str, headers: Mapping[str, str], raw: bytes, method: str, paths: list[str]
    ) -> tuple[int, dict[str, Any]]:
        if cms not in CMS_NAMES:
            return 404, {"error": f"no webhook for {cms!r}"}
        if len(raw) > MAX_BYTES:
            return 413, {"error": f"body is {len(raw):,} bytes; at most 1 MiB (1,048,576) allowed"}
        h = verify.normalize_headers(headers)
        try:
            self._verify(cms, h, raw, method, paths)
        except verify.VerificationError as exc:
            return 401, {"error": str(exc)}
        try:
            data = _decode(raw)
            change = self._change(cms, data, h)
            if change.action == "ignore":
                return 202, {"status": "ignored", "reason": change.reason, "key": None}
            if change.action == "unpublish":
                if change.entry:
                    return self._unpublish_entry(change.entry)
                self.source.delete(change.key)
                return 202, {"status": "accepted", "action": "unpublish", "key": change.key}
            key, slug, payload = self._validated(change)
            if change.entry:
                return self._publish_entry(change.entry, key, slug, payload)
        except InvalidRelease as exc:
            return 422, {"errors": [e.as_dict() for e in exc.errors]}
        except BrokenMap as exc:
            return 500, {"error": str(exc)}
        except MapChanged as exc:
            return 503, {"error": str(exc)}  # the CMS retries
        self._put_release(key, payload)
        return 202, {"status": "accepted", "action": "publish", "key": key, "slug": slug}

    # ------------------------------------------------------- CMS entries
    def _publish_entry(
        self, entry: str, key: str, slug: str, payload: bytes
    ) -> tuple[int, dict[str, Any]]:
        found = self.source.get(map_key(entry))
        old = _read_map(found, entry)
        if key in _owned(old):
            self._put_release(key, payload)  # the entry's own file: overwrite
        else:
            try:
                self._put_release(key, payload, if_none_match=True)
            except PreconditionFailed:
                # taken, unless it is this very release from a run that died before
                # writing the map (the CMS retries with the same body)
                try:
                    self._put_release(key, payload, if_match=md5_etag(payload))
                except PreconditionFailed:
                    msg = (
                        f"slug {slug!r} is taken: {key} already exists and was not "
                        "published from this entry; choose another slug, or remove that "
                        "release first"
                    )
                    return 409, {
                        "error": msg,
                        "errors": [{"loc": "slug", "msg": msg}],
                        "key": key,
                        "slug": slug,
                    }
        retired = sorted({*_owned(old)} - {key})
        written = self._put_map(entry, slug, key, retired, found)
        for old_key in retired:
            self.source.delete(old_key)
        if retired:
            self._put_map(entry, slug, key, [], written)
        body: dict[str, Any] = {"status": "accepted", "action": "publish", "key": key, "slug": slug}
        if retired:
            body["removed"] = retired
        return 202, body

    def _unpublish_entry(self, entry: str) -> tuple[int, dict[str, Any]]:
        found = self.source.get(map_key(entry))
        old = _read_map(found, entry)
        if old is None:
            return 202, {
                "status": "ignored",
                "reason": f"no release was published from {entry}",
                "key": None,
            }
        for key in _owned(old):
            self.source.delete(key)
        self.source.delete(map_key(entry))
        return 202, {
            "status": "accepted",
            "action": "unpublish",
            "key": old["source_key"],
            "slug": old["slug"],
        }

    def _put_map(
        self, entry: str, slug: str, key: str, retired: list[str], found: StoredObject | None
    ) -> StoredObject:
        """Write the entry map unless unchanged, conditional on the version read."""
        cms, _, ref = entry.partition("/")
        doc: dict[str, Any] = {"cms": cms, "entry": ref, "slug": slug, "source_key": key}
        if retired:
            doc["retired"] = retired
        body = (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
        if found is not None and found.body == body:
            return found
        etag = put_if_unchanged(
            self.source,
            map_key(entry),
            body,
            found.etag if found else None,
            content_type="application/json",
            cache_control=SOURCE_CACHE,
        )
        if etag is None:
            raise MapChanged(
                f"{entry} changed during this request (another webhook for the same entry); retry"
            )
        return StoredObject(map_key(entry), body, etag)

    def _put_release(
        self, key: str, payload: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> None:
        self.source.put(
            key,
            payload,
            content_type="application/json",
            cache_control=SOURCE_CACHE,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    # -------------------------------------------------------------- steps
    def _verify(
        self, cms: str, h: dict[str, str], raw: bytes, method: str, paths: list[str]
    ) -> None:
        now = self.clock()
        s = self.settings
        if cms == "generic":
            verify.verify_generic(h, raw, s.webhook_secret, now)
        elif cms == "contentful":
            verify.verify_contentful(
                h,
                raw,
                s.contentful_secret,
                now,
                method=method,
                paths=paths or ["/hooks/contentful"],
            )
        elif cms == "sanity":
            verify.verify_sanity(h, raw, s.sanity_secret, now)
        else:
            verify.verify_strapi(h, raw, s.strapi_token, now)

    def _change(self, cms: str, data: Any, h: dict[str, str]) -> mapping.Change:
        if cms == "generic":
            return mapping.generic_change(data)
        cmap = self.field_maps[cms]
        build = {
            "contentful": mapping.contentful_change,
            "sanity": mapping.sanity_change,
            "strapi": mapping.strapi_change,
        }[cms]
        return build(data, h, cmap)

    def _validated(self, change: mapping.Change) -> tuple[str, str, bytes]:
        """The source key, slug and bytes to write; ``InvalidRelease`` if invalid."""
        where = change.key or map_key(change.entry)
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


def _valid_release_key(key: Any) -> bool:
    if not isinstance(key, str) or not key.startswith("releases/") or not key.endswith(".json"):
        return False
    slug = key[len("releases/") : -len(".json")]
    return len(slug) <= SLUG_MAX and bool(SLUG_RE.match(slug))


def _read_map(found: StoredObject | None, entry: str) -> dict[str, Any] | None:
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
        raise BrokenMap(
            f"{map_key(entry)} is not a valid entry map; fix or delete it (docs/cms.md)"
        )
    return doc


def _owned(doc: dict[str, Any] | None) -> list[str]:
    """The release files an entry map says its entry wrote."""
    if doc is None:
        return []
    return [doc["source_key"], *doc.get("retired", [])]


def _name_source(error: FieldError, sources: Mapping[str, str]) -> FieldError:
    """Tell editors which CMS field to fix: ``title`` -> "... (CMS field 'headline')"."""
    head = error.loc.split(".", 1)[0]
    src = sources.get(head)
    if src and src != head:
        return FieldError(error.loc, f"{error.msg} (CMS field '{src}')")
    return error
