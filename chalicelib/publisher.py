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
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote

from .core.index import Announcement, Entry, Index, Withdrawal, source_digest
from .core.model import Release, parse_release
from .core.render import Renderer
from .core.site import Page, changed_keys, plan, render_page
from .errors import FieldError, InvalidRelease, SlugConflict, StorageError
from .keys import (
    INVALIDATIONS_PREFIX,
    PRIVATE_CACHE,
    RELEASES_PREFIX,
    SCHEDULE_KEY,
    STATE_KEY,
    cache_control,
    content_type,
    invalidation_paths,
    is_release_key,
    receipt_key,
    release_key,
    waiting_key,
)
from .listeners import Commit, CommitListener, PreviewStore, Published, Withdrawn
from .media import MediaSync
from .receipts import (
    RECEIPT_CACHE,
    Receipt,
    Scheduled,
    schedule_from_bytes,
    update_schedule,
)
from .storage import Storage, put_if_unchanged
from .versions import VersionRecords

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


@dataclass
class BatchOutcome:
    """What one batch did: a receipt per key it processed, and the keys an
    infrastructure fault stopped (their queue messages are retried)."""

    receipts: list[Receipt] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    change: Change = field(default_factory=Change)


def _poison(source_key: str, exc: Exception) -> _Wanted:
    """A file that parsed but could not be rendered: its own rejection, never
    a crash of the batch (or of every later schedule run)."""
    msg = f"could not be rendered ({type(exc).__name__}: {exc}); fix the file and upload it again"
    return _Wanted("rejected", error=InvalidRelease([FieldError("(file)", msg)], source_key))


def _announcements(key: str, prev: Entry | None, entry: Entry | None) -> list[Announcement]:
    """What the listeners must hear of one key's change (nothing for no change)."""
    out: list[Announcement] = []
    if entry is not None and (
        prev is None or prev.revision != entry.revision or prev.slug != entry.slug
    ):
        out.append(Announcement("published", key, entry.slug, entry.month_key, prev is None))
    if prev is not None and (
        entry is None or prev.slug != entry.slug or prev.month_key != entry.month_key
    ):
        out.append(Announcement("withdrawn", key, prev.slug, prev.month_key))
    return out


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
        listeners: Sequence[CommitListener] = (),
        previews: PreviewStore | None = None,
    ) -> None:
        self.source = source
        self.listeners = list(listeners)
        self.previews = previews
        # media follow releases: the publisher decides when a media file is public
        self.media = MediaSync(source, public, renderer.settings.site_url)
        self._index_cache: tuple[str, Index] | None = None
        self._index_read = Index()  # the index as this batch's latest attempt read it
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
        self._depth = 0  # nested batches re-rendering language versions
        # language versions: one small record per translation key (versions.py)
        self.versions = VersionRecords(
            source, self.settings.site_url, max_attempts=max_attempts, on_conflict=self._contended
        )

    # Public entry points ---------------------------------------------------------
    def sync(self, source_key: str) -> Receipt:
        """Converge one key (a batch of one); an infrastructure fault is raised."""
        outcome = self.sync_batch([source_key])
        if source_key in outcome.failed:
            raise outcome.failed[source_key]
        return outcome.receipts[0]

    def sync_batch(self, keys: Iterable[str]) -> BatchOutcome:
        """Converge the public site to what every key of the batch holds now,
        with one commit of the index; write each key's receipt.

        Bad input ends as that key's ``rejected`` receipt. An infrastructure
        fault reading one key fails only that key; one in the shared writes or
        the commit fails the whole batch (raised). Both are logged
        (``release_failed``) with the key that failed."""
        started = time.perf_counter()
        before = self._requests()
        keys = list(dict.fromkeys(keys))
        try:
            return self._sync_batch(keys, started, before)
        except Exception as exc:
            for key in keys:
                self._log_failure(key, exc, started, before)
            raise

    def _requests(self) -> int:
        return self.source.counters.total + self.public.counters.total

    def _log_failure(self, key: str, exc: Exception, started: float, before: int) -> None:
        log.error(
            json.dumps(
                {
                    "event": "release_failed",
                    "source_key": key,
                    "failing_key": getattr(exc, "key", None) or None,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "s3_requests": self._requests() - before,
                },
                ensure_ascii=False,
            )
        )

    def _sync_batch(self, keys: list[str], started: float, before: int) -> BatchOutcome:
        before_bytes = self.public.counters.bytes_written
        now = self.clock()
        outcome = BatchOutcome()
        release_keys = [k for k in keys if is_release_key(k)]
        self.versions.begin()
        wanted, conflicts, change = self._converge(release_keys, now, outcome.failed)
        outcome.change = change
        siblings = self._reconcile_versions(release_keys, wanted, outcome.failed)
        receipts: dict[str, Receipt] = {}
        for key in keys:
            if key in outcome.failed:
                continue
            if not is_release_key(key):
                err = FieldError(
                    "(file)", "is not a release: only releases/<name>.json files are published"
                )
                receipts[key] = Receipt(key, "rejected", errors=[err])
            elif key in conflicts:
                receipts[key] = self._rejected(key, conflicts[key], slug=conflicts[key].slug)
                self._wait_for(conflicts[key].slug, key)
            else:
                receipts[key] = self._receipt(key, wanted[key])
        scheduled = [k for k, r in receipts.items() if r.status == "scheduled"]
        settled = [k for k in release_keys if k in receipts]
        if settled:
            listed = self._converge_schedule(settled, now, set(scheduled))
            if self.previews is not None:
                for key in sorted(listed - set(scheduled)):
                    self.previews.remove(key)  # public now, or deleted
        paths = change.paths
        if self.invalidator is not None and paths:
            for r in receipts.values():
                r.changed = paths
            self._invalidate(settled, paths, list(receipts.values()))
        elif paths:
            for r in receipts.values():
                r.changed = paths
        for key, receipt in receipts.items():
            receipt.processed_at = self.clock()
            try:
                self.source.put(
                    receipt_key(key),
                    receipt.to_bytes(),
                    content_type="application/json",
                    cache_control=RECEIPT_CACHE,
                )
            except StorageError as exc:
                outcome.failed[key] = exc
                self._log_failure(key, exc, started, before)
                continue
            outcome.receipts.append(receipt)
            log.info(
                json.dumps(
                    {
                        "event": "release_processed",
                        "source_key": key,
                        "slug": receipt.slug,
                        "outcome": receipt.status,
                        "errors": [e.as_dict() for e in receipt.errors],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "s3_requests": self._requests() - before,
                        "bytes_written": self.public.counters.bytes_written - before_bytes,
                        "objects_written": len(change.written),
                        "objects_deleted": len(change.deleted),
                        "attempts": change.attempts,
                        "batch_size": len(keys),
                    },
                    ensure_ascii=False,
                )
            )
        for key, exc in outcome.failed.items():
            if key not in receipts:
                self._log_failure(key, exc, started, before)
        freed = [
            k[len(RELEASES_PREFIX) : -len("/index.html")]
            for k in change.deleted
            if k.startswith(RELEASES_PREFIX) and k.endswith("/index.html")
        ]
        claimants = [k for k in self._hand_over(freed) if k not in keys]
        if claimants:
            more = self.sync_batch(claimants)
            outcome.receipts.extend(more.receipts)
            outcome.failed.update(more.failed)
        if siblings:
            self._rerender_versions(siblings)
        return outcome

    def _reconcile_versions(
        self, keys: list[str], wanted: dict[str, _Wanted], failed: dict[str, Exception]
    ) -> list[str]:
        """After the commit: the records of the translation keys this batch
        touched follow the committed index; returns the sources whose page
        links to other versions than the record now lists."""
        keys = [k for k in keys if k not in failed]
        touched = {
            e.translation_key
            for e in (self._index_read.by_source(k) for k in keys)  # before the commit
            if e is not None and e.translation_key
        }
        touched |= {
            w.release.translation_key
            for w in (wanted.get(k) for k in keys)
            if w is not None and w.release is not None and w.release.translation_key
        }
        if not touched:
            return []
        # the index as committed now (usually the one this batch just wrote: a HEAD)
        head = self.source.head(STATE_KEY)
        cached = self._index_cache
        if head is not None and cached is not None and cached[0] == head.etag:
            committed = cached[1]
        else:
            committed = Index.from_bytes(self._read_index()[0])
        return self.versions.reconcile(keys, touched, committed.by_source)

    def _rerender_versions(self, siblings: list[str]) -> None:
        """Converge the sibling versions again, so their pages link to the
        versions as they are now; a failure fails this batch (its retry finds
        the same siblings stale and tries again)."""
        if self._depth >= 3:
            return  # versions changing under every round: the next change finishes it
        self._depth += 1
        try:
            more = self.sync_batch(siblings)
        finally:
            self._depth -= 1
        if more.failed:
            raise next(iter(more.failed.values()))

    def _invalidate(self, keys: list[str], paths: list[str], receipts: list[Receipt]) -> None:
        """Refresh CloudFront, retried in place: a retry of the batch would find
        the site already converged and so would not know which paths to refresh.
        A lasting failure becomes a receipt warning and an error log line."""
        for attempt in range(1, 4):
            try:
                self.invalidator.invalidate(paths)  # type: ignore[union-attr]
                return
            except StorageError as exc:
                if attempt < 3:
                    self._pause(attempt + 3)
                    continue
                for key in keys:
                    log.error(
                        json.dumps(
                            {
                                "event": "invalidation_failed",
                                "source_key": key,
                                "paths": paths,
                                "error": str(exc),
                            },
                            ensure_ascii=False,
                        )
                    )
                self.source.put(
                    f"{INVALIDATIONS_PREFIX}{uuid.uuid4().hex}.json",
                    json.dumps({"paths": paths}).encode(),
                    content_type="application/json",
                    cache_control=PRIVATE_CACHE,
                )  # the sweep sends it again
                for receipt in receipts:
                    receipt.warnings.append(
                        FieldError(
                            "(site)",
                            "the pages are updated, but CloudFront could not be told to refresh "
                            f"them ({exc}); cached copies may show for up to an hour — run "
                            "`newsroom rebuild` or invalidate the paths listed in `changed`",
                        )
                    )

    def _receipt(self, source_key: str, wanted: _Wanted) -> Receipt:
        if wanted.status == "rejected":
            return self._rejected(source_key, wanted.error)  # type: ignore[arg-type]
        if wanted.status == "unpublished":
            prev = self._index_read.by_source(source_key)
            return Receipt(
                source_key,
                "unpublished",
                slug=prev.slug if prev else None,
                message="the source file is gone; removed from the site",
            )
        release = wanted.release
        assert release is not None
        if wanted.status == "scheduled":
            return self._scheduled(source_key, release)
        return Receipt(
            source_key,
            "published",
            slug=release.slug,
            url=wanted.entry.url,  # type: ignore[union-attr]
            warnings=self._media_warnings(release),
            message="live on the site",
        )

    def _scheduled(self, source_key: str, release: Release) -> Receipt:
        instant = release.publication_instant
        live = self._index_read.by_source(source_key)
        message = f"not public until {instant.isoformat()}; nothing of it is public yet"
        if live is not None:
            message = (
                f"this version is public at {instant.isoformat()}; until then the live "
                f"version stays at {live.url}"
            )
        warnings: list[FieldError] = []
        holder = self._index_read.slug_holder(release.slug)
        if holder is not None and holder != source_key:
            warnings.append(
                FieldError(
                    "slug",
                    f"slug {release.slug!r} is held by {holder}; unless that file is deleted "
                    "before the instant, this release will be rejected then",
                )
            )
        preview = None
        if self.previews is not None:
            try:
                versions = self.versions.lookup(source_key, release)
                preview = self.previews.put(source_key, release, instant, versions)
            except StorageError as exc:
                warnings.append(FieldError("(preview)", f"no preview this time ({exc})"))
        return Receipt(
            source_key,
            "scheduled",
            slug=release.slug,
            url=self.settings.site_url + release.url_path,
            embargo_until=release.embargo_until,
            publish_at=instant,
            preview_url=preview,
            warnings=warnings,
            message=message,
        )

    def publish_due(self) -> list[Receipt]:
        """Publish every scheduled release whose embargo has passed, as one batch."""
        now = self.clock()
        current = self.source.get(SCHEDULE_KEY)
        due = [
            s.source_key
            for s in schedule_from_bytes(current.body if current else None)
            if s.embargo_until <= now
        ]
        if not due:
            return []
        # the batch also takes its keys off the schedule (see _converge_schedule)
        outcome = self.sync_batch(due)
        if outcome.failed:
            raise next(iter(outcome.failed.values()))
        return outcome.receipts

    def read_index(self) -> Index:
        """The committed private index."""
        raw, etag = self._read_index()
        return self._parsed_index(raw, etag)

    def drain_owed(self) -> None:
        """Tell the listeners what an earlier commit still owes them."""
        index = self.read_index()
        if index.announce:
            self._settle((), index.announce, {}, Change())

    def waiting(self, slug: str) -> list[str]:
        """Source keys refused ``slug`` while another file held it."""
        obj = self.source.get(waiting_key(slug))
        return list(json.loads(obj.body).get("waiting", [])) if obj else []

    def _wait_for(self, slug: str, source_key: str) -> None:
        waiting = self.waiting(slug)
        if source_key not in waiting:
            body = json.dumps({"slug": slug, "waiting": sorted([*waiting, source_key])})
            self.source.put(
                waiting_key(slug),
                body.encode(),
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )

    def _hand_over(self, freed: list[str]) -> list[str]:
        """Claimants of slugs this batch freed: they get their turn now."""
        out: list[str] = []
        for slug in freed:
            claimants = self.waiting(slug)
            if claimants:
                self.source.delete(waiting_key(slug))
                out.extend(claimants)
        return out

    def scheduled(self) -> list[Scheduled]:
        current = self.source.get(SCHEDULE_KEY)
        return schedule_from_bytes(current.body if current else None)

    # The convergence -----------------------------------------------------------------
    def _wanted(self, source_key: str, now: datetime, cache: dict[str, _Wanted]) -> _Wanted:
        """Read the source now: what the public site should show for it.
        Parsed and rendered once per version (the ETag) within one batch."""
        obj = self.source.get(source_key)
        if obj is None:
            return _Wanted("unpublished")
        if obj.etag in cache:
            return cache[obj.etag]
        try:
            release = parse_release(obj.body, name=source_key)
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
                    entry = Entry.from_release(
                        release,
                        source_key=source_key,
                        site_url=self.settings.site_url,
                        summary=rendered.summary,
                        revision=rendered.revision,
                        source_digest=source_digest(obj.body),
                    )
                    entry.json_text  # noqa: B018 - an entry that cannot be encoded is poison too
                except Exception as exc:  # noqa: BLE001
                    wanted = _poison(source_key, exc)
                else:
                    wanted = _Wanted("published", release, entry, rendered.page)
        cache[obj.etag] = wanted
        return wanted

    def _rejected(self, source_key: str, exc: InvalidRelease, slug: str | None = None) -> Receipt:
        message = "not published; fix the errors and upload again"
        # the index this batch just read (a rejection is decided after reading it)
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
            if url.startswith("/media/") and self.source.head(key) is None:
                warnings.append(
                    FieldError(
                        loc, f"{url} does not exist yet; upload it to media/ in the source bucket"
                    )
                )
        return warnings

    def _parsed_index(self, raw: bytes | None, etag: str | None) -> Index:
        """``index.json`` parsed, reusing the last parse when the ETag is the one
        this publisher last read or wrote (a warm Lambda's next batch)."""
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
        current = self.source.get(STATE_KEY)
        return (current.body, current.etag) if current else (None, None)

    def _read_sources(
        self, keys: list[str], now: datetime, cache: dict[str, _Wanted], failed: dict[str, Exception]
    ) -> dict[str, _Wanted]:
        out: dict[str, _Wanted] = {}
        for key in keys:
            if key in failed:
                continue
            try:
                out[key] = self._wanted(key, now, cache.setdefault(key, {}))  # type: ignore[arg-type]
            except StorageError as exc:
                failed[key] = exc  # only this key's messages come back
        return out

    def _converge(
        self, keys: list[str], now: datetime, failed: dict[str, Exception]
    ) -> tuple[dict[str, _Wanted], dict[str, SlugConflict], Change]:
        """Optimistic loop with ``index.json`` as the commit point, for a whole
        batch. Each attempt reads the index, *then* the sources (so an attempt
        that commits after another batch's commit also read the sources after
        it: a stale read never overwrites a newer version), writes what changed,
        deletes what is obsolete, and commits with ``IfMatch``. On 412/409 it
        starts over; keys an earlier attempt wrote or deleted are redone from
        the fresh state."""
        change = Change()
        dirty: set[str] = set()
        cache: dict[str, Any] = {}
        acting: dict[str, _Wanted] = {}  # what the pages written so far were for
        renderer = self.renderer
        wanted: dict[str, _Wanted] = {}
        conflicts: dict[str, SlugConflict] = {}
        if not keys:
            return wanted, conflicts, change
        for attempt in range(1, self.max_attempts + 1):
            change.attempts = attempt
            raw, etag = self._read_index()
            old = self._parsed_index(raw, etag)
            fresh_theme = raw is not None and old.theme == renderer.theme
            wanted = self._read_sources(keys, now, cache, failed)
            conflicts = {}
            targets: dict[str, tuple[Entry | None, bytes | None]] = {}
            for key, w in wanted.items():
                if w.status != "rejected":
                    acting[key] = w
                # a file replaced by an invalid one after an earlier attempt
                # wrote its pages: finish that version so the site stays consistent
                if key in acting:
                    if acting[key].status == "scheduled":
                        # an embargoed update of a live release: the live
                        # version stays, unchanged, until the new instant
                        targets[key] = (old.by_source(key), None)
                    else:
                        targets[key] = (acting[key].entry, acting[key].page)
            if not targets and not dirty and not old.announce:
                return wanted, conflicts, change  # only rejections: the live site stays
            # slugs: the earliest-published claimant in the batch first (as a build decides)
            claims: list[Withdrawal] = []
            claimed: dict[str, str] = {}
            for key in sorted(
                (k for k, t in targets.items() if t[0] is not None),
                key=lambda k: (targets[k][0].published_at.timestamp(), k),  # type: ignore[union-attr]
            ):
                entry = targets[key][0]
                assert entry is not None
                holder = old.slug_holder(entry.slug) or claimed.get(entry.slug)
                if holder is not None and holder != key:
                    conflicts[key] = SlugConflict(entry.slug, holder, key)
                    prev = old.by_source(key)
                    targets[key] = (prev, None)  # the live version (if any) stays
                elif holder is None:
                    # claim the slug in the index before writing its page, so a
                    # page is only ever written under a slug this source holds
                    claims.append(Withdrawal(entry.slug, key))
                    claimed[entry.slug] = key
            if claims:
                claimed_index = old
                for w in claims:
                    claimed_index = claimed_index.with_withdrawal(w)
                etag = self._put_index(claimed_index, etag)
                if etag is None:
                    self._contended(attempt)
                    continue
                old = claimed_index
            new = old.with_theme(renderer.theme)
            gone: set[Withdrawal] = set()
            owed: list[Announcement] = []
            pages: list[tuple[str, bytes, bool]] = []  # (key, page, is a new slug)
            for key, (entry, page) in targets.items():
                prev = old.by_source(key)
                if self.listeners:
                    owed.extend(_announcements(key, prev, entry))
                new = new.with_entry(entry) if entry is not None else new.without_source(key)
                # pages this source no longer owns: an unpublish, a slug change, or a
                # withdrawal a crashed earlier run left unfinished
                own = {w for w in old.withdrawing if w.source_key == key}
                mine = set(own)
                if prev is not None and (entry is None or prev.slug != entry.slug):
                    mine.add(Withdrawal(prev.slug, key))
                mine = {w for w in mine if entry is None or w.slug != entry.slug}
                for w in own - mine:
                    new = new.without_withdrawal(w)  # (re)published under this slug
                for w in mine:
                    new = new.with_withdrawal(w)
                gone |= mine
                if entry is not None and page is not None and (
                    prev is None
                    or prev.revision != entry.revision
                    or prev.slug != entry.slug
                    or not fresh_theme
                ):
                    pages.append((release_key(entry.slug), page, prev is None or prev.slug != entry.slug))
            new = new.with_announcements(tuple(owed))
            media_before = old.media_keys()
            media_after = new.media_keys()
            if new == old and not dirty:
                # already converged (duplicate or late events), except perhaps
                # for page deletions or announcements a crash interrupted after
                # the commit
                if gone or new.announce:
                    self._settle(gone, new.announce, wanted, change)
                return wanted, conflicts, change

            old_plan = self._plan(old) if fresh_theme else {}
            new_plan = self._plan(new)
            write, obsolete = changed_keys(old_plan, new_plan)
            # pages new to the site before pages that change: nothing links to a
            # new page (a month's neighbours, a topic's index) until those change
            to_write = sorted(
                (set(write) | dirty) & new_plan.keys(),
                key=lambda k: (k in old_plan, *_write_order(k)),
            )
            to_delete = sorted(
                (set(obsolete) | dirty) - new_plan.keys(), key=_write_order, reverse=True
            )
            # media first: a release's photo or PDF is public before its page
            for key in sorted(media_after - media_before):
                self._publish_media(key, change)
            # new pages first: nothing links to them until the listings do
            for page_key, body, fresh in pages:
                if fresh:
                    self._put(page_key, body, change)
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
            # updated pages last: the topic pages they link to exist by now
            for page_key, body, fresh in pages:
                if not fresh:
                    self._put(page_key, body, change)
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
            change.deleted = [k for k in change.deleted if k not in new_plan]
            if gone or new.announce or media_before - media_after:
                self._settle(gone, new.announce, wanted, change, media_before - media_after)
            return wanted, conflicts, change
        raise StorageError(
            f"the index kept changing under {self.max_attempts} attempts to publish "
            f"{len(keys)} key(s); giving up so the queue delivers them again",
            STATE_KEY,
        )

    def _settle(
        self,
        gone: Iterable[Withdrawal],
        owed: tuple[Announcement, ...],
        wanted: dict[str, _Wanted],
        change: Change,
        media_gone: Iterable[str] = (),
    ) -> None:
        """After the commit: delete the withdrawn pages, tell the listeners what
        the commit changed, then clear both from the index (one conditional
        write). A crash or a failing listener leaves them recorded, so the next
        batch or sweep finishes them: at least once."""
        gone = set(gone)
        for w in sorted(gone, key=lambda w: w.slug):
            self.public.delete(release_key(w.slug))
            change.deleted.append(release_key(w.slug))
        drained = self._announce(owed, wanted)
        for attempt in range(1, self.max_attempts + 1):
            raw, etag = self._read_index()
            current = Index.from_bytes(raw)
            cleared = current.without_announcements(drained)
            for w in gone:
                holder = current.by_slug(w.slug)
                if holder is not None:
                    # someone republished this slug while we were deleting: put
                    # its page back by converging that source again
                    self._restore(holder.source_key)
                cleared = cleared.without_withdrawal(w)
            if cleared == current:
                break
            committed = self._put_index(cleared, etag)
            if committed is not None:
                self._index_cache = (committed, cleared)
                break
            self._contended(attempt)
        else:
            raise StorageError("could not clear finished work from the index", STATE_KEY)
        # the last reference went away: the media file leaves the site (unless
        # a release committed since references it again)
        still = current.media_keys()
        for key in sorted(set(media_gone) - still):
            self.media.sync(key, referenced=False)
            change.deleted.extend(self.media.changed)

    def _publish_media(self, key: str, change: Change) -> None:
        if self.source.head(key) is None:
            return  # not uploaded yet: its upload publishes it (the receipt warns)
        self.media.sync(key, referenced=True)
        change.written.extend(k for k in self.media.changed if k not in change.written)

    def sync_media(self, keys: Iterable[str]) -> list[Receipt]:
        """Converge media uploads and deletes: public exactly while a public
        release references them."""
        keys = list(keys)
        if not keys:
            return []
        refs = self.read_index().media_keys()
        receipts, changed = [], []
        for key in keys:
            receipts.append(self.media.sync(key, referenced=key in refs))
            changed.extend(self.media.changed)
        if changed and self.invalidator is not None:
            paths = sorted({p for k in changed for p in invalidation_paths(k)})
            self._invalidate(keys, paths, receipts)
        return receipts

    def _announce(
        self, owed: tuple[Announcement, ...], wanted: dict[str, _Wanted]
    ) -> tuple[Announcement, ...]:
        """Call every listener with the commit; return what was delivered."""
        if not owed or not self.listeners:
            return owed if not self.listeners else ()
        commit = Commit()
        for a in owed:
            if a.kind == "withdrawn":
                commit.withdrawn.append(Withdrawn(a.source_key, a.slug, a.month))
                continue
            w = wanted.get(a.source_key)
            if w is None or w.status != "published" or w.entry is None or w.entry.slug != a.slug:
                w = self._wanted(a.source_key, self.clock(), {})  # owed by an earlier batch
            if w.status == "published" and w.entry is not None:
                commit.published.append(
                    Published(a.source_key, w.release, w.entry.public_json(), a.first_time)
                )
        for listener in self.listeners:
            try:
                listener.on_commit(commit)
            except Exception as exc:  # noqa: BLE001 - retried by the next batch or sweep
                log.error(
                    json.dumps(
                        {
                            "event": "listener_failed",
                            "listener": type(listener).__name__,
                            "error_type": type(exc).__name__,
                            "error": str(exc),
                        },
                        ensure_ascii=False,
                    )
                )
                return ()
        return owed

    def _put_index(self, index: Index, etag: str | None) -> str | None:
        """Commit the private index over the version read; ``None`` if it changed since."""
        return put_if_unchanged(
            self.source,
            STATE_KEY,
            index.to_bytes(),
            etag,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
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
        versions = self.versions.lookup(source_key, release)
        self.public.put(
            key,
            self.renderer.release(release, versions).page,
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

    def _converge_schedule(self, keys: list[str], now: datetime, scheduled: set[str]) -> set[str]:
        """Make the schedule's entries for ``keys`` match the sources *now*:
        listed while the embargo (as of ``now``) runs, gone otherwise. The
        sources are re-read after the schedule, and the write is conditional on
        the schedule's ETag, so an upload racing this batch (or an overlapping
        ``publish_due`` run) cannot lose a newer embargo. Returns the keys that
        were listed before (their previews may have to go)."""
        mine = set(keys)
        seen: set[str] = set()

        def edit(items: list[Scheduled]) -> list[Scheduled] | None:
            listed = {s.source_key for s in items} & mine
            seen.update(listed)
            if not scheduled and not listed:
                return None  # the common case: one small read
            recheck = sorted(listed | scheduled)
            wants = [self._wanted_schedule(k, now) for k in recheck]
            kept = [s for s in items if s.source_key not in set(recheck)]
            return kept + [w for w in wants if w is not None]

        update_schedule(self.source, edit, attempts=self.max_attempts, on_conflict=self._contended)
        return seen

    def _wanted_schedule(self, source_key: str, now: datetime) -> Scheduled | None:
        obj = self.source.get(source_key)
        if obj is None:
            return None
        try:
            release = parse_release(obj.body, name=source_key)
        except InvalidRelease:
            return None
        if not release.is_scheduled(now):
            return None
        return Scheduled(source_key, release.slug, release.publication_instant)
