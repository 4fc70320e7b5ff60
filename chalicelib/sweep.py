"""The anti-entropy sweep: what ``publish_due_releases`` runs every five minutes.

Events are hints and can be lost (a dropped notification, a message that went
to the dead-letter queue). The sweep needs none of them: it compares what the
source bucket holds with what the publisher recorded and converges every
difference through the same batch path as the queue, so a change is live
within one sweep even if every event for it was lost:

- releases whose publication instant has passed (the schedule);
- a source whose receipt is missing or older than the source object, or whose
  ETag differs from the digest its public entry was built from; an entry whose
  source is gone; a withdrawal a crash left unfinished;
- a slug freed while another file waited for it (``state/waiting/``);
- claims of new slugs (``state/claims/``) an invocation that died left: the
  slug stays held (a withdrawal in the head) and the source is converged;
- announcements the listeners are still owed;
- shared pages an abandoned attempt left (owed in the state's head, or named
  by the intent record of one that died), the pages of live releases such a
  record names, and the site's own pages (front page, feeds, ``index.json``,
  sitemap index) whose bytes are not what the committed state renders;
- CloudFront invalidations that failed (``state/invalidations/``), sent again.

Each batch isolates its keys, so one poison file is its own ``rejected``
receipt and never stops the sweep.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .errors import ScheduleUnreadable, StorageError
from .keys import (
    INVALIDATIONS_PREFIX,
    RECEIPTS_PREFIX,
    RELEASES_PREFIX,
    WAITING_PREFIX,
    is_release_key,
    receipt_key,
)
from .publisher import Publisher
from .receipts import Receipt, misnamed_release

log = logging.getLogger("newsroom.sweep")

BATCH = 25


@dataclass
class SweepReport:
    due: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    invalidations_resent: int = 0
    repaired: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "due": len(self.due),
            "drifted": self.drifted,
            "published": sum(1 for r in self.receipts if r.status == "published"),
            "rejected": sum(1 for r in self.receipts if r.status == "rejected"),
            "failed": self.failed,
            "invalidations_resent": self.invalidations_resent,
            "repaired": self.repaired,
        }


class Sweeper:
    def __init__(self, publisher: Publisher, *, batch: int = BATCH) -> None:
        self.publisher = publisher
        self.source: Any = publisher.source  # needs list_modified (S3Storage)
        self.batch = batch

    def run(self) -> SweepReport:
        report = SweepReport()
        now = self.publisher.clock()
        unreadable: ScheduleUnreadable | None = None
        try:
            on_schedule = self.publisher.scheduled()
        except ScheduleUnreadable as exc:  # the rest of the sweep goes on, then it raises
            on_schedule, unreadable = [], exc
        report.due = sorted(s.source_key for s in on_schedule if s.embargo_until <= now)
        # claims of new slugs a dead invocation left become withdrawals,
        # and their sources are converged: published, or their page taken down
        claims = self.publisher.settle_claims()
        drifted = self._drifted({s.source_key for s in on_schedule})
        report.drifted = sorted((drifted | set(claims.values())) - set(report.due))
        keys = report.due + report.drifted
        for i in range(0, len(keys), self.batch):
            chunk = keys[i : i + self.batch]
            # the batch converging a claim's source ends the claim with its commit
            mine = {slug: src for slug, src in claims.items() if src in chunk}
            outcome = self.publisher.sync_batch(chunk, claims=mine)
            report.receipts.extend(outcome.receipts)
            report.failed.extend(sorted(outcome.failed))
        self.publisher.drain_owed()
        repaired = self.publisher.repair_shared()
        report.repaired = sorted(repaired.written + repaired.deleted)
        if repaired.paths and self.publisher.invalidator is not None:
            self.publisher._invalidate([], repaired.paths, [])
        report.invalidations_resent = self._resend_invalidations()
        log.info("sweep", extra=report.to_json())
        if unreadable is not None:
            raise unreadable
        if report.failed:
            raise StorageError(
                f"{len(report.failed)} key(s) met an infrastructure fault; the next sweep "
                "tries them again",
                report.failed[0],
            )
        return report

    def _drifted(self, scheduled: set[str]) -> set[str]:
        """Source keys whose current content the public site may not show."""
        # a name in another case (``.JSON``) raised no event: it is refused once
        sources = {
            k: v
            for k, v in self.source.list_modified(RELEASES_PREFIX).items()
            if is_release_key(k) or misnamed_release(k)
        }
        receipts = self.source.list_modified(receipt_key(RELEASES_PREFIX))
        index = self.publisher.read_state().index()  # every month: a sweep reads it all
        digests = {e.source_key: e.source_digest for e in index.entries}
        out: set[str] = set()
        for key, (etag, modified) in sources.items():
            receipt = receipts.get(receipt_key(key))
            if receipt is None or receipt[1] < modified:
                out.add(key)  # never processed, or changed since
            elif digests.get(key) and digests[key] != etag.strip('"') and key not in scheduled:
                # the public entry is of another version (an embargoed update
                # processed since is not drift: it waits for its instant)
                out.add(key)
        out.update(k for k in digests if k not in sources)  # deleted, event lost
        # a misnamed file's refusal outlives the file (renamed, or removed:
        # no event either way): nothing of it was ever public, so it goes
        for rkey in receipts:
            key = rkey.removeprefix(RECEIPTS_PREFIX)
            if misnamed_release(key) and key not in sources:
                self.source.delete(rkey)
        out.update(k for k in scheduled if k not in sources)
        out.update(w.source_key for w in index.withdrawing if w.source_key not in sources)
        for key in self.source.list(WAITING_PREFIX):
            slug = key[len(WAITING_PREFIX) : -len(".json")]
            if index.slug_holder(slug) is None:
                out.update(self.publisher.waiting(slug))
                self.source.delete(key)  # claimants still refused record themselves again
        return out

    def _resend_invalidations(self) -> int:
        if self.publisher.invalidator is None:
            return 0
        sent = 0
        for key in list(self.source.list(INVALIDATIONS_PREFIX)):
            obj = self.source.get(key)
            if obj is None:
                continue
            paths = json.loads(obj.body).get("paths", [])
            if paths:
                self.publisher.invalidator.invalidate(paths)  # raises: next sweep again
            self.source.delete(key)
            sent += 1
        return sent
