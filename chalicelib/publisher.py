"""The publisher: bring the public site in line with one source key's *current* state.

An S3 event is only a hint that ``releases/<name>.json`` changed. ``sync`` reads
what the source bucket holds now and converges the public bucket to it, so
duplicated, late and reordered events all end in the same site.

Write order (so no reader sees a listing that links to a missing page, and a
Lambda retry of the same event completes the job):

1. the release page;
2. every shared object whose inputs changed (``site.plan`` diff), rendered
   from the index as it will be;
3. ``index.json`` with ``IfMatch`` on the ETag read in this attempt — the
   commit point. On 412/409 the attempt starts over from a fresh read, and the
   final attempt rewrites every shared object an earlier attempt touched;
4. deletions: obsolete shared objects, then withdrawn release pages (tracked in
   the index's ``withdrawing`` list until gone, so a crash cannot orphan them).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote

from .core.index import Entry, Index, Withdrawal, source_digest
from .core.model import Release, parse_release
from .core.render import Renderer
from .core.site import Page, changed_keys, plan, render_page
from .errors import FieldError, InvalidRelease, SlugConflict, StorageError
from .keys import (
    INDEX_KEY,
    SCHEDULE_KEY,
    cache_control,
    content_type,
    invalidation_paths,
    is_release_key,
    receipt_key,
    release_key,
)
from .lease import Lease
from .receipts import (
    RECEIPT_CACHE,
    Receipt,
    Scheduled,
    schedule_from_bytes,
    update_schedule,
)
from .storage import Storage, put_if_unchanged

log = logging.getLogger("newsroom.publisher")


class Invalidator(Protocol):
    def invalidate(self, paths: list[str]) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Change:
    """What one convergence wrote and deleted in the public bucket."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    attempts: int = 0

    @property
    def paths(self) -> list[str]:
        out: list[str] = []
        for key in [*self.written, *self.deleted]:
            out.extend(invalidation_paths(key))
        return sorted(set(out))


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


def _write_order(key: str) -> tuple[bool, int, str]:
    # topic pages first (a new release page links to them), then deeper keys
    # before shallower: a month or year page exists before the index pages
    # that link to it, a topic's feed before the topic page that links to it.
    # Deletions run in the reverse order.
    return (not key.startswith("topics/") or key.count("/") < 2, -key.count("/"), key)


class Publisher:
    def __init__(
        self,
        source: Storage,
        public: Storage,
        renderer: Renderer,
        *,
        invalidator: Invalidator | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 25,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        lease: Lease | None = None,
    ) -> None:
        self.source = source
        self.lease = lease  # queues bursts; correctness rests on the IfMatch commit
        self._index_cache: tuple[str, Index] | None = None
        self._index_read = Index()  # the index as this sync's latest attempt read it
        self._plans: list[tuple[tuple[Entry, ...], dict[str, Page]]] = []
        self.public = public
        self.renderer = renderer
        self.settings = renderer.settings
        self.invalidator = invalidator
        self.clock = clock
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.conflicts = 0  # retried conditional writes, for stress figures

    # Public entry points ---------------------------------------------------------
    def sync(self, source_key: str) -> Receipt:
        """Converge the public site to what ``source_key`` holds now; write its receipt.

        An infrastructure failure is logged (``release_failed``: the source key,
        the S3 key that failed, the error) and re-raised, so Lambda retries."""
        started = time.perf_counter()
        before = self.source.counters.total + self.public.counters.total
        try:
            with self.lease.held() if self.lease is not None else nullcontext():
                return self._sync_and_record(source_key)
        except Exception as exc:
            log.error(
                json.dumps(
                    {
                        "event": "release_failed",
                        "source_key": source_key,
                        "failing_key": getattr(exc, "key", None) or None,
                        "error_type": type(exc).__name__,
                        "error": str(exc),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "s3_requests": self.source.counters.total
                        + self.public.counters.total
                        - before,
                    },
                    ensure_ascii=False,
                )
            )
            raise

    def _invalidate(self, source_key: str, paths: list[str], receipt: Receipt) -> None:
        """Refresh CloudFront, retried in place: a Lambda retry would find the
        site already converged and so would not know which paths to refresh.
        A lasting failure becomes a receipt warning and an error log line."""
        for attempt in range(1, 4):
            try:
                self.invalidator.invalidate(paths)  # type: ignore[union-attr]
                return
            except StorageError as exc:
                if attempt < 3:
                    self._pause(attempt + 3)
                    continue
                log.error(
                    json.dumps(
                        {
                            "event": "invalidation_failed",
                            "source_key": source_key,
                            "paths": paths,
                            "error": str(exc),
                        },
                        ensure_ascii=False,
                    )
                )
                receipt.warnings.append(
                    FieldError(
                        "(site)",
                        "the pages are updated, but CloudFront could not be told to refresh "
                        f"them ({exc}); cached copies may show for up to an hour — run "
                        "`newsroom rebuild` or invalidate the paths listed in `changed`",
                    )
                )

    def _sync_and_record(self, source_key: str) -> Receipt:
        started = time.perf_counter()
        before_requests = self.source.counters.total + self.public.counters.total
        before_bytes = self.public.counters.bytes_written
        now = self.clock()
        receipt, change = self._sync(source_key, now)
        if is_release_key(source_key):
            self._converge_schedule(source_key, now, receipt.status == "scheduled")
        receipt.changed = change.paths
        if self.invalidator is not None and change.paths:
            self._invalidate(source_key, change.paths, receipt)
        receipt.processed_at = self.clock()
        self.source.put(
            receipt_key(source_key),
            receipt.to_bytes(),
            content_type="application/json",
            cache_control=RECEIPT_CACHE,
        )
        log.info(
            json.dumps(
                {
                    "event": "release_processed",
                    "source_key": source_key,
                    "slug": receipt.slug,
                    "outcome": receipt.status,
                    "errors": [e.as_dict() for e in receipt.errors],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "s3_requests": self.source.counters.total
                    + self.public.counters.total
                    - before_requests,
                    "bytes_written": self.public.counters.bytes_written - before_bytes,
                    "objects_written": len(change.written),
                    "objects_deleted": len(change.deleted),
                    "attempts": change.attempts,
                },
                ensure_ascii=False,
            )
        )
        return receipt

    def publish_due(self) -> list[Receipt]:
        """Publish every scheduled release whose embargo has passed."""
        now = self.clock()
        current = self.source.get(SCHEDULE_KEY)
        due = [
            s
            for s in schedule_from_bytes(current.body if current else None)
            if s.embargo_until <= now
        ]
        # each sync also takes its key off the schedule (see _converge_schedule)
        return [self.sync(s.source_key) for s in due]

    def scheduled(self) -> list[Scheduled]:
        current = self.source.get(SCHEDULE_KEY)
        return schedule_from_bytes(current.body if current else None)

    # The convergence -----------------------------------------------------------------
    def _sync(self, source_key: str, now: datetime) -> tuple[Receipt, Change]:
        if not is_release_key(source_key):
            err = FieldError(
                "(file)", "is not a release: only releases/<name>.json files are published"
            )
            return Receipt(source_key, "rejected", errors=[err]), Change()
        try:
            wanted, change = self._converge(source_key, now)
        except SlugConflict as exc:
            return self._rejected(source_key, exc, slug=exc.slug), Change()
        release = wanted.release
        if wanted.status == "rejected":
            return self._rejected(source_key, wanted.error), change  # type: ignore[arg-type]
        if release is None:
            taken_down = [k.split("/")[1] for k in change.deleted if k.startswith("releases/")]
            return Receipt(
                source_key,
                "unpublished",
                slug=taken_down[0] if taken_down else None,
                message="the source file is gone; the release is off the site",
            ), change
        if wanted.entry is None:
            return (
                Receipt(
                    source_key,
                    "scheduled",
                    slug=release.slug,
                    url=self.settings.site_url + release.url_path,
                    embargo_until=release.embargo_until,
                    message=f"embargoed until {release.embargo_until.isoformat()}; nothing is public yet",  # type: ignore[union-attr]
                ),
                change,
            )
        return (
            Receipt(
                source_key,
                "published",
                slug=release.slug,
                url=wanted.entry.url,
                warnings=self._media_warnings(release),
                message="live on the site",
            ),
            change,
        )

    def _wanted(self, source_key: str, now: datetime, cache: dict[str, _Wanted]) -> _Wanted:
        """Read the source now: what the public site should show for it.
        Parsed and rendered once per version (the ETag) within one sync."""
        obj = self.source.get(source_key)
        if obj is None:
            return _Wanted("unpublished")
        if obj.etag in cache:
            return cache[obj.etag]
        try:
            release = parse_release(obj.body, name=source_key)
        except InvalidRelease as exc:
            wanted = _Wanted("rejected", error=exc)
        else:
            if release.is_embargoed(now):
                wanted = _Wanted("scheduled", release=release)
            else:
                rendered = self.renderer.release(release)
                entry = Entry.from_release(
                    release,
                    source_key=source_key,
                    site_url=self.settings.site_url,
                    summary=rendered.summary,
                    revision=rendered.revision,
                    source_digest=source_digest(obj.body),
                )
                wanted = _Wanted("published", release, entry, rendered.page)
        cache[obj.etag] = wanted
        return wanted

    def _rejected(self, source_key: str, exc: InvalidRelease, slug: str | None = None) -> Receipt:
        message = "not published; fix the errors and upload again"
        # the index this sync just read (a rejection is decided after reading it)
        live = self._index_read.by_source(source_key)
        if live is not None:
            message += f"; the previously published version stays live at {live.url}"
        return Receipt(source_key, "rejected", slug=slug, errors=exc.errors, message=message)

    def _media_warnings(self, release: Release) -> list[FieldError]:
        urls: list[tuple[str, str]] = []
        if release.image is not None:
            urls.append(("image.url", release.image.url))
        urls.extend((f"attachments.{i}.url", a.url) for i, a in enumerate(release.attachments))
        warnings = []
        for loc, url in urls:
            key = unquote(url.split("?")[0].split("#")[0].lstrip("/"))
            # a HEAD, not a GET: media files can be large
            if url.startswith("/media/") and self.public.head(key) is None:
                warnings.append(
                    FieldError(
                        loc, f"{url} does not exist yet; upload it to media/ in the source bucket"
                    )
                )
        return warnings

    def _parsed_index(self, raw: bytes | None, etag: str | None) -> Index:
        """``index.json`` parsed, reusing the last parse when the ETag is the one
        this publisher last read or wrote (a warm Lambda's next event)."""
        if etag is not None and self._index_cache is not None and self._index_cache[0] == etag:
            index = self._index_cache[1]
        else:
            index = Index.from_bytes(raw)
            if etag is not None:
                self._index_cache = (etag, index)
        self._index_read = index
        return index

    def _plan(self, index: Index) -> dict[str, Page]:
        """``site.plan`` memoised on the entries (the only input besides the
        renderer), so an unchanged index is not planned twice."""
        for entries, planned in self._plans:
            if entries is index.entries:
                return planned
        planned = plan(index, self.renderer)
        self._plans = [(index.entries, planned), *self._plans[:1]]
        return planned

    def _read_index(self) -> tuple[bytes | None, str | None]:
        current = self.public.get(INDEX_KEY)
        return (current.body, current.etag) if current else (None, None)

    def _converge(self, source_key: str, now: datetime) -> tuple[_Wanted, Change]:
        """Optimistic loop with ``index.json`` as the commit point. Each attempt
        reads the index, *then* the source (so an attempt that commits after
        another sync's commit also read the source after it: a stale read never
        overwrites a newer version), writes what changed, deletes what is
        obsolete, and commits with ``IfMatch``. On 412/409 it starts over; keys
        an earlier attempt wrote or deleted are redone from the fresh state."""
        change = Change()
        dirty: set[str] = set()
        cache: dict[str, _Wanted] = {}
        acting: _Wanted | None = None  # what the pages written so far were for
        renderer = self.renderer
        for attempt in range(1, self.max_attempts + 1):
            change.attempts = attempt
            raw, etag = self._read_index()
            old = self._parsed_index(raw, etag)
            fresh_theme = raw is not None and old.theme == renderer.theme
            prev = old.by_source(source_key)
            wanted = self._wanted(source_key, now, cache)
            if wanted.status != "rejected":
                acting = wanted
            elif acting is None:
                return wanted, change  # invalid: the live version (if any) stays
            # else: replaced by an invalid file after an earlier attempt wrote
            # pages; finish that version so the site stays consistent
            entry, page = acting.entry, acting.page
            if entry is not None:
                holder = old.slug_holder(entry.slug)
                if holder is not None and holder != source_key:
                    if not dirty:
                        raise SlugConflict(entry.slug, holder, source_key)
                    entry, page = prev, None  # lost the slug mid-sync: keep what is live
                elif holder is None:
                    # claim the slug in the index before writing its page, so a
                    # page is only ever written under a slug this source holds
                    claimed = old.with_withdrawal(Withdrawal(entry.slug, source_key))
                    etag = self._put_index(claimed, etag)
                    if etag is None:
                        self._contended(attempt)
                        continue
                    old = claimed
            new = old.with_theme(renderer.theme)
            new = new.with_entry(entry) if entry is not None else new.without_source(source_key)
            # pages this source no longer owns: an unpublish, a slug change, or a
            # withdrawal a crashed earlier run left unfinished
            gone = {w for w in old.withdrawing if w.source_key == source_key}
            if prev is not None and (entry is None or prev.slug != entry.slug):
                gone.add(Withdrawal(prev.slug, source_key))
            gone = {w for w in gone if entry is None or w.slug != entry.slug}
            for w in {w for w in old.withdrawing if w.source_key == source_key} - gone:
                new = new.without_withdrawal(w)  # (re)published under this slug
            for w in gone:
                new = new.with_withdrawal(w)
            if new == old and not dirty:
                # already converged (a duplicate or late event), except perhaps
                # for page deletions a crash interrupted after the commit
                if gone:
                    self._finish_withdrawals(gone, change)
                return wanted, change

            old_plan = self._plan(old) if fresh_theme else {}
            new_plan = self._plan(new)
            write, obsolete = changed_keys(old_plan, new_plan)
            to_write = sorted((set(write) | dirty) & new_plan.keys(), key=_write_order)
            to_delete = sorted(
                (set(obsolete) | dirty) - new_plan.keys(), key=_write_order, reverse=True
            )
            page_key = release_key(entry.slug) if entry is not None else ""
            if page is None or not (
                prev is None
                or prev.revision != entry.revision  # type: ignore[union-attr]
                or prev.slug != entry.slug  # type: ignore[union-attr]
                or not fresh_theme
            ):
                page_key = ""
            if page_key and (prev is None or prev.slug != entry.slug):  # type: ignore[union-attr]
                # a new page first: nothing links to it until the listings do
                self._put(page_key, page, change)  # type: ignore[arg-type]
                page_key = ""
            for key in to_write:
                body = render_page(key, new_plan[key], renderer, new)
                # inputs changed but the bytes may not have (a body edit changes
                # the entry, not the front page): the public object was rendered
                # from old_plan under this theme, so compare bytes, no I/O
                if key not in dirty and key in old_plan:
                    if render_page(key, old_plan[key], renderer, old) == body:
                        continue
                self._put(key, body, change)
                dirty.add(key)
            if page_key:
                # an updated page last: the topic pages it links to exist by now
                self._put(page_key, page, change)  # type: ignore[arg-type]
            # obsolete pages go before the commit, inside this attempt: a
            # concurrent publish that needs one again commits after us and
            # rewrites it, and a crash cannot leave one behind
            for key in to_delete:
                self.public.delete(key)
                dirty.add(key)
                if key not in change.deleted:
                    change.deleted.append(key)
            committed = self._put_index(new, etag)
            if committed is None:
                self._contended(attempt)
                continue
            self._index_cache = (committed, new)
            change.written.append(INDEX_KEY)
            change.deleted = [k for k in change.deleted if k not in new_plan]
            if gone:
                self._finish_withdrawals(gone, change)
            return wanted, change
        raise StorageError(
            f"index.json kept changing under {self.max_attempts} attempts to sync {source_key}; "
            "giving up so Lambda retries the event",
            INDEX_KEY,
        )

    def _finish_withdrawals(self, gone: Iterable[Withdrawal], change: Change) -> None:
        gone = set(gone)
        for w in sorted(gone, key=lambda w: w.slug):
            self.public.delete(release_key(w.slug))
            change.deleted.append(release_key(w.slug))
        for attempt in range(1, self.max_attempts + 1):
            raw, etag = self._read_index()
            current = Index.from_bytes(raw)
            cleared = current
            for w in gone:
                if current.by_slug(w.slug) is not None:
                    # someone republished this slug while we were deleting: put
                    # its page back by converging that source again
                    holder = current.by_slug(w.slug)
                    cleared = cleared.without_withdrawal(w)
                    self._restore(holder.source_key)  # type: ignore[union-attr]
                    continue
                cleared = cleared.without_withdrawal(w)
            if cleared == current:
                return
            if self._put_index(cleared, etag) is not None:
                return
            self._contended(attempt)
        raise StorageError("could not clear finished withdrawals from index.json", INDEX_KEY)

    def _put_index(self, index: Index, etag: str | None) -> str | None:
        """Write ``index.json`` over the version read; ``None`` if it changed since."""
        return put_if_unchanged(
            self.public,
            INDEX_KEY,
            index.to_bytes(),
            etag,
            content_type="application/json",
            cache_control=cache_control(INDEX_KEY),
        )

    def _restore(self, source_key: str) -> None:
        obj = self.source.get(source_key)
        if obj is None:
            return
        try:
            release = parse_release(obj.body, name=source_key)
        except InvalidRelease:
            return
        key = release_key(release.slug)
        self.public.put(
            key,
            self.renderer.release(release).page,
            content_type=content_type(key),
            cache_control=cache_control(key),
        )

    def _put(self, key: str, body: bytes, change: Change) -> None:
        self.public.put(key, body, content_type=content_type(key), cache_control=cache_control(key))
        if key not in change.written:
            change.written.append(key)

    def _contended(self, attempt: int) -> None:
        """A conditional write lost a race: count it, wait a jittered, growing pause."""
        self.conflicts += 1
        self._pause(attempt)

    def _pause(self, attempt: int) -> None:
        ceiling = min(self.max_backoff, self.backoff * (2 ** min(attempt, 10)))
        self.sleep(random.uniform(0, ceiling))

    def _converge_schedule(self, source_key: str, now: datetime, scheduled: bool) -> None:
        """Make the schedule's entry for ``source_key`` match the source *now*:
        listed while its embargo (as of ``now``) runs, gone otherwise. The source
        is re-read after the schedule, and the write is conditional on the
        schedule's ETag, so an upload racing this sync (or an overlapping
        ``publish_due`` run) cannot lose a newer embargo."""

        def edit(items: list[Scheduled]) -> list[Scheduled] | None:
            if not scheduled and all(s.source_key != source_key for s in items):
                return None  # the common case: one small read
            want = self._wanted_schedule(source_key, now)
            return [s for s in items if s.source_key != source_key] + ([want] if want else [])

        update_schedule(self.source, edit, attempts=self.max_attempts, on_conflict=self._contended)

    def _wanted_schedule(self, source_key: str, now: datetime) -> Scheduled | None:
        obj = self.source.get(source_key)
        if obj is None:
            return None
        try:
            release = parse_release(obj.body, name=source_key)
        except InvalidRelease:
            return None
        if release.embargo_until is None or release.embargo_until <= now:
            return None
        return Scheduled(source_key, release.slug, release.embargo_until)
