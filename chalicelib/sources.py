"""Reading the sources: what the public site should show for each key of a batch, now."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .core.index import Entry, source_digest
from .core.model import MAX_BYTES, Release, parse_release
from .errors import FieldError, InvalidRelease, ObjectUnreadable, StorageError
from .storage import StoredObject

log = logging.getLogger("newsroom.publisher")


@dataclass(frozen=True)
class _Wanted:
    """One read of a source key: ``published`` (entry and page set),
    ``scheduled`` (release set, nothing public), ``unpublished`` (the file is
    gone) or ``rejected`` (error set)."""

    status: str
    release: Release | None = None
    entry: Entry | None = None
    page: bytes | None = None
    error: InvalidRelease | None = None


def unrenderable(exc: Exception) -> FieldError:
    """The error of a file that parsed but could not be rendered: its own
    rejection, never a crash of the batch (or of every later schedule run or
    rebuild step)."""
    msg = f"could not be rendered ({type(exc).__name__}: {exc}); fix the file and upload it again"
    return FieldError("(file)", msg)


def _poison(source_key: str, exc: Exception) -> _Wanted:
    return _Wanted("rejected", error=InvalidRelease([unrenderable(exc)], source_key))


def unreadable(exc: ObjectUnreadable) -> FieldError:
    """The error of a file S3 will not give anyone (archived, SSE-C)."""
    return FieldError("(file)", exc.why)


def _unreadable(source_key: str, exc: ObjectUnreadable) -> _Wanted:
    return _Wanted("rejected", error=InvalidRelease([unreadable(exc)], source_key))


class _Unread:
    pass


_UNREAD = _Unread()


class SourceReading:
    """The publisher's sources (a part of ``Publisher``; its attributes are set there)."""

    def _wanted(
        self,
        source_key: str,
        now: datetime,
        cache: dict[str, _Wanted],
        obj: StoredObject | None | _Unread = _UNREAD,
    ) -> _Wanted:
        """Read the source now (unless ``obj`` is what was just read): what
        the public site should show for it. Parsed and rendered once per
        version (the ETag) within one batch."""
        if isinstance(obj, _Unread):
            try:
                obj = self.source.get(source_key, limit=MAX_BYTES)
            except ObjectUnreadable as exc:
                return _unreadable(source_key, exc)
        if obj is None:
            return _Wanted("unpublished")
        if obj.etag in cache:
            return cache[obj.etag]
        try:
            release = parse_release(obj.body, name=source_key, size=obj.size)
        except InvalidRelease as exc:
            wanted = _Wanted("rejected", error=exc)
        except Exception as exc:  # noqa: BLE001 - a poison file must not stop the batch
            wanted = _poison(source_key, exc)
        else:
            if release.is_scheduled(now):
                wanted = _Wanted("scheduled", release=release)
            else:
                # read outside the poison guard: a storage fault is retried, never a rejection
                versions = self.versions.lookup(source_key, release)
                try:
                    rendered = self.renderer.release(release, versions)
                    self.versions.rendered(source_key, release.slug, rendered.revision, versions)
                    entry = self.renderer.entry(
                        release,
                        rendered,
                        source_key=source_key,
                        source_digest=source_digest(obj.body),
                    )
                    entry.json_text  # noqa: B018 - an entry that cannot be encoded is poison too
                except Exception as exc:  # noqa: BLE001
                    wanted = _poison(source_key, exc)
                else:
                    wanted = _Wanted("published", release, entry, rendered.page)
        cache[obj.etag] = wanted
        return wanted

    def _read_sources(
        self,
        keys: list[str],
        now: datetime,
        cache: dict[str, _Wanted],
        failed: dict[str, Exception],
        along: Sequence[Callable[[], object]] = (),
    ) -> dict[str, _Wanted]:
        """What each key wants now (faults of one key's read fail only that
        key); ``along``: reads that do not depend on the sources (the hints
        their names imply), sent in the same step."""
        out: dict[str, _Wanted] = {}
        keys = [k for k in keys if k not in failed]

        def read(key: str) -> StoredObject | None | StorageError:
            try:
                # a file over the limit is rejected unread: never held in memory
                return self.source.get(key, limit=MAX_BYTES)
            except StorageError as exc:
                return exc

        # the reads at once; parsing and rendering (CPU) one after the other
        objs = self.pool.run([*(lambda k=k: read(k) for k in keys), *along])[: len(keys)]
        for key, obj in zip(keys, objs, strict=True):
            try:
                if isinstance(obj, ObjectUnreadable):
                    out[key] = _unreadable(key, obj)
                    continue
                if isinstance(obj, StorageError):
                    raise obj
                out[key] = self._wanted(key, now, cache.setdefault(key, {}), obj)  # type: ignore[arg-type]
            except StorageError as exc:
                failed[key] = exc  # only this key's messages come back
        return out
