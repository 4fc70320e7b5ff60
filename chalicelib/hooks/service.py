"""HookService: one CMS webhook request -> (HTTP status, JSON body).

The order of checks is fixed and every rejection happens before anything is
written: size (413), secret and signature (401), JSON and release validation
(422). A valid publish writes ``releases/<name>.json``; a valid unpublish deletes
it. Publishing itself then goes through ``sync_release`` like any upload.

What is written is re-read with ``model.parse_release`` (the function
``sync_release`` uses) before the write, so the webhook can never accept a file
the publisher would reject for its form.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import FieldError, InvalidRelease
from ..model import MAX_BYTES, parse_release, release_from_obj
from ..settings import Settings
from ..storage import Storage
from . import mapping, verify

log = logging.getLogger("newsroom.hooks")

CMS_NAMES = ("generic", *mapping.CMS_NAMES)
SOURCE_CACHE = "no-cache"


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
                self.source.delete(change.key)
                return 202, {"status": "accepted", "action": "unpublish", "key": change.key}
            payload = self._validated_bytes(change)
        except InvalidRelease as exc:
            return 422, {"errors": [e.as_dict() for e in exc.errors]}
        self.source.put(
            change.key, payload, content_type="application/json", cache_control=SOURCE_CACHE
        )
        return 202, {
            "status": "accepted",
            "action": "publish",
            "key": change.key,
            "slug": change.document.get("slug"),
        }

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

    def _validated_bytes(self, change: mapping.Change) -> bytes:
        try:
            release_from_obj(change.document, source=change.key)
        except InvalidRelease as exc:
            raise InvalidRelease(
                [_name_source(e, change.sources) for e in exc.errors], change.key
            ) from None
        payload = (json.dumps(change.document, ensure_ascii=False, indent=2) + "\n").encode()
        # the very check sync_release makes (size, encoding, slug from the file name)
        parse_release(payload, name=change.key)
        return payload


def _name_source(error: FieldError, sources: Mapping[str, str]) -> FieldError:
    """Tell editors which CMS field to fix: ``title`` -> "... (CMS field 'headline')"."""
    head = error.loc.split(".", 1)[0]
    src = sources.get(head)
    if src and src != head:
        return FieldError(error.loc, f"{error.msg} (CMS field '{src}')")
    return error
