"""Media reference markers: ``state/media-refs/<media key>=/<source key>``, one
per release that references a media file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote

from ..core.index import Entry
from ..keys import (
    MEDIA_REFS_PREFIX,
)
from ..storage import Storage
from .objects import _put_private


def media_ref_prefix(media_key: str) -> str:
    return f"{MEDIA_REFS_PREFIX}{quote(media_key, safe='/')}=/"


def add_media_refs(storage: Storage, source_key: str, keys: Iterable[str]) -> None:
    for key in keys:
        _put_private(storage, media_ref_prefix(key) + quote(source_key, safe="/"), b"")


def drop_media_refs(storage: Storage, source_key: str, keys: Iterable[str]) -> None:
    for key in keys:
        storage.delete(media_ref_prefix(key) + quote(source_key, safe="/"))


def media_referenced(
    storage: Storage, media_key: str, lookup: Callable[[str], Entry | None]
) -> bool:
    """Whether a public release references ``media_key`` now: a marker whose
    source's committed entry does (stale markers are passed over)."""
    prefix = media_ref_prefix(media_key)
    for marker in storage.list(prefix):
        entry = lookup(unquote(marker[len(prefix) :]))
        if entry is not None and media_key in entry.media:
            return True
    return False
