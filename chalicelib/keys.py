"""Where everything lives, and the headers it carries: the one owner of key shapes.

Source bucket (private)::

    releases/<name>.json             what staff upload
    media/<path>                     photos and PDFs staff upload
    receipts/releases/<name>.json    what happened to an upload (``receipt_key``)
    receipts/media/<path>.json       the same for a media file
    receipts/schedule.json           private state: releases waiting for their instant
    state/head.json                  private state: the commit point (newest entries,
                                     counts, pointers, withdrawals, announcements)
    state/objects/<kind>s/<name>.<token>.json
                                     private state: one month's entries, one topic's or
                                     kind's newest entries and month counts (chalicelib.state)
    state/sources/<name>.json        private state: months that may hold a source's entry
    state/slugs/<slug>.json          private state: months that may hold a slug's holder
    state/media-refs/<media>=/<source key>
                                     private state: a release referencing a media file
    state/waiting/<slug>.json        private state: files refused a slug another holds
    state/invalidations/<id>.json    private state: CDN paths whose refresh failed
    state/intents/<id>.json          private state: shared pages (and live releases'
                                     pages) a convergence is about to write before its
                                     commit (``intent_key``)
    state/versions/<key>.json        private state: the live language versions sharing
                                     one translation_key (``versions_key``)
    state/rebuilds/<id>/…            one fanned-out rebuild's manifest, chunk records
                                     and report (``rebuild_key``)
    previews/<name>/index.html       private previews of scheduled releases
    cms/…                            private state of the CMS webhooks
    search/<yyyy>-<mm>.json          the search corpus (``search_corpus_key``)
    search/state.json                private state: what update_search last indexed

Public bucket: ``releases/<slug>/index.html`` (``release_key``), ``index.json``,
the listings, feeds and sitemaps of the site plan (``core.site``),
``assets/…`` (fingerprinted), ``media/<path>`` (same key as the source), and
search: ``search/index.html`` with its fingerprinted script, and Pagefind's
bundle under ``pagefind/``: one Pagefind index per piece (a year) under
``pagefind/<piece>/`` (chunks named by content), Pagefind's script and
WebAssembly once at the top, and ``pagefind/pieces.json`` the entry point.

Every public write goes through ``put_public``, so no object reaches the public
bucket without the Content-Type and Cache-Control its key calls for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from .storage import Storage


@dataclass(frozen=True)
class Shape:
    """One family of keys, ``<prefix><name><suffix>``: how a name becomes its
    key, how a key gives its name back, and whether a key belongs."""

    prefix: str
    suffix: str = ""

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def name(self, key: str) -> str:
        return key.removeprefix(self.prefix).removesuffix(self.suffix)

    def matches(self, key: str) -> bool:
        return (
            key.startswith(self.prefix)
            and key.endswith(self.suffix)
            and len(key) > len(self.prefix) + len(self.suffix)
        )

# Source bucket -----------------------------------------------------------------
RELEASES_PREFIX = "releases/"
MEDIA_PREFIX = "media/"
RECEIPTS_PREFIX = "receipts/"
SCHEDULE_KEY = RECEIPTS_PREFIX + "schedule.json"
PREVIEW_PREFIX = "previews/"
STATE_PREFIX = "state/"
HEAD_KEY = STATE_PREFIX + "head.json"
STATE_KEY = HEAD_KEY  # the publisher's commit point (``chalicelib.state``)
LEGACY_STATE_KEY = STATE_PREFIX + "index.json"  # the single state object of earlier versions
STATE_OBJECTS_PREFIX = STATE_PREFIX + "objects/"
SOURCE_HINTS_PREFIX = STATE_PREFIX + "sources/"
SLUG_HINTS_PREFIX = STATE_PREFIX + "slugs/"
MEDIA_REFS_PREFIX = STATE_PREFIX + "media-refs/"
WAITING_PREFIX = STATE_PREFIX + "waiting/"
INVALIDATIONS_PREFIX = STATE_PREFIX + "invalidations/"
INTENTS_PREFIX = STATE_PREFIX + "intents/"


def intent_key(convergence_id: str) -> str:
    """The shared pages, and the pages of releases already live, that one
    convergence writes before its commit, recorded first, so the sweep can
    put them right if it dies before committing."""
    return f"{INTENTS_PREFIX}{convergence_id}.json"

CLAIMS_PREFIX = STATE_PREFIX + "claims/"
ANNOUNCED_PREFIX = STATE_PREFIX + "announced/"


def claim_key(slug: str) -> str:
    """A new slug's claim: created only if absent, before the slug's first
    page, so two files never both write a page under one new slug."""
    return f"{CLAIMS_PREFIX}{slug}.json"


def announced_key(convergence_id: str) -> str:
    """Written once the listeners heard one commit's announcements (or
    failed to): the next commit clears them from the head."""
    return f"{ANNOUNCED_PREFIX}{convergence_id}.json"


REBUILDS_PREFIX = STATE_PREFIX + "rebuilds/"  # one folder per fanned-out rebuild
# the theme every release page was last rendered under, by a rebuild's commit
REBUILT_THEME_KEY = REBUILDS_PREFIX + "theme.json"


def rebuild_key(rebuild_id: str, name: str) -> str:
    """A private object of one rebuild: ``manifest.json``, ``chunks/<n>.json``,
    ``failures/<n>.json``, ``report.json``."""
    return f"{REBUILDS_PREFIX}{rebuild_id}/{name}"


VERSIONS_PREFIX = STATE_PREFIX + "versions/"


def versions_key(translation_key: str) -> str:
    """The record of one translation key's versions (the key is path-safe by its rule)."""
    return f"{VERSIONS_PREFIX}{translation_key}.json"


def source_hint_key(source_key: str) -> str:
    """Which months may hold the entry of ``releases/<name>.json``."""
    return f"{SOURCE_HINTS_PREFIX}{source_key.removeprefix(RELEASES_PREFIX)}"


def slug_hint_key(slug: str) -> str:
    """Which months may hold the entry of ``slug``'s holder."""
    return f"{SLUG_HINTS_PREFIX}{slug}.json"


def waiting_key(slug: str) -> str:
    """Who waits for ``slug`` to be freed (a slug is path-safe by its rule)."""
    return f"{WAITING_PREFIX}{slug}.json"
CMS_PREFIX = "cms/"  # outside releases/, so sync_release never sees it
SEARCH_PREFIX = "search/"  # the search corpus and update_search's state
SEARCH_STATE_KEY = SEARCH_PREFIX + "state.json"


def source_key(name: str) -> str:
    """``releases/<name>.json``: the source key of a release file name (or slug)."""
    return f"{RELEASES_PREFIX}{name.removesuffix('.json')}.json"


# releases/<name>.json: what staff upload
RELEASE_SOURCE = Shape(RELEASES_PREFIX, ".json")
is_release_key = RELEASE_SOURCE.matches
release_name = RELEASE_SOURCE.name


def receipt_key(source_key: str) -> str:
    """The receipt of a release upload: ``receipts/releases/<name>.json``."""
    return RECEIPTS_PREFIX + source_key


def media_receipt_key(key: str) -> str:
    """The receipt of a media upload: ``receipts/media/<path>.json``."""
    return f"{RECEIPTS_PREFIX}{key}.json"


# search/<yyyy>-<mm>.json: the search records of one month
search_corpus_key = Shape(SEARCH_PREFIX, ".json").key


def preview_key(source_key: str) -> str:
    """``releases/<name>.json`` -> ``previews/<name>/index.html``."""
    return Shape(PREVIEW_PREFIX, "/index.html").key(release_name(source_key))


# Public bucket -----------------------------------------------------------------
INDEX_KEY = "index.json"
ASSETS_PREFIX = "assets/"
# the prefixes the site plan (and so a full rebuild) owns; media follow releases
SITE_PREFIXES = (
    RELEASES_PREFIX, "archive/", "topics/", "kinds/", "sitemaps/", "index/", ASSETS_PREFIX
)  # fmt: skip


# the public page of a release, and its site path (what links and index.json carry)
RELEASE_PAGE = Shape(RELEASES_PREFIX, "/index.html")
release_key = RELEASE_PAGE.key
is_release_page = RELEASE_PAGE.matches
release_path = Shape("/" + RELEASES_PREFIX, "/").key
stylesheet_key = Shape(ASSETS_PREFIX + "style.", ".css").key


SEARCH_PAGE_KEY = "search/index.html"
PAGEFIND_PREFIX = "pagefind/"
PAGEFIND_ENTRY_KEY = PAGEFIND_PREFIX + "pagefind-entry.json"
# the search page's entry point: the pieces of the bundle (one Pagefind index
# per year, under pagefind/<piece>/) and the languages of each
PAGEFIND_MANIFEST_KEY = PAGEFIND_PREFIX + "pieces.json"
# Pagefind names these by their content: they never change
_PAGEFIND_HASHED = re.compile(r"^pagefind/(?:[0-9-]+/)?(?:fragment|index|filter)/")
_PAGEFIND_ENTRY = re.compile(r"^pagefind/(?:[0-9-]+/)?pagefind-entry\.json$")


def is_pagefind_entry(key: str) -> bool:
    """An entry point of the bundle (the manifest, the shell's or a piece's
    ``pagefind-entry.json``): revalidated on every load."""
    return key == PAGEFIND_MANIFEST_KEY or bool(_PAGEFIND_ENTRY.match(key))


SEARCH_SCRIPT = Shape("search/search.", ".js")
search_script_key = SEARCH_SCRIPT.key
is_search_script = SEARCH_SCRIPT.matches


# Object headers ------------------------------------------------------------------
HTML = "text/html; charset=utf-8"
JSON = "application/json"
CONTENT_TYPES = {
    ".html": HTML,
    ".json": JSON,
    ".xml": "application/xml",
    ".css": "text/css",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".txt": "text/plain; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # module scripts need a JavaScript type
}
LISTING_CACHE = "public, max-age=60, s-maxage=300, stale-while-revalidate=60"
PAGE_CACHE = "public, max-age=300, s-maxage=3600, stale-while-revalidate=300"
ASSET_CACHE = "public, max-age=31536000, immutable"
MEDIA_CACHE = "public, max-age=86400"
PRIVATE_CACHE = "no-store"  # receipts and private state
ENTRY_CACHE = "no-cache"  # revalidated on every load: a rebuild deletes what it no longer names


def content_type(key: str) -> str:
    if key.endswith("feed.xml"):
        return "application/atom+xml; charset=utf-8"
    dot = key.rfind(".")
    return (
        CONTENT_TYPES.get(key[dot:].lower(), "application/octet-stream")
        if dot >= 0
        else "application/octet-stream"
    )


def cache_control(key: str) -> str:
    if key.startswith(ASSETS_PREFIX) or _PAGEFIND_HASHED.match(key) or is_search_script(key):
        return ASSET_CACHE
    if key.startswith(PAGEFIND_PREFIX) and key.endswith(".pf_meta"):
        return ASSET_CACHE
    if is_pagefind_entry(key):
        return ENTRY_CACHE
    if key.startswith(MEDIA_PREFIX):
        return MEDIA_CACHE
    if key.startswith(RELEASES_PREFIX):
        return PAGE_CACHE
    return LISTING_CACHE


# What a URL path may carry as it is: RFC 3986's sub-delimiters, ":" and "@"
# (browsers send them unencoded); everything else, a space, "[", "]" or a
# non-ASCII letter of a media name, is percent-encoded (UTF-8).
PATH_SAFE = "/!$&'()*+,;=:@"


def site_path(key: str) -> str:
    """The URL path of public ``key``, percent-encoded: ``media/My Photo (1).jpg``
    is served at ``/media/My%20Photo%20(1).jpg``. CloudFront matches an
    invalidation path against that encoded form."""
    return "/" + quote(key, safe=PATH_SAFE)


def invalidation_paths(key: str) -> list[str]:
    """CloudFront paths that serve ``key`` (``/x/`` and ``/x/index.html``)."""
    if key == "index.html":
        return ["/", "/index.html"]
    if key.endswith("/index.html"):
        return [site_path(key[: -len("index.html")]), site_path(key)]
    return [site_path(key)]


def headers(key: str) -> dict[str, str]:
    """The storage port's header arguments for public ``key``."""
    return {"content_type": content_type(key), "cache_control": cache_control(key)}


def put_public(
    storage: Storage,
    key: str,
    body: bytes,
    *,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> str:
    """Write one public object with the headers its key calls for. Returns the new ETag."""
    return storage.put(key, body, **headers(key), if_match=if_match, if_none_match=if_none_match)
