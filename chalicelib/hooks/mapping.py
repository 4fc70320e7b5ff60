"""CMS webhook payloads -> a release document (format version 1) and an action.

Each CMS names its fields its own way, so which CMS field feeds which release
field is configurable per CMS (``NEWSROOM_CMS_FIELD_MAP``, a JSON object keyed
``contentful`` / ``sanity`` / ``strapi``). The default for every release field
is the camelCase name of that field (``title``, ``publishedAt``, ``imageAlt``…);
see docs/cms.md for the table and the extra options.

Every route writes the release to ``releases/<slug>.json`` (the release's own,
validated slug), the key ``sync_release`` publishes from. The generic body carries
its slug, also to unpublish. CMS entries are also known by their own id, because
an unpublish or delete webhook does not always carry the entry's fields
(Contentful sends only ``sys``) and because renaming a slug in the CMS must
replace the page, not add a second one: ``Change.entry`` names the entry
(``contentful/<entry id>``, ``sanity/<document _id>``,
``strapi/<model>/<documentId or id>``) and ``service.py`` keeps a small map per
entry, ``cms/<entry>.json``, saying which release file the entry published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.markup import sanitize
from ..core.model import KIND_LABELS, SLUG_MAX, SLUG_RE
from ..errors import ConfigurationError, FieldError, InvalidRelease
from . import richtext

Action = Literal["publish", "unpublish", "ignore"]
CMS_NAMES = ("contentful", "sanity", "strapi")

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
}
# per-CMS departures from those defaults: Strapi's own ``updatedAt`` changes on
# every save (and may precede ``publishedAt``), so it is not an "updated" notice
CMS_DEFAULT_FIELDS: dict[str, dict[str, str | None]] = {"strapi": {"updated_at": None}}
DEFAULT_OPTIONS: dict[str, Any] = {
    "locale": "en-US",  # contentful: which locale of each field to read
    "default_kind": "press-release",  # when the entry has no kind field
    "content_types": [],  # only these content types / models / _types; empty: all
    "body_format": "markdown",  # how to read a body that is a plain string
    "media_base_url": "",  # strapi: prefix for upload paths such as /uploads/x.jpg
    "project_id": "",  # sanity: for image asset references (else the request header)
    "dataset": "",  # sanity: idem
}
_KIND_BY_LABEL = {label.lower(): kind for kind, label in KIND_LABELS.items()}
_ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
# keys a CMS adds to nested objects that are not release data
_SYSTEM_KEYS = {"_key", "_type", "id", "documentId", "__component"}


@dataclass(frozen=True)
class CmsMap:
    fields: dict[str, str | None]
    options: dict[str, Any]

    def source(self, target: str) -> str | None:
        return self.fields.get(target)


def parse_field_maps(text: str) -> dict[str, CmsMap]:
    """``NEWSROOM_CMS_FIELD_MAP`` -> one ``CmsMap`` per CMS (defaults filled in)."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"NEWSROOM_CMS_FIELD_MAP is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError("NEWSROOM_CMS_FIELD_MAP must be a JSON object")
    unknown = set(raw) - set(CMS_NAMES)
    if unknown:
        raise ConfigurationError(
            f"NEWSROOM_CMS_FIELD_MAP: unknown CMS {sorted(unknown)}; use {list(CMS_NAMES)}"
        )
    maps = {}
    for cms in CMS_NAMES:
        overrides = raw.get(cms, {})
        if not isinstance(overrides, dict):
            raise ConfigurationError(f"NEWSROOM_CMS_FIELD_MAP.{cms} must be an object")
        fields: dict[str, str | None] = {**DEFAULT_FIELDS, **CMS_DEFAULT_FIELDS.get(cms, {})}
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
        maps[cms] = CmsMap(fields, options)
    return maps


@dataclass
class Change:
    """What one webhook asks for."""

    action: Action
    key: str = ""  # generic: releases/<slug>.json (CMS: set once the slug is validated)
    document: dict[str, Any] = field(default_factory=dict)  # the release, to publish
    reason: str = ""  # why an event is ignored
    sources: dict[str, str] = field(default_factory=dict)  # release field -> CMS field
    entry: str = ""  # CMS entry: "contentful/<id>", "sanity/<_id>", "strapi/<model>/<id>"


def _invalid(loc: str, msg: str) -> InvalidRelease:
    return InvalidRelease([FieldError(loc, msg)])


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


# ---------------------------------------------------------------- generic
def generic_change(data: Any) -> Change:
    if not isinstance(data, dict):
        raise _invalid("(file)", 'must be a JSON object: a release plus "action"')
    action = data.get("action")
    if action not in ("publish", "unpublish"):
        raise _invalid("action", 'must be "publish" or "unpublish"')
    document = {k: v for k, v in data.items() if k != "action"}
    slug = document.get("slug")
    if slug is None:
        raise _invalid("slug", "is required (it names the file releases/<slug>.json)")
    if not isinstance(slug, str) or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise _invalid(
            "slug",
            f"{slug!r} is not a valid slug: use lower-case letters, digits and single hyphens",
        )
    key = f"releases/{slug}.json"
    if action == "unpublish":
        return Change("unpublish", key)
    return Change("publish", key, document)


# ------------------------------------------------------- shared CMS mapping
Getter = Callable[[str], Any]


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


def _topics(value: Any) -> Any:
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
                raise _invalid(
                    "topics",
                    "contains a reference the webhook cannot resolve; send topic names "
                    "(a list of text values)",
                )
            out.append(name)
        else:
            out.append(item)
    return out


def _sanity_asset_url(ref: str, project: str, dataset: str) -> str | None:
    # image-<assetId>-<width>x<height>-<ext>  ->  cdn.sanity.io/images/<p>/<d>/<id>-<w>x<h>.<ext>
    match = re.fullmatch(r"image-([A-Za-z0-9]+)-(\d+x\d+)-([a-z0-9]+)", ref)
    if not match or not project or not dataset:
        return None
    asset, size, ext = match.groups()
    return f"https://cdn.sanity.io/images/{project}/{dataset}/{asset}-{size}.{ext}"


def _image(cms: str, get: Getter, cmap: CmsMap, context: Mapping[str, str]) -> Any:
    src = cmap.source("image")
    value = get(src) if src else None
    url: Any = None
    image: dict[str, Any] = {}
    if isinstance(value, str):
        url = value
    elif isinstance(value, dict):
        sys = value.get("sys")
        if isinstance(sys, dict) and sys.get("type") == "Link":
            raise _invalid(
                "image",
                f"field '{src}' links to a Contentful asset, and webhooks carry only the "
                'asset\'s id; give the lead image as a JSON field {"url", "alt"} or a text '
                "field holding its https:// URL (see the CMS guide)",
            )
        asset = value.get("asset")
        url = value.get("url")
        if url is None and isinstance(asset, dict):
            url = asset.get("url")
            if url is None and isinstance(asset.get("_ref"), str):
                url = _sanity_asset_url(
                    asset["_ref"],
                    cmap.options["project_id"] or context.get("project_id", ""),
                    cmap.options["dataset"] or context.get("dataset", ""),
                )
        for target, keys in (
            ("alt", ("alt", "alternativeText", "description")),
            ("caption", ("caption",)),
            ("credit", ("credit",)),
        ):
            found = next((value[k] for k in keys if value.get(k) not in (None, "")), None)
            if found is not None:
                image[target] = found
    elif value is not None:
        return value  # let the model say what is wrong with it
    if url is None:
        return None
    if cms == "strapi" and isinstance(url, str) and url.startswith("/"):
        base = cmap.options["media_base_url"].rstrip("/")
        if not base:
            raise _invalid(
                "image.url",
                f"{url!r} is a path on the Strapi server; set media_base_url for strapi in "
                "NEWSROOM_CMS_FIELD_MAP (e.g. https://cms.example.org) or use an upload "
                "provider with absolute URLs",
            )
        url = base + url
    image = {"url": url, **image}
    for target in ("alt", "caption", "credit"):
        src_extra = cmap.source(f"image_{target}")
        extra = get(src_extra) if src_extra else None
        if extra not in (None, ""):
            image[target] = extra
    return image


def build_document(
    cms: str,
    get: Getter,
    cmap: CmsMap,
    *,
    fallbacks: Mapping[str, Any] | None = None,
    context: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The release document from a CMS entry, plus which CMS field fed which field."""
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
    ):
        value = read(target)
        if target == "slug" and isinstance(value, dict):
            value = value.get("current")  # Sanity slug objects
        if value is not None and value != "":
            doc[target] = value
    doc["kind"] = _kind(read("kind"), cmap.options["default_kind"])

    body = read("body")
    html = richtext.to_html(body)
    if html is not None:
        doc["body"] = sanitize(html)
        doc["body_format"] = "html"
    elif body is not None:
        doc["body"] = body
        if cmap.options["body_format"] == "html":
            doc["body_format"] = "html"

    image = _image(cms, get, cmap, context or {})
    if image is not None:
        doc["image"] = image
        if cmap.source("image"):
            sources["image"] = cmap.source("image")  # type: ignore[assignment]
    for target in ("topics", "contacts", "attachments"):
        value = read(target)
        if value is None:
            continue
        doc[target] = _topics(value) if target == "topics" else _clean(value)
    order = [*DEFAULT_FIELDS, "body_format"]
    order.insert(order.index("body") + 1, order.pop())
    return {k: doc[k] for k in order if k in doc}, sources


def _entry_id(cms: str, *parts: Any) -> str:
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            part = str(part)
        if not isinstance(part, str) or not _ID_RE.match(part):
            raise _invalid("(entry)", f"the entry's id {part!r} cannot name an entry map")
    return "/".join([cms, *(str(p) for p in parts)])


def _filtered(cmap: CmsMap, content_type: Any) -> str:
    allowed = cmap.options["content_types"]
    if allowed and content_type is not None and content_type not in allowed:
        return f"content type {content_type!r} is not one of {allowed}"
    return ""


# ------------------------------------------------------------- contentful
def contentful_change(data: Any, headers: Mapping[str, str], cmap: CmsMap) -> Change:
    topic = headers.get("x-contentful-topic", "").strip()
    parts = topic.split(".")
    if len(parts) != 3 or parts[1] != "Entry":
        return Change("ignore", reason=f"topic {topic or '(none)'!r} is not an entry event")
    event = parts[2]
    if event not in ("publish", "unpublish", "delete"):
        return Change("ignore", reason=f"topic {topic!r} does not publish or unpublish")
    sys = data.get("sys") if isinstance(data, dict) else None
    if not isinstance(sys, dict):
        raise _invalid("sys", "is required: the body must be a Contentful entry")
    expected = "Entry" if event == "publish" else "DeletedEntry"
    if sys.get("type") != expected:
        raise _invalid("sys.type", f"must be {expected!r} for topic {topic!r}")
    ref = _entry_id("contentful", sys.get("id"))
    content_type = _walk(sys, ["contentType", "sys", "id"])
    skip = _filtered(cmap, content_type)
    if skip:
        return Change("ignore", reason=skip)
    if event != "publish":
        return Change("unpublish", entry=ref)

    fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
    locale = cmap.options["locale"]

    def get(path: str) -> Any:
        first, *rest = path.split(".")
        localized = fields.get(first)
        if not isinstance(localized, dict):
            return None
        if locale in localized:
            value = localized[locale]
        elif len(localized) == 1:
            value = next(iter(localized.values()))
        else:
            return None
        return _walk(value, rest)

    fallbacks = {
        "published_at": sys.get("firstPublishedAt") or sys.get("publishedAt"),
        "language": locale,
    }
    doc, sources = build_document("contentful", get, cmap, fallbacks=fallbacks)
    return Change("publish", document=doc, sources=sources, entry=ref)


# ----------------------------------------------------------------- sanity
def sanity_change(data: Any, headers: Mapping[str, str], cmap: CmsMap) -> Change:
    if not isinstance(data, dict):
        raise _invalid("(file)", "must be a JSON object (the webhook projection)")
    doc_id = data.get("_id")
    if not isinstance(doc_id, str) or not doc_id:
        raise _invalid("_id", "is required: include _id in the webhook projection")
    if doc_id.startswith(("drafts.", "versions.")):
        return Change("ignore", reason="drafts and release versions are not published")
    # the operation from the signed body wins over the (unsigned) header
    operation = data.get("operation")
    if not isinstance(operation, str):
        operation = headers.get("sanity-operation", "").strip() or "update"
    if operation not in ("create", "update", "delete"):
        raise _invalid("operation", "must be create, update or delete")
    ref = _entry_id("sanity", doc_id)
    skip = _filtered(cmap, data.get("_type"))
    if skip:
        return Change("ignore", reason=skip)
    if operation == "delete":
        return Change("unpublish", entry=ref)
    context = {
        "project_id": headers.get("sanity-project-id", "").strip(),
        "dataset": headers.get("sanity-dataset", "").strip(),
    }
    doc, sources = build_document(
        "sanity",
        lambda path: _walk(data, path.split(".")),
        cmap,
        fallbacks={"published_at": data.get("_createdAt")},
        context=context,
    )
    return Change("publish", document=doc, sources=sources, entry=ref)


# ----------------------------------------------------------------- strapi
_STRAPI_EVENTS: dict[str, Action] = {
    "entry.publish": "publish",
    "entry.unpublish": "unpublish",
    "entry.delete": "unpublish",
}


def strapi_change(data: Any, headers: Mapping[str, str], cmap: CmsMap) -> Change:
    if not isinstance(data, dict):
        raise _invalid("(file)", "must be a JSON object (a Strapi webhook event)")
    event = data.get("event") or headers.get("x-strapi-event", "")
    action = _STRAPI_EVENTS.get(event)
    if action is None:
        return Change("ignore", reason=f"event {event!r} does not publish or unpublish")
    model = data.get("model")
    entry = data.get("entry")
    if not isinstance(entry, dict):
        raise _invalid("entry", "is required: the body must be a Strapi entry event")
    entry_id = entry.get("documentId") or entry.get("id")
    ref = _entry_id("strapi", model, entry_id)
    skip = _filtered(cmap, model)
    if skip:
        return Change("ignore", reason=skip)
    if action == "unpublish":
        return Change("unpublish", entry=ref)
    doc, sources = build_document("strapi", lambda path: _walk(entry, path.split(".")), cmap)
    return Change("publish", document=doc, sources=sources, entry=ref)
