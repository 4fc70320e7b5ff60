"""Embargoes: the schedule of releases waiting for their instant, kept in
line with the sources by every batch, and the run that publishes what is due.
"""

from __future__ import annotations

import logging
from datetime import datetime

from .core.model import MAX_BYTES, parse_release
from .errors import InvalidRelease, ObjectUnreadable, ScheduleUnreadable
from .keys import (
    SCHEDULE_KEY,
)
from .receipts import (
    Receipt,
    Scheduled,
    schedule_from_bytes,
    update_schedule,
)

log = logging.getLogger("newsroom.publisher")


class Scheduling:
    """The publisher's schedule (a part of ``Publisher``; its attributes are set there)."""

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

    def scheduled(self) -> list[Scheduled]:
        current = self.source.get(SCHEDULE_KEY)
        return schedule_from_bytes(current.body if current else None)

    def _converge_schedule(
        self, keys: list[str], now: datetime, scheduled: set[str], *, remove: bool = True
    ) -> set[str]:
        """Make the schedule's entries for ``keys`` match the sources *now*:
        listed while the embargo (as of ``now``) runs, gone otherwise. The
        sources are re-read after the schedule, and the write is conditional on
        the schedule's ETag, so an upload racing this batch (or an overlapping
        ``publish_due`` run) cannot lose a newer embargo. Returns the keys that
        were listed before (their previews may have to go).

        ``remove=False`` keeps the entries of keys no longer scheduled: the
        batch takes them off only once their receipts are written, so a run
        that fails before that finds them due again (else the receipt would
        say ``scheduled`` forever, since the site already shows the release)."""
        mine = set(keys)
        seen: set[str] = set()

        def edit(items: list[Scheduled]) -> list[Scheduled] | None:
            listed = {s.source_key for s in items} & mine
            seen.update(listed)
            if not scheduled and (not listed or not remove):
                return None  # the common case: one small read
            recheck = sorted(listed | scheduled if remove else scheduled)
            wants = [self._wanted_schedule(k, now) for k in recheck]
            kept = [s for s in items if s.source_key not in set(recheck)]
            return kept + [w for w in wants if w is not None]

        try:
            update_schedule(
                self.source, edit, attempts=self.max_attempts, on_conflict=self._contended
            )
        except ScheduleUnreadable as exc:
            if scheduled:
                raise  # these keys cannot be listed: their instant would never come
            # nothing to list: the batch goes on; which keys were listed is not
            # known, so their previews are taken down as if they all were
            log.error("schedule_unreadable", extra={"failing_key": exc.key, "error": str(exc)})
            return mine
        return seen

    def _wanted_schedule(self, source_key: str, now: datetime) -> Scheduled | None:
        try:
            obj = self.source.get(source_key, limit=MAX_BYTES)
        except ObjectUnreadable:
            return None  # rejected, never scheduled
        if obj is None:
            return None
        try:
            release = parse_release(obj.body, name=source_key, size=obj.size)
        except InvalidRelease:
            return None
        if not release.is_scheduled(now):
            return None
        return Scheduled(source_key, release.slug, release.publication_instant)
