"""Strapi 4 and 5: bearer token, entry events, blocks rich text, media, i18n.

Strapi sends static headers only (``Authorization: Bearer <token>``): no
signature and no timestamp. The order of events for one entry is the event's
``createdAt`` in the body, which only a holder of the token can send; one more
than 5 minutes ahead of our clock is refused (401).

- Strapi 5 knows an entry by ``documentId`` and sends one ``entry.publish`` per
  locale (``entry.locale``); each locale is its own release, the versions
  sharing a ``translation_key`` made from the ``documentId``.
- Strapi 4 knows an entry by ``id`` (one per locale, linked by
  ``entry.localizations``) and fires ``entry.update`` when a published entry is
  edited: that republishes it. In Strapi 5 ``entry.update`` is a draft save.
- After an upgrade from 4 to 5 an entry is found by its ``documentId``, its old
  ``id`` or the slug it holds (``service.py`` migrates its map).
"""

from __future__ import annotations

import json
from typing import Any

from .. import verify
from ..base import Cms, Request
from ..mapping import (
    Change,
    CmsMap,
    build_document,
    entry_id,
    filtered,
    instant,
    invalid,
    locale_of,
    walk,
)

EVENTS = {
    "entry.publish": "publish",
    "entry.unpublish": "unpublish",
    "entry.delete": "unpublish",
}


class Strapi(Cms):
    name = "strapi"
    secret_setting = "NEWSROOM_STRAPI_TOKEN"
    secret_field = "strapi_token"
    # Strapi's own updatedAt changes on every save (and may precede publishedAt),
    # so it is not an "updated" notice
    field_defaults = {"updated_at": None}

    def verify(self, request: Request, secret: str, now: float) -> verify.Signed:
        value = verify.require(request.headers, "authorization")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise verify.MalformedHeader("Authorization must be 'Bearer <token>'")
        # a header value carries no surrounding spaces, so neither does the token
        if not verify.any_equal(secret.strip(), [token.strip()]):
            raise verify.BadSignature("wrong token")
        when = _event_ms(request.body)
        ahead = when / 1000 - now
        if ahead > verify.TOLERANCE:
            # the newest time accepted for an entry only grows: a future one
            # would refuse (409) every real event for the entry until then
            raise verify.StaleTimestamp(
                f"the event's createdAt is {ahead:.0f} s ahead of the server clock (at most "
                f"{verify.TOLERANCE} s allowed); check the Strapi server's clock"
            )
        return verify.Signed(order=when, digest=verify.digest_of(request.body))

    def changes(self, data: Any, request: Request, cmap: CmsMap | None) -> list[Change]:
        assert cmap is not None
        if not isinstance(data, dict):
            raise invalid("(file)", "must be a JSON object (a Strapi webhook event)")
        event = data.get("event")  # from the body: headers are not part of the event
        model = data.get("model")
        entry = data.get("entry")
        action = EVENTS.get(event) if isinstance(event, str) else None
        v4 = isinstance(entry, dict) and "documentId" not in entry
        if event == "entry.update" and v4 and entry.get("publishedAt"):
            action = "publish"  # Strapi 4: an edit of a published entry
        if action is None:
            return [Change("ignore", reason=f"event {event!r} does not publish or unpublish")]
        skip = filtered(cmap, model)
        if skip:
            return [Change("ignore", reason=skip)]
        if not isinstance(entry, dict):
            raise invalid("entry", "is required: the body must be a Strapi entry event")
        ident = entry.get("id") if v4 else entry.get("documentId")
        ref = entry_id("strapi", model, ident)
        aliases = ()
        if not v4 and entry.get("id") is not None:
            aliases = (entry_id("strapi", model, entry.get("id")),)  # its Strapi 4 map
        locale = locale_of(entry.get("locale"))
        subject = f"{ref}@{locale}" if locale else ref
        if action == "unpublish":
            slug = entry.get("slug")  # finds a map from before languages that holds it
            return [
                Change(
                    "unpublish",
                    document={"slug": slug} if isinstance(slug, str) else {},
                    entry=ref,
                    locale=locale or "*",
                    aliases=aliases,
                    subject=subject,
                )
            ]
        group: Any = None
        if locale:
            if v4:
                ids = [entry.get("id")] + [
                    walk(item, ["id"]) for item in entry.get("localizations") or []
                ]
                ints = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
                group = f"strapi-{model}-{min(ints)}" if ints else None
            else:
                group = f"strapi-{ident}"
        doc, sources = build_document(
            lambda path: walk(entry, path.split(".")),
            cmap,
            fallbacks={"language": locale or None, "translation_key": group},
            image=self.image,
        )
        return [
            Change(
                "publish",
                document=doc,
                sources=sources,
                entry=ref,
                locale=locale,
                aliases=aliases,
                subject=subject,
                published_now=entry.get("publishedAt") or "",
            )
        ]

    def image(self, value: Any, src: str, cmap: CmsMap) -> Any:
        url = value.get("url") if isinstance(value, dict) else value
        if isinstance(url, str) and url.startswith("/"):
            base = cmap.options["media_base_url"].rstrip("/")
            if not base:
                raise invalid(
                    "image.url" if src != "body" else "body",
                    f"{url!r} is a path on the Strapi server; set media_base_url for strapi "
                    "in NEWSROOM_CMS_FIELD_MAP (e.g. https://cms.example.org) or use an "
                    "upload provider with absolute URLs",
                )
            url = base + url
        return url


def _event_ms(body: bytes) -> int:
    """The event's ``createdAt`` in milliseconds (0 when the body has none)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return 0
    when = instant(data.get("createdAt")) if isinstance(data, dict) else None
    return int(when.timestamp() * 1000) if when else 0


CMS = Strapi()
