"""The publisher: bring the public site in line with one source key's *current* state.

An S3 event is only a hint that ``releases/<name>.json`` changed. ``sync`` reads
what the source bucket holds now and converges the public bucket to it, so
duplicated, late and reordered events all end in the same site.

A ``Publisher`` is assembled from parts with one job each: reading the
sources (``sources``), the convergence loop and its commit (``convergence``,
over the bounded state of ``state``), what follows a commit (``settle``), the
receipts (``outcomes``), CloudFront (``invalidation``), embargoes
(``schedule``) and files waiting for a slug (``waiting``). This module holds
the batch: one call converges every key of a queue batch and writes their
receipts and one log line per key.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .convergence import Convergence
from .core.render import Renderer
from .core.site import Page
from .errors import FieldError, ScheduleUnreadable, StorageError
from .invalidation import (
    Invalidation,
    Invalidator,  # noqa: F401 - re-exported
)
from .keys import (
    RELEASES_PREFIX,
    is_release_key,
    receipt_key,
)
from .listeners import CommitListener, PreviewStore
from .media import MediaSync
from .outcomes import Outcomes
from .pool import THREADS, RequestPool
from .receipts import (
    RECEIPT_CACHE,
    Receipt,
    misnamed_release,
)
from .schedule import Scheduling
from .settle import Settling
from .sources import (
    SourceReading,
    _Wanted,
)
from .state import (
    Draft,
    Snapshot,
)
from .storage import Storage
from .versions import VersionRecords
from .waiting import Waiting
from .writing import Change

log = logging.getLogger("newsroom.publisher")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BatchOutcome:
    """What one batch did: a receipt per key it processed, and the keys an
    infrastructure fault stopped (their queue messages are retried)."""

    receipts: list[Receipt] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    change: Change = field(default_factory=Change)

    def absorb(self, later: BatchOutcome) -> None:
        """A follow-up sync of some of the batch's keys (or others): its
        receipts replace the batch's for the same keys."""
        again = {r.source_key for r in later.receipts}
        self.receipts = [r for r in self.receipts if r.source_key not in again]
        self.receipts.extend(later.receipts)
        self.failed.update(later.failed)


class Publisher(SourceReading, Convergence, Settling, Outcomes, Invalidation, Scheduling, Waiting):
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
        threads: int = THREADS,
    ) -> None:
        self.source = source
        # the independent requests of one step run at once (pool.py)
        self.pool = RequestPool(threads)
        self._last_rendered: OrderedDict[str, tuple[Page, bytes]] = OrderedDict()
        self.listeners = list(listeners)
        self.previews = previews
        # media follow releases: the publisher decides when a media file is public
        self.media = MediaSync(source, public, renderer.settings.site_url)
        self._read_state: Draft | None = None  # the state this batch's latest attempt read
        self._media_seen: dict[str, bool] = {}  # source media looked up by this batch: uploaded?
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

    def sync_batch(
        self, keys: Iterable[str], *, claims: Mapping[str, str] | None = None
    ) -> BatchOutcome:
        """Converge the public site to what every key of the batch holds now,
        with one commit of the index; write each key's receipt.

        ``claims``: claims of new slugs (slug: source key of the batch) the
        sweep found and recorded as withdrawals (``settle_claims``); this
        batch's commit ends them.

        Bad input ends as that key's ``rejected`` receipt. An infrastructure
        fault reading one key fails only that key; one in the shared writes or
        the commit fails the whole batch (raised). Both are logged
        (``release_failed``) with the key that failed."""
        started = time.perf_counter()
        before = self._requests()
        keys = list(dict.fromkeys(keys))
        self._media_seen = {}
        try:
            return self._sync_batch(keys, started, before, claims or {})
        except Exception as exc:
            for key in keys:
                self._log_failure(key, exc, started, before)
            raise

    def _requests(self) -> int:
        return self.source.counters.total + self.public.counters.total

    def _log_failure(self, key: str, exc: Exception, started: float, before: int) -> None:
        log.error(
            "release_failed",
            extra={
                "source_key": key,
                "failing_key": getattr(exc, "key", None) or None,
                "error_type": type(exc).__name__,
                "error": str(exc),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "s3_requests": self._requests() - before,
            },
        )

    def _sync_batch(
        self, keys: list[str], started: float, before: int, claims: Mapping[str, str]
    ) -> BatchOutcome:
        before_bytes = self.public.counters.bytes_written
        now = self.clock()
        outcome = BatchOutcome()
        release_keys = [k for k in keys if is_release_key(k)]
        self.versions.begin()
        wanted, conflicts, change = self._converge(release_keys, now, outcome.failed, claims=claims)
        outcome.change = change
        siblings = self._reconcile_versions(release_keys, wanted, outcome.failed)
        receipts: dict[str, Receipt] = {}
        for key in keys:
            if key in outcome.failed:
                continue
            if not is_release_key(key):
                err = FieldError(
                    "(file)",
                    misnamed_release(key)
                    or "is not a release: only releases/<name>.json files are published",
                )
                receipts[key] = Receipt(key, "rejected", errors=[err])
            elif key in conflicts:
                receipts[key] = self._rejected(key, conflicts[key], slug=conflicts[key].slug)
                self._wait_for(conflicts[key].slug, key)
            else:
                receipts[key] = self._receipt(key, wanted[key])
        scheduled = [k for k, r in receipts.items() if r.status == "scheduled"]
        settled = [k for k in release_keys if k in receipts]

        listed: set[str] = set()

        def schedule() -> None:
            if not settled:
                return
            try:
                listed.update(self._converge_schedule(settled, now, set(scheduled), remove=False))
            except ScheduleUnreadable as exc:
                # only the keys it would list fail (no receipt, their messages
                # retried); the others are published all the same
                outcome.failed.update(dict.fromkeys(scheduled, exc))
                listed.update(settled)

        # the schedule, what the commit made obsolete and the receipts are
        # independent and go in one step; a batch that schedules a key lists
        # it before its receipt says so
        after_commit = self._after_commit(change)
        if scheduled:
            self.pool.run([schedule, *after_commit])
            after_commit = []
            receipts = {k: r for k, r in receipts.items() if k not in outcome.failed}
        else:
            after_commit.append(schedule)
        paths = change.paths
        if self.invalidator is not None and paths:
            for r in receipts.values():
                r.changed = paths
            self._invalidate(settled, paths, list(receipts.values()))
        elif paths:
            for r in receipts.values():
                r.changed = paths

        def put_receipt(key: str, receipt: Receipt) -> StorageError | None:
            receipt.processed_at = self.clock()
            try:
                self.source.put(
                    receipt_key(key),
                    receipt.to_bytes(),
                    content_type="application/json",
                    cache_control=RECEIPT_CACHE,
                )
            except StorageError as exc:
                return exc
            return None

        puts = [lambda k=k, r=r: put_receipt(k, r) for k, r in receipts.items()]
        written = self.pool.run([*puts, *after_commit])[: len(puts)]
        for (key, receipt), exc in zip(receipts.items(), written, strict=True):
            if exc is not None:
                outcome.failed[key] = exc
                self._log_failure(key, exc, started, before)
                continue
            outcome.receipts.append(receipt)
            log.info(
                "release_processed",
                extra={
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
            )
        for key, exc in outcome.failed.items():
            if key not in receipts:
                self._log_failure(key, exc, started, before)
        # public now, or deleted: off the schedule once the receipt says so
        leaving = sorted(listed - set(scheduled) - set(outcome.failed))
        if leaving:
            self._converge_schedule(leaving, now, set())
            if self.previews is not None:
                for key in leaving:
                    self.previews.remove(key)
        freed = [
            k[len(RELEASES_PREFIX) : -len("/index.html")]
            for k in change.deleted
            if k.startswith(RELEASES_PREFIX) and k.endswith("/index.html")
        ]
        # a file of this batch refused a slug this very commit freed (a rename:
        # the copy and the delete of the holder in one batch) gets it now, as
        # it would had the delete come in a batch of its own
        claimants = [k for k in self._hand_over(freed) if k not in keys or k in conflicts]
        if claimants:
            outcome.absorb(self.sync_batch(claimants))
        # a file deleted before anything of it was public may be a new release
        # another batch is publishing now (it read the file before the delete
        # and claimed the slug): its claim becomes a withdrawal and the file is
        # converged here, as the sweep would, so the release does not go live
        orphans = {
            r.source_key for r in outcome.receipts if r.status == "unpublished" and not r.slug
        }
        inflight = self.settle_claims(only=orphans) if orphans else {}
        if inflight:
            outcome.absorb(self.sync_batch(sorted(set(inflight.values())), claims=inflight))
        # one that has not claimed its slug yet is told through the head's log
        unclaimed = orphans - set(inflight.values())
        live = self.record_deleted(unclaimed) if unclaimed else []
        if live:
            outcome.absorb(self.sync_batch(live))
        if siblings:
            self._rerender_versions(siblings)
        return outcome

    def _reconcile_versions(
        self, keys: list[str], wanted: dict[str, _Wanted], failed: dict[str, Exception]
    ) -> list[str]:
        """After the commit: the records of the translation keys this batch
        touched follow the committed state; returns the sources whose page
        links to other versions than the record now lists."""
        keys = [k for k in keys if k not in failed]
        touched = {
            e.translation_key
            for e in (self._live(k) for k in keys)  # before the commit
            if e is not None and e.translation_key
        }
        touched |= {
            w.release.translation_key
            for w in (wanted.get(k) for k in keys)
            if w is not None and w.release is not None and w.release.translation_key
        }
        if not touched:
            return []
        # the state as committed now: a bounded lookup per member
        return self.versions.reconcile(keys, touched, self.read_state().entry_of)

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

    def read_state(self) -> Snapshot:
        """The committed private state (its objects are read on demand)."""
        return Snapshot.read(self.source)

    # The convergence -----------------------------------------------------------------
