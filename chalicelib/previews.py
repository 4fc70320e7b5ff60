"""Private previews of scheduled releases (contract section 3).

While a release waits for its publication instant, staff want to see the page
as readers will, without anything of it reaching the public bucket. The
preview is the release page from the same renderer and templates
(``preview.html`` adds a banner and ``noindex``), stored privately in the
*source* bucket at ``previews/<name>/index.html`` and handed out as a
presigned GET URL. The publisher ignores ``previews/`` and S3 announces only
``releases/`` and ``media/`` changes, so storing one triggers nothing.

The page is served by S3 from a presigned URL, not by the site, so its site
paths are made reachable from there: ``/media/…`` paths point at presigned
URLs of the source bucket's ``media/…`` objects (which may not be public yet,
and must not be made so), every other site path at the public site, and the
stylesheet is inlined so the preview looks right even on an empty site.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from .core.references import media_source_key
from .core.render import Renderer
from .keys import HTML, PRIVATE_CACHE, preview_key
from .storage import Storage

PREVIEW_TTL_SECONDS = 7 * 24 * 3600  # SigV4's longest presigned URL

# every URL-valued attribute our templates and the body sanitizer emit; the
# renderer always double-quotes attribute values
_URL_ATTR = re.compile(r'(\s(?:href|src|cite|content)=")([^"]*)(")')


class PresigningStorage(Storage, Protocol):
    def presign(self, key: str, expires_in: int) -> str: ...


def point_links(page: str, site_url: str, media_url: Callable[[str], str]) -> str:
    """Make a page's site paths work from outside the site: ``/media/…`` (also
    written absolutely, as in ``og:image``) -> ``media_url(source key)``,
    keeping a ``#fragment``; any other root-relative path -> the public site.
    ``content`` attributes are touched only when they name a media URL, so a
    description that happens to start with ``/`` stays text."""
    absolute_media = site_url + "/media/"

    def target(attr: str, value: str) -> str | None:
        if value.startswith(absolute_media):
            value = value[len(site_url) :]
        elif attr == "content":
            return None
        if not value.startswith("/") or value.startswith("//"):
            return None
        key = media_source_key(value)
        if key is None:
            return site_url + value
        fragment = value.partition("#")[2]
        return media_url(key) + (f"#{fragment}" if fragment else "")

    def sub(m: re.Match[str]) -> str:
        attr = m.group(1).strip()[:-2]
        new = target(attr, html.unescape(m.group(2)))
        if new is None:
            return m.group(0)
        return m.group(1) + html.escape(new, quote=True) + m.group(3)

    return _URL_ATTR.sub(sub, page)


def preview_url(
    source: PresigningStorage, source_key: str, ttl: int = PREVIEW_TTL_SECONDS
) -> str | None:
    """A fresh link to the stored preview of ``source_key`` (signed with the
    caller's credentials), or ``None`` when there is none."""
    key = preview_key(source_key)
    if source.head(key) is None:
        return None
    return source.presign(key, ttl)


class Previews:
    """The ``listeners.PreviewStore`` the publisher calls: ``put`` when a
    release is scheduled (again), ``remove`` when it goes public or its source
    is deleted. Both are idempotent; ``put`` re-renders every time, so the
    links inside (media included) are valid as long as the returned URL."""

    def __init__(
        self, source: PresigningStorage, renderer: Renderer, *, ttl: int = PREVIEW_TTL_SECONDS
    ) -> None:
        self.source = source
        self.renderer = renderer
        self.ttl = ttl

    def page(self, release: Any, publish_at: datetime, versions: tuple = ()) -> bytes:
        """``versions``: its language versions once it is public (itself included)."""
        raw = self.renderer.preview(release, publish_at, versions).decode("utf-8")
        site_url = self.renderer.settings.site_url
        return point_links(raw, site_url, lambda key: self.source.presign(key, self.ttl)).encode()

    def put(self, source_key: str, release: Any, publish_at: datetime, versions: tuple = ()) -> str:
        key = preview_key(source_key)
        self.source.put(
            key,
            self.page(release, publish_at, versions),
            content_type=HTML,
            cache_control=PRIVATE_CACHE,
        )
        return self.source.presign(key, self.ttl)

    def remove(self, source_key: str) -> None:
        self.source.delete(preview_key(source_key))

    def url(self, source_key: str) -> str | None:
        return preview_url(self.source, source_key, self.ttl)
