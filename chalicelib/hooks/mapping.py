"""What every CMS module shares: the field map, the ``Change`` it produces, and
the reading of a CMS entry into a release document (format version 1).

Each CMS names its fields its own way, so which CMS field feeds which release
field is configurable per CMS (``NEWSROOM_CMS_FIELD_MAP``, a JSON object keyed by
CMS name). The default for every release field is the camelCase name of that
field (``title``, ``publishedAt``, ``imageAlt``…); see docs/cms.md.

CMS entries are known by their own id, because an unpublish or delete webhook
does not always carry the entry's fields (Contentful sends only ``sys``) and
because renaming a slug in the CMS must replace the page, not add a second one:
``Change.entry`` names the entry (``contentful/<entry id>``, ``sanity/<_id>``,
``strapi/<model>/<documentId or id>``), ``Change.locale`` the language version,
and ``service.py`` keeps a small map per entry and locale saying which release
file it published.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ..core.markup import sanitize
from ..core.model import KIND_LABELS, SLUG_MAX, SLUG_RE
from ..errors import ConfigurationError, FieldError, InvalidRelease
from . import richtext

Action = Literal["publish", "unpublish", "ignore"]

# release field -> default CMS field (path; dots walk into nested objects)
DEFAULT_FIELDS: dict[str, str] = {
    "slug": "slug",
    "title": "title",
    "kind": "kind",
    "published_at": "publishedAt",
    "updated_at": "updatedAt",
    "embargo_until": "embargoUntil",
    "summary": "summary",
    "body": "body",
    "image": "image",
    "image_alt": "imageAlt",
    "image_caption": "imageCaption",
    "image_credit": "imageCredit",
    "topics": "topics",
    "contacts": "contacts",
    "attachments": "attachments",
    "language": "language",
    "translation_key": "translationKey",
}
DEFAULT_OPTIONS: dict[str, Any] = {
    "locale": "en-US",  # contentful: the default locale (read when a field has no other)
    "default_kind": "press-release",  # when the entry has no kind field
    "content_types": [],  # only these content types / models / _types; empty: all
    "body_format": "markdown",  # how to read a body that is a plain string
    "media_base_url": "",  # strapi: prefix for upload paths such as /uploads/x.jpg
    "project_id": "",  # sanity: for image asset references (else the body's asset->url)
    "dataset": "",  # sanity: idem
    "tag_topics": True,  # contentful: metadata.tags become topics
}
DATE_FIELDS = ("published_at", "updated_at", "embargo_until")
_KIND_BY_LABEL = {label.lower(): kind for kind, label in KIND_LABELS.items()}
_ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8})*$")
# keys a CMS adds to nested objects that are not release data
_SYSTEM_KEYS = {"_key", "_type", "id", "documentId", "__component"}
_DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAIVE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")


@dataclass(frozen=True)
class CmsMap:
    fields: dict[str, str | None]
    options: dict[str, Any]
    timezone: str = "UTC"

    def source(self, target: str) -> str | None:
        return self.fields.get(target)


def parse_field_maps(
    text: str,
    field_defaults: Mapping[str, Mapping[str, str | None]],
    timezone: str = "UTC",
) -> dict[str, CmsMap]:
    """``NEWSROOM_CMS_FIELD_MAP`` -> one ``CmsMap`` per CMS named in
    ``field_defaults`` (each CMS's departures from ``DEFAULT_FIELDS``)."""
    names = list(field_defaults)
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"NEWSROOM_CMS_FIELD_MAP is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError("NEWSROOM_CMS_FIELD_MAP must be a JSON object")
    unknown = set(raw) - set(names)
    if unknown:
        raise ConfigurationError(
            f"NEWSROOM_CMS_FIELD_MAP: unknown CMS {sorted(unknown)}; use {names}"
        )
    maps = {}
    for cms in names:
        overrides = raw.get(cms, {})
        if not isinstance(overrides, dict):
            raise ConfigurationError(f"NEWSROOM_CMS_FIELD_MAP.{cms} must be an object")
        fields: dict[str, str | None] = {**DEFAULT_FIELDS, **field_defaults[cms]}
        options = dict(DEFAULT_OPTIONS)
        for key, value in overrides.items():
            if key in DEFAULT_FIELDS:
                if value is not None and not (isinstance(value, str) and value.strip()):
                    raise ConfigurationError(
                        f"NEWSROOM_CMS_FIELD_MAP.{cms}.{key} must be a field name or null"
                    )
                fields[key] = value.strip() if isinstance(value, str) else None
            elif key in DEFAULT_OPTIONS:
                if type(value) is not type(DEFAULT_OPTIONS[key]):
                    raise ConfigurationError(
                        f"NEWSROOM_CMS_FIELD_MAP.{cms}.{key} must be a "
                        f"{type(DEFAULT_OPTIONS[key]).__name__}"
                    )
                options[key] = value
            else:
                raise ConfigurationError(
                    f"NEWSROOM_CMS_FIELD_MAP.{cms}: unknown key {key!r}; release fields are "
                    f"{', '.join(DEFAULT_FIELDS)}; options are {', '.join(DEFAULT_OPTIONS)}"
                )
        maps[cms] = CmsMap(fields, options, timezone)
    return maps


@dataclass
class Change:
    """What one webhook asks for, for one entry in one language."""

    action: Action
    key: str = ""  # generic: releases/<slug>.json (CMS: set once the slug is validated)
    document: dict[str, Any] = field(default_factory=dict)  # the release, to publish
    reason: str = ""  # why an event is ignored
    sources: dict[str, str] = field(default_factory=dict)  # release field -> CMS field
    entry: str = ""  # CMS entry: "contentful/<id>", "sanity/<_id>", "strapi/<model>/<id>"
    locale: str = ""  # the language version of the entry ("" when the CMS has none)
    aliases: tuple[str, ...] = ()  # older names of the entry (Strapi 4 id before 5)
    subject: str = ""  # what the order-and-replay check is kept for
    published_now: str = ""  # the CMS's time of this publish (updated_at on re-publishes)


def invalid(loc: str, msg: str) -> InvalidRelease:
    return InvalidRelease([FieldError(loc, msg)])


def walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


Getter = Callable[[str], Any]
ImageReader = Callable[[Any, str, "CmsMap"], Any]


def _kind(value: Any, default: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str):
        text = value.strip()
        return text if text in KIND_LABELS else _KIND_BY_LABEL.get(text.lower(), text)
    return value


def _clean(value: Any) -> Any:
    """Drop the CMS's own bookkeeping keys from nested objects (lists of them too)."""
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in _SYSTEM_KEYS}
    return value


def topic_names(value: Any, src: str) -> Any:
    """Topic names from text values or objects with a name; a bare reference
    (Sanity ``{_ref}``, a Contentful link) is an error naming the CMS field."""
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, dict):
            name = next(
                (
                    item[k]
                    for k in ("name", "title", "label", "value")
                    if isinstance(item.get(k), str)
                ),
                None,
            )
            if name is None:
                raise invalid(
                    "topics",
                    f"CMS field '{src}' holds a reference the webhook cannot resolve; send "
                    f"topic names (a list of text values, e.g. the projection "
                    f'"{src}": {src}[]->name)',
                )
            out.append(name)
        else:
            out.append(item)
    return out


def local_datetime(value: Any, timezone: str) -> Any:
    """A CMS date field's value as an ISO 8601 date-time with an offset: a date
    alone (``2024-05-14``) is midnight and an offset-less date-time is wall time,
    both in the site's time zone (``NEWSROOM_TIMEZONE``). Anything else is
    returned as is, for the model to judge."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if _DATE_ONLY_RE.fullmatch(text):
            day = date.fromisoformat(text)
            naive = datetime(day.year, day.month, day.day)
        elif _NAIVE_RE.fullmatch(text):
            naive = datetime.fromisoformat(text)
        else:
            return value
    except ValueError:
        return value
    zone = ZoneInfo(timezone)
    # a wall time the zone's clock change makes ambiguous (01:30 twice) or
    # skips (02:30): the later instant, so an embargo never lifts early
    readings = (naive.replace(tzinfo=zone), naive.replace(tzinfo=zone, fold=1))
    return min(readings, key=lambda d: d.utcoffset() or timedelta(0)).isoformat()


def instant(value: Any) -> datetime | None:
    """The instant of an ISO 8601 date-time with an offset, else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def translation_key(cms: str, value: Any) -> str:
    """A ``translation_key`` (slug rules) for the language versions of one entry:
    the CMS's own group id when it already is one, else a stable digest of it."""
    text = str(value)
    if len(text) <= SLUG_MAX and SLUG_RE.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # any text
    return f"{cms}-{digest[:24]}"


def build_document(
    get: Getter,
    cmap: CmsMap,
    *,
    fallbacks: Mapping[str, Any] | None = None,
    image: ImageReader | None = None,
    extra_topics: list[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The release document from a CMS entry, plus which CMS field fed which field.

    ``image`` reads the lead image value by the CMS's own rules; ``fallbacks``
    are used where the mapped field is absent."""
    fallbacks = fallbacks or {}
    doc: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def read(target: str) -> Any:
        src = cmap.source(target)
        if not src:
            return fallbacks.get(target)
        sources[target] = src
        value = get(src)
        return fallbacks.get(target) if value is None else value

    for target in (
        "slug",
        "title",
        "published_at",
        "updated_at",
        "embargo_until",
        "summary",
        "language",
        "translation_key",
    ):
        value = read(target)
        if target == "slug" and isinstance(value, dict):
            value = value.get("current")  # Sanity slug objects
        if target in DATE_FIELDS:
            value = local_datetime(value, cmap.timezone)
        if value is not None and value != "":
            doc[target] = value
    doc["kind"] = _kind(read("kind"), cmap.options["default_kind"])

    body = read("body")
    html = richtext.to_html(body, image_url=_richtext_image_url(image, cmap))
    if html is not None:
        try:
            doc["body"] = sanitize(html)
        except UnicodeEncodeError:  # a lone surrogate in the text: the model names it
            doc["body"] = html
        doc["body_format"] = "html"
    elif body is not None:
        doc["body"] = body
        if cmap.options["body_format"] == "html":
            doc["body_format"] = "html"

    src = cmap.source("image")
    lead = read_image(get(src) if src else None, src or "image", cmap, image)
    if lead is not None:
        doc["image"] = lead
        if src:
            sources["image"] = src
        for target in ("alt", "caption", "credit"):
            src_extra = cmap.source(f"image_{target}")
            extra = get(src_extra) if src_extra else None
            if extra not in (None, "") and isinstance(lead, dict):
                lead[target] = extra
    for target in ("topics", "contacts", "attachments"):
        value = read(target)
        if target == "topics":
            value = topic_names(value, cmap.source("topics") or "topics")
            if extra_topics:
                value = list(value) if isinstance(value, list) else []
                value += [t for t in extra_topics if t not in value]
        if value is None:
            continue
        doc[target] = value if target == "topics" else _clean(value)
    order = [*DEFAULT_FIELDS, "body_format"]
    order.insert(order.index("body") + 1, order.pop())
    return {k: doc[k] for k in order if k in doc}, sources


def read_image(value: Any, src: str, cmap: CmsMap, image: ImageReader | None) -> Any:
    """The lead image object from a CMS value: the CMS module resolves its own
    asset shapes (``image``) to a URL; alt, caption and credit are read here."""
    if value is None:
        return None
    found: dict[str, Any] = {}
    if isinstance(value, str):
        url: Any = image(value, src, cmap) if image else value
    elif isinstance(value, dict):
        url = image(value, src, cmap) if image else value.get("url")
        for target, keys in (
            ("alt", ("alt", "alternativeText", "description")),
            ("caption", ("caption",)),
            ("credit", ("credit",)),
        ):
            hit = next((value[k] for k in keys if value.get(k) not in (None, "")), None)
            if hit is not None:
                found[target] = hit
    else:
        return value  # let the model say what is wrong with it
    if url is None:
        return None
    return {"url": url, **found}


def _richtext_image_url(image: ImageReader | None, cmap: CmsMap) -> Callable[[Any], str | None]:
    def url(value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        found = image(value, "body", cmap) if image else value.get("url")
        return found if isinstance(found, str) else None

    return url


def entry_id(cms: str, *parts: Any) -> str:
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            part = str(part)
        if not isinstance(part, str) or not _ID_RE.match(part):
            raise invalid("(entry)", f"the entry's id {part!r} cannot name an entry map")
    return "/".join([cms, *(str(p) for p in parts)])


def locale_of(value: Any) -> str:
    """A CMS locale code usable in a key (``en``, ``fr-FR``), else ``""``."""
    return value if isinstance(value, str) and LOCALE_RE.match(value) else ""


def filtered(cmap: CmsMap, content_type: Any) -> str:
    allowed = cmap.options["content_types"]
    if allowed and content_type not in allowed:
        return f"content type {content_type!r} is not one of {allowed}"
    return ""
