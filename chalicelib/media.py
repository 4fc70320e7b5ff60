"""Media: images and PDFs staff upload under ``media/`` in the source bucket.

``MediaSync.sync(key)`` converges the public bucket's ``media/<same path>`` to
what the source holds *now*, like the publisher does for releases: a present,
allowed file is copied with its Content-Type and Cache-Control (skipped when
the public bytes are already the same), a removed file is deleted, and each
outcome is written as a receipt to ``receipts/<key>.json`` beside the sources.

Names as staff give them are published (``media/My Photo (1).jpg``, served
at ``/media/My%20Photo%20(1).jpg``), but only path-safe ones (see
``media_key_problem``) with an allow-listed extension, and the
first bytes must match the extension: never HTML, SVG or JSON, which a browser
could run or which could shadow the site's own objects.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from typing import Protocol

from .errors import FieldError, ObjectUnreadable
from .keys import MEDIA_PREFIX, invalidation_paths, media_receipt_key, put_public, site_path
from .receipts import RECEIPT_CACHE, Receipt
from .storage import Storage, md5_etag

log = logging.getLogger("newsroom.media")

MAX_MEDIA_BYTES = 50 * 1024 * 1024
ALLOWED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".pdf")
_MAX_KEY = 300
# Characters a media name may not hold, though S3 takes them: "\\" (a path
# separator on Windows), "?" and "#" (they end a URL path), "%" (a name must read
# the same before and after percent-decoding), '"', "<", ">" (they end a link in
# HTML or Markdown) and "*" (a CloudFront invalidation wildcard).
_REFUSED = frozenset('\\?#%"<>*')
_NAME_RULE = (
    "a name may hold letters, digits, spaces and punctuation such as ( ) + , ' & ! @ $ ; = ~ [ ], "
    'but not \\ ? # % " < > * or control characters; no folder may be empty or '
    "start with a dot or a space, or end with a space"
)


class Invalidator(Protocol):
    def invalidate(self, paths: list[str]) -> None: ...


def _extension(key: str) -> str:
    dot = key.rfind(".")
    return key[dot:].lower() if dot > key.rfind("/") else ""


def media_key_problem(key: str) -> str | None:
    """Why ``key`` may not be published as media, or ``None`` if it may."""
    if not key.startswith(MEDIA_PREFIX):
        return "is not under media/"
    if len(key) > _MAX_KEY:
        return f"is not a safe media path: it is longer than {_MAX_KEY} characters"
    for part in key[len(MEDIA_PREFIX) :].split("/"):
        why = _segment_problem(part)
        if why is not None:
            return f"is not a safe media path: {why} ({_NAME_RULE})"
    if _extension(key) not in ALLOWED_EXTENSIONS:
        return "has a file type that is not published; allowed: " + ", ".join(
            e.lstrip(".") for e in ALLOWED_EXTENSIONS
        )
    return None


def _segment_problem(part: str) -> str | None:
    if not part:
        return "it has an empty folder name"
    if part[0] == "." or part[0].isspace() or part[-1].isspace():
        return f"{part!r} starts with a dot or a space, or ends with a space"
    if ".." in part:
        return f"{part!r} holds '..'"
    for c in part:
        if c in _REFUSED:
            return f"it holds {c!r}"
        if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or _noncharacter(c):
            return f"it holds the control character U+{ord(c):04X}"
    return None


def _noncharacter(c: str) -> bool:
    cp = ord(c)
    return 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE


def _matches_extension(key: str, head: bytes) -> bool:
    ext = _extension(key)
    if ext in (".jpg", ".jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if ext == ".png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if ext == ".gif":
        return head.startswith((b"GIF87a", b"GIF89a"))
    if ext == ".webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if ext == ".avif":
        return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis")
    if ext == ".pdf":
        return head.startswith(b"%PDF-")
    return False


class MediaSync:
    def __init__(
        self,
        source: Storage,
        public: Storage,
        site_url: str,
        *,
        invalidator: Invalidator | None = None,
    ) -> None:
        self.source = source
        self.public = public
        self.site_url = site_url
        self.invalidator = invalidator
        self.changed: list[str] = []  # public keys the last sync wrote or deleted

    def sync(self, key: str, *, referenced: bool = True) -> Receipt:
        """Converge ``media/<path>`` in the public bucket to the source's current
        state: public while ``referenced`` by a public release (and valid),
        absent otherwise. Statuses: ``published``, ``held`` (valid, waiting for
        a public release to reference it), ``removed``, ``rejected``."""
        started = time.perf_counter()
        receipt, changed = self._sync(key, referenced)
        self.changed = changed
        if self.invalidator is not None and changed:
            self.invalidator.invalidate([p for k in changed for p in invalidation_paths(k)])
        if key.startswith(MEDIA_PREFIX):
            self.source.put(
                media_receipt_key(key),
                receipt.to_bytes(),
                content_type="application/json",
                cache_control=RECEIPT_CACHE,
            )
        log.info(
            "media_processed",
            extra={
                "source_key": key,
                "outcome": receipt.status,
                "errors": [e.as_dict() for e in receipt.errors],
                "changed": changed,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return receipt

    def _sync(self, key: str, referenced: bool) -> tuple[Receipt, list[str]]:
        url = self.site_url + site_path(key)
        problem = media_key_problem(key)
        if problem is not None:
            changed: list[str] = []
            # a safe path of a refused type must not stay public either
            if key.startswith(MEDIA_PREFIX) and "is not a safe" not in problem:
                changed = self._remove(key)
            return Receipt(
                key,
                "rejected",
                errors=[FieldError("(file)", problem)],
                message="not published",
            ), changed
        info = self.source.head(key)
        if info is None:
            return Receipt(
                key, "removed", message="the source file is gone; removed from the site"
            ), self._remove(key)
        if info.size > MAX_MEDIA_BYTES:
            return self._reject(
                key,
                f"is {info.size:,} bytes; a media file may be at most "
                f"{MAX_MEDIA_BYTES // (1024 * 1024)} MiB",
            ), []
        try:
            obj = self.source.get(key)
        except ObjectUnreadable as exc:  # archived, or SSE-C: no retry reads it
            return self._reject(key, exc.why), []
        if obj is None:  # deleted between the two reads: the delete event follows
            return Receipt(key, "removed", message="the source file is gone"), self._remove(key)
        if not _matches_extension(key, obj.body[:16]):
            return self._reject(
                key,
                f"does not look like a {_extension(key).lstrip('.').upper()} file; "
                "check the file type and its name",
            ), []
        if not referenced:
            removed = self._remove(key)
            return Receipt(
                key,
                "removed" if removed else "held",
                url=url,
                message="not public: no public release references it (media follow "
                "releases: it goes live with the first public release that uses it)",
            ), removed
        current = self.public.head(key)
        if current is not None and current.etag == md5_etag(obj.body):
            return Receipt(key, "published", url=url, message="live on the site (unchanged)"), []
        put_public(self.public, key, obj.body)
        return Receipt(key, "published", url=url, message="live on the site"), [key]

    def _reject(self, key: str, message: str) -> Receipt:
        note = "not published; fix the file and upload it again"
        if self.public.head(key) is not None:
            note += "; the previously published version stays live"
        return Receipt(key, "rejected", errors=[FieldError("(file)", message)], message=note)

    def _remove(self, key: str) -> list[str]:
        if self.public.head(key) is None:
            return []
        self.public.delete(key)
        return [key]
