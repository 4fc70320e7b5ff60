"""Contentful: request verification, locale-keyed entries, Rich Text, tags.

Verification (``@contentful/node-apps-toolkit``): ``x-contentful-signature`` is
the hex HMAC-SHA256 of ``METHOD\\nPATH\\nk1:v1;k2:v2\\nBODY`` over the headers named
in ``x-contentful-signed-headers`` (lower-cased, values trimmed, sorted by name);
``x-contentful-timestamp`` is in milliseconds. The topic header decides the
action, so it must be among the signed headers, or the request is refused.

An entry's fields are keyed by locale (``{"title": {"en-GB": …, "fr-FR": …}}``).
Every locale with its own title becomes a release (its ``language``), the
versions sharing a ``translation_key``; a field without a value in a locale is
read in the default locale (the ``locale`` option when the entry has it, else
the locale most fields carry: Contentful sends non-localized fields only in the
default locale). Publishing, unpublishing and deleting are whole-entry events,
except under Contentful's locale-based publishing: then ``sys.fieldStatus``
(``{"*": {"en-US": "published", "fr-FR": "draft"}}``) says which locales are
live, and a publish writes the published ones (``published``, or ``changed``:
live, with later draft edits) and takes down the release of a locale that is
``draft`` again, leaving every other locale as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from .. import verify
from ..base import Cms, Request
from ..mapping import (
    Change,
    CmsMap,
    build_document,
    entry_id,
    filtered,
    invalid,
    locale_of,
    translation_key,
    walk,
)

SIGNATURE = "x-contentful-signature"
SIGNED_HEADERS = "x-contentful-signed-headers"
TIMESTAMP = "x-contentful-timestamp"
TOPIC = "x-contentful-topic"
ACTIONS = {"publish": "publish", "unpublish": "unpublish", "delete": "unpublish"}


def canonical(method: str, path: str, signed: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """The exact string Contentful signs (see ``@contentful/node-apps-toolkit``)."""
    header_part = ";".join(f"{k}:{v}" for k, v in sorted(signed))
    # encodeURI of the path: reserved and unreserved characters stay as they are
    encoded_path = quote(path, safe="/;,?:@&=+$-_.!~*'()#")
    return f"{method.upper()}\n{encoded_path}\n{header_part}\n".encode() + body


class Contentful(Cms):
    name = "contentful"
    secret_setting = "NEWSROOM_CONTENTFUL_SECRET"
    secret_field = "contentful_secret"

    def verify(self, request: Request, secret: str, now: float) -> verify.Signed:
        h = request.headers
        signature = verify.require(h, SIGNATURE).lower()
        names_raw = verify.require(h, SIGNED_HEADERS)
        stamp = verify.require(h, TIMESTAMP)
        names = [n.strip().lower() for n in names_raw.split(",") if n.strip()]
        if TIMESTAMP not in names or SIGNED_HEADERS not in names:
            raise verify.MalformedHeader(
                f"{SIGNED_HEADERS} must include {TIMESTAMP} and {SIGNED_HEADERS}"
            )
        if TOPIC not in names:
            # the topic decides publish or unpublish: unsigned, it could turn an
            # auto-save into a publish
            raise verify.MalformedHeader(f"{SIGNED_HEADERS} must include {TOPIC}")
        missing = [n for n in names if n not in h]
        if missing:
            raise verify.MissingHeader(f"signed header(s) not present: {', '.join(missing)}")
        ts = verify.signed_millis(
            stamp, f"{TIMESTAMP} (milliseconds since 1970)", now, earliest=verify.UNIT_SPLIT
        )
        signed = [(n, h[n].strip()) for n in names]
        paths = request.paths or ["/hooks/contentful"]
        expected = [
            verify.hmac_sha256(secret, canonical(request.method, p, signed, request.body)).hex()
            for p in dict.fromkeys(paths)
        ]
        if not verify.any_equal(signature, expected):
            raise verify.BadSignature("signature does not match the request and signing secret")
        return verify.Signed(order=ts, digest=verify.digest_of(signature))

    def changes(self, data: Any, request: Request, cmap: CmsMap | None) -> list[Change]:
        assert cmap is not None
        topic = request.headers.get(TOPIC, "").strip()
        parts = topic.split(".")
        if len(parts) != 3 or parts[1] != "Entry":
            return [Change("ignore", reason=f"topic {topic or '(none)'!r} is not an entry event")]
        action = ACTIONS.get(parts[2])
        if action is None:
            return [Change("ignore", reason=f"topic {topic!r} does not publish or unpublish")]
        sys = data.get("sys") if isinstance(data, dict) else None
        if not isinstance(sys, dict):
            raise invalid("sys", "is required: the body must be a Contentful entry")
        expected = "Entry" if action == "publish" else "DeletedEntry"
        if sys.get("type") != expected:
            raise invalid("sys.type", f"must be {expected!r} for topic {topic!r}")
        skip = filtered(cmap, walk(sys, ["contentType", "sys", "id"]))
        if skip:
            return [Change("ignore", reason=skip)]
        ref = entry_id("contentful", sys.get("id"))
        if action == "unpublish":
            return [Change("unpublish", entry=ref, locale="*", subject=ref)]

        fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
        localized = [v for v in fields.values() if isinstance(v, dict)]
        seen = Counter(loc for v in localized for loc in v)
        locales = [loc for loc in dict.fromkeys(loc for v in localized for loc in v)]
        default = cmap.options["locale"]
        if default not in seen and seen:
            default = max(locales, key=lambda loc: seen[loc])  # first of the most common
        title_src = (cmap.source("title") or "title").split(".")[0]
        titled = fields.get(title_src) if isinstance(fields.get(title_src), dict) else {}
        versions = [loc for loc in locales if loc in titled] or [default]
        versions.sort(key=lambda loc: loc != default)  # the default locale first
        status = walk(sys, ["fieldStatus", "*"])
        status = status if isinstance(status, dict) and status else None
        several = len(set(locales) | set(status or ())) > 1
        drafts: list[str] = []
        if status is not None:
            # locale-based publishing: only the locales live now
            drafts = [loc for loc in status if status[loc] == "draft" and several]
            versions = [loc for loc in versions if status.get(loc) in ("published", "changed")]
        changes = []
        tags = [
            t
            for t in (walk(tag, ["sys", "id"]) for tag in walk(data, ["metadata", "tags"]) or [])
            if isinstance(t, str) and t
        ]
        for loc in versions:
            doc, sources = build_document(
                self._getter(fields, loc, default),
                cmap,
                fallbacks={
                    "published_at": sys.get("firstPublishedAt")
                    or sys.get("publishedAt")
                    or sys.get("createdAt"),
                    "language": loc,
                    "translation_key": translation_key("contentful", sys.get("id"))
                    if several
                    else None,
                },
                image=self.image,
                extra_topics=tags if cmap.options["tag_topics"] else None,
            )
            changes.append(
                Change(
                    "publish",
                    document=doc,
                    sources=sources,
                    entry=ref,
                    locale=locale_of(loc) if several else "",
                    subject=ref,
                    published_now=sys.get("publishedAt") or sys.get("updatedAt") or "",
                )
            )
        changes += [  # a locale taken back to draft: its release goes, alone
            Change("unpublish", entry=ref, locale=locale_of(loc), subject=ref)
            for loc in drafts
            if locale_of(loc)
        ]
        return changes

    @staticmethod
    def _getter(fields: dict[str, Any], loc: str, default: str) -> Any:
        def get(path: str) -> Any:
            first, *rest = path.split(".")
            values = fields.get(first)
            if not isinstance(values, dict):
                return None
            if loc in values:
                value = values[loc]
            elif default in values:
                value = values[default]
            elif len(values) == 1:
                value = next(iter(values.values()))
            else:
                return None
            return walk(value, rest)

        return get

    def image(self, value: Any, src: str, cmap: CmsMap) -> Any:
        if not isinstance(value, dict):
            return value
        sys = value.get("sys")
        file = walk(value, ["fields", "file"])
        if isinstance(file, dict) and "url" not in file:
            file = next((v for v in file.values() if isinstance(v, dict)), None)
        if isinstance(file, dict) and isinstance(file.get("url"), str):
            url = file["url"]
            return "https:" + url if url.startswith("//") else url
        if isinstance(sys, dict) and sys.get("type") == "Link":
            if src == "body":
                return None  # an embedded asset known only by its id: left out
            raise invalid(
                "image",
                f"field '{src}' links to a Contentful asset, and webhooks carry only the "
                'asset\'s id; give the lead image as a JSON field {"url", "alt"} or a text '
                "field holding its https:// URL (see the CMS guide)",
            )
        return value.get("url")


CMS = Contentful()
