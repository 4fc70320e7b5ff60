"""The port itself: what a stored object is, the verbs, the request counters,
and the conditional write every read-modify-write commits with."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import PreconditionFailed


@dataclass(frozen=True)
class StoredObject:
    """``size``: the object's size in bytes; when it is larger than the
    reader's ``limit`` the body is left unread (empty) and only ``size`` tells."""

    key: str
    body: bytes
    etag: str
    size: int | None = None

    @property
    def unread(self) -> bool:
        return self.size is not None and self.size > len(self.body)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells: enough to skip a copy whose bytes did not change."""

    key: str
    etag: str
    size: int


@dataclass
class Counters:
    """Requests and bytes, for the structured log line and the benchmarks."""

    requests: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, op: str, written: int = 0) -> None:
        with self._lock:  # requests of one step run on several threads
            self.requests[op] = self.requests.get(op, 0) + 1
            self.bytes_written += written

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class Storage(Protocol):
    counters: Counters

    def get(self, key: str, *, limit: int | None = None) -> StoredObject | None: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        cache_control: str,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str: ...

    def delete(self, key: str, *, if_match: str | None = None) -> None: ...

    def delete_many(self, keys: list[str]) -> None: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...


def md5_etag(body: bytes) -> str:
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


def put_if_unchanged(
    storage: Storage,
    key: str,
    body: bytes,
    etag: str | None,
    *,
    content_type: str,
    cache_control: str,
) -> str | None:
    """The commit step of every read-modify-write: write only if ``key`` still
    has the ETag that was read (``None``: still absent). Returns the new ETag,
    or ``None`` when another writer got there first and the caller must re-read."""
    try:
        return storage.put(
            key,
            body,
            content_type=content_type,
            cache_control=cache_control,
            if_match=etag,
            if_none_match=etag is None,
        )
    except PreconditionFailed:
        return None
