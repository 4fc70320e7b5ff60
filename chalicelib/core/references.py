"""Which media files a release references: ``media/<name>`` keys from the
paths (``/media/My%20Photo%20(1).jpg``) in its image, attachments and body.
Media follow releases, so these keys decide what of ``media/`` is public."""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

from ..keys import MEDIA_PREFIX
from .model import Release

_MEDIA_PATH = re.compile(r"""(?:^|(?<=[\s("'=\[<]))/media/([^\s"<>?#]+)""")
_ENTITY = re.compile(r"&#?\w+;")
_CLOSE = {")": "(", "]": "["}


def _path_end(path: str, quoted: bool) -> str:
    """``path`` up to its first ``)`` or ``]`` that closes nothing (the end of a
    Markdown link or its text), or its ``'`` when it sits in single quotes; so
    ``[a](/media/My%20Photo%20(1).jpg)`` is whole. Entities (``&amp;``) decoded."""
    depth = {"(": 0, "[": 0}
    for i, c in enumerate(path):
        if c in depth:
            depth[c] += 1
        elif c in _CLOSE:
            if depth[_CLOSE[c]] == 0:
                path = path[:i]
                break
            depth[_CLOSE[c]] -= 1
        elif c == "'" and quoted:
            path = path[:i]
            break
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), path)


def body_media_paths(body: str) -> list[str]:
    """The ``/media/<name>`` paths (percent-encoded, entities decoded) of the links
    and images in a release body, Markdown or HTML."""
    if "/media/" not in body:  # the pattern costs a scan of the whole body
        return []
    found = (
        _path_end(m.group(1), m.start() > 0 and body[m.start() - 1] == "'")
        for m in _MEDIA_PATH.finditer(body)
    )
    return ["/media/" + p for p in found if p]


def media_source_key(path: str) -> str | None:
    """The source key a ``/media/…`` site path names (query and fragment
    dropped, percent-escapes decoded), or ``None`` for any other path."""
    path = path.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/" + MEDIA_PREFIX):
        return None
    key = unquote(path[1:])
    return key if len(key) > len(MEDIA_PREFIX) else None


def media_refs(release: Release, site_url: str = "") -> tuple[str, ...]:
    """``media/<name>`` keys a release references: its image, its attachments,
    and any link or image in the body whose path is ``/media/<name>`` (written
    as a site path, or absolute on the site's own URL)."""
    urls = [release.image.url] if release.image is not None else []
    urls += [a.url for a in release.attachments]
    body = release.body.replace(site_url + "/media/", "/media/") if site_url else release.body
    paths = [url[len(site_url) :] if site_url and url.startswith(site_url + "/") else url
             for url in urls]  # fmt: skip
    keys = {media_source_key(p) for p in [*paths, *body_media_paths(body)]}
    return tuple(sorted(k for k in keys if k is not None))
