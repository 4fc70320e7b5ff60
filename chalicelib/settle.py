"""After a commit: withdrawn pages deleted, listeners told, media that lost
their last reference taken down; and media uploads converged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from .core.index import Announcement, Withdrawal
from .core.model import parse_release
from .errors import InvalidRelease, ObjectUnreadable, StorageError
from .keys import (
    PRIVATE_CACHE,
    STATE_KEY,
    announced_key,
    cache_control,
    content_type,
    invalidation_paths,
    release_key,
)
from .listeners import Commit, Published, Withdrawn
from .receipts import (
    Receipt,
)
from .sources import _Wanted
from .state import (
    Draft,
    Snapshot,
    StaleState,
    drop_media_refs,
    media_referenced,
)
from .transition import without_announcements, without_withdrawal
from .writing import Change

log = logging.getLogger("newsroom.publisher")


class Settling:
    """The publisher's settle (a part of ``Publisher``; its attributes are set there)."""

    def drain_owed(self) -> None:
        """Tell the listeners what an earlier commit still owes them (those
        whose convergence recorded them delivered are only cleared), and
        clear them from the head."""
        snap = self.read_state()
        if not snap.head.announce:
            return
        change = Change()
        self.pool.run(self._announced_calls(snap, change))
        done = tuple(a for a in snap.head.announce if a.by and change.announced.get(a.by))
        owed = tuple(a for a in snap.head.announce if a not in done)
        drained = self._settle((), owed, {}, change, cleared=done)
        tags = {a.by for a in done} | ({a.by for a in owed} if drained == owed else set())
        cleared = sorted(t for t in tags if t in change.announced)
        if cleared:
            self.source.delete_many([announced_key(t) for t in cleared])

    def _settle(
        self,
        gone: Iterable[Withdrawal],
        owed: tuple[Announcement, ...],
        wanted: dict[str, _Wanted],
        change: Change,
        media_dropped: dict[str, set[str]] | None = None,
        committed: Snapshot | None = None,
        cleared: tuple[Announcement, ...] = (),
        later: list[Callable[[], object]] | None = None,
    ) -> tuple[Announcement, ...]:
        """After the commit (``committed``: the head this process just
        committed): delete the withdrawn pages and tell the listeners what
        the commit changed. Announcements are then recorded done in
        ``state/announced/`` (one small PUT; the next commit clears them from
        the head, ``_take_announcements``), so a batch that withdraws nothing
        writes the head once. Withdrawals are cleared from the head (one
        conditional write, with the announcements delivered and ``cleared``).
        A crash or a failing listener leaves them recorded, so the next batch
        or sweep finishes them: at least once. Returns what was delivered.
        ``later``: the record's PUT is put there for the caller to send with
        its next step (the batch's receipts) rather than sent here; until
        it lands, the announcements stay in the head as not yet delivered."""
        gone = set(gone)
        if gone:
            # a withdrawal a later commit took back (the file published again
            # under that slug) is no longer ours to carry out: its page is
            # that commit's now
            pending = set(Snapshot.read(self.source).head.withdrawing)
            gone &= pending
        for w in sorted(gone, key=lambda w: w.slug):
            self.public.delete(release_key(w.slug))
            change.deleted.append(release_key(w.slug))
        drained = self._announce(owed, wanted)
        if committed is not None and owed and (not gone or drained != owed):
            # the record the next commit reads: delivered, or to adopt
            body = json.dumps({"delivered": drained == owed}).encode()

            def record() -> None:
                self.source.put(
                    announced_key(change.intent),
                    body,
                    content_type="application/json",
                    cache_control=PRIVATE_CACHE,
                )

            if later is None:
                record()
            else:
                later.append(record)
        for attempt in range(1, self.max_attempts + 1):
            if committed is not None and not gone:
                break  # nothing to clear in the head
            try:
                current = Draft(Snapshot.read(self.source))
                cleared_now = without_announcements(current.announce, drained + cleared)
                withdrawing = current.withdrawing
                for w in gone:
                    if current.by_slug(w.slug) is not None:
                        # someone republished this slug while we were deleting: put
                        # its page back by converging that source again
                        self._restore(current.by_slug(w.slug).source_key, w.slug)  # type: ignore[union-attr]
                    withdrawing = without_withdrawal(withdrawing, w)
            except StaleState:
                self._contended(attempt)
                continue
            if cleared_now == current.announce and withdrawing == current.withdrawing:
                break
            current.announce, current.withdrawing = cleared_now, withdrawing
            if current.commit_head(current.snap.etag) is not None:
                break
            self._contended(attempt)
        else:
            raise StorageError("could not clear finished work from the state", STATE_KEY)
        # the last reference went away: the media file leaves the site (unless
        # a release committed since references it again)
        if not media_dropped:
            return drained
        lookup = Snapshot.read(self.source).entry_of
        for source_key, media in sorted(media_dropped.items()):
            drop_media_refs(self.source, source_key, sorted(media))
        for key in sorted({k for m in (media_dropped or {}).values() for k in m}):
            if not media_referenced(self.source, key, lookup):
                self.media.sync(key, referenced=False)
                change.deleted.extend(self.media.changed)
        return drained

    def _media_lookups(self, keys: Iterable[str]) -> list[Callable[[], object]]:
        """The HEADs of source media files this batch has not looked up yet
        (``_media_seen``, kept for the batch: its receipts warn of a missing
        one), for the caller to send with a step of its own."""

        def look(key: str) -> None:
            self._media_seen[key] = self.source.head(key) is not None

        return [lambda k=k: look(k) for k in sorted(set(keys) - self._media_seen.keys())]

    def _media_uploaded(self, key: str) -> bool:
        if key not in self._media_seen:
            self.pool.run(self._media_lookups([key]))
        return self._media_seen[key]

    def _publish_media(self, key: str, change: Change) -> None:
        if not self._media_uploaded(key):
            return  # not uploaded yet: its upload publishes it (the receipt warns)
        self.media.sync(key, referenced=True)
        change.written.extend(k for k in self.media.changed if k not in change.written)

    def sync_media(self, keys: Iterable[str]) -> list[Receipt]:
        """Converge media uploads and deletes: public exactly while a public
        release references them."""
        keys = list(keys)
        if not keys:
            return []
        lookup = self.read_state().entry_of
        receipts, changed = [], []
        for key in keys:
            referenced = media_referenced(self.source, key, lookup)
            receipts.append(self.media.sync(key, referenced=referenced))
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
                    "listener_failed",
                    extra={
                        "listener": type(listener).__name__,
                        "error_type": type(exc).__name__,
                        "error": str(exc),
                    },
                )
                return ()
        return owed

    def _restore(self, source_key: str, slug: str) -> None:
        """Put back the page of ``slug`` from the version the source holds
        now, if that version is the one to show there: due (an embargoed
        update of a live release is never rendered into the public bucket)
        and under that slug."""
        try:
            obj = self.source.get(source_key)
        except ObjectUnreadable:
            return  # rejected: nothing of it to restore
        if obj is None:
            return
        try:
            release = parse_release(obj.body, name=source_key)
        except InvalidRelease:
            return
        if release.slug != slug or release.is_scheduled(self.clock()):
            return
        key = release_key(release.slug)
        versions = self.versions.lookup(source_key, release)
        self.public.put(
            key,
            self.renderer.release(release, versions).page,
            content_type=content_type(key),
            cache_control=cache_control(key),
        )
