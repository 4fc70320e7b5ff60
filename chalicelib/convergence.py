"""The convergence of one batch: the optimistic loop over the bounded state
(``chalicelib.state``) with the head as the commit point.

An attempt reads the head, then the batch's sources; decides what changes
(``transition``: targets, slug claims, the new working copy); plans and
renders the shared pages the change touches (``shared``); writes them in an
order that never shows a link to a missing page (``writing``); then commits
the state's objects and the head with ``IfMatch`` on the ETag read in this
attempt: the commit point. On 412/409 the attempt starts over from a fresh
read and merges: the release pages it wrote stay, and every shared object an
earlier attempt touched is decided again; shared objects written by an
attempt that never commits are owed to the next commit (``owed``).
Withdrawn release pages go after the commit (``settle``), tracked in the
head's ``withdrawing`` list until gone.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from .claims import Claim, Claiming
from .core.index import Announcement, Withdrawal
from .core.site import Groups
from .errors import SlugConflict, StorageError
from .keys import (
    STATE_KEY,
    announced_key,
    claim_key,
    intent_key,
    release_key,
)
from .owed import Owing, add_group_of, take_owed
from .reading import Reading
from .shared import SharedPages
from .sources import _Wanted
from .state import (
    Draft,
    Snapshot,
    StaleState,
    add_media_refs,
    migrate_legacy_state,
)
from .storage import md5_etag
from .transition import Targets, Transition, claim_slugs, targets_of, transition, with_withdrawal
from .turns import TURN_AFTER, Turns
from .writing import Change, Writing

log = logging.getLogger("newsroom.publisher")


class Convergence(SharedPages, Writing, Owing, Claiming, Reading, Turns):
    """The publisher's convergence (a part of ``Publisher``; its attributes are set there)."""

    def _converge(
        self,
        keys: list[str],
        now: datetime,
        failed: dict[str, Exception],
        *,
        repair: Iterable[str] = (),
        claims: Mapping[str, str] | None = None,
        rewrite: Iterable[str] = (),
    ) -> tuple[dict[str, _Wanted], dict[str, SlugConflict], Change]:
        """Optimistic loop with the state's head as the commit point, for a whole
        batch. Each attempt reads the head, *then* the sources (so an attempt
        that commits after another batch's commit also read the sources after
        it: a stale read never overwrites a newer version), plans the page
        groups the batch touches from the bounded state, writes what changed,
        deletes what is obsolete, and commits with ``IfMatch``. On 412/409 it
        starts over; keys an earlier attempt wrote or deleted are redone from
        the fresh state (the groups of every attempt are planned, so each of
        those keys is decided again).

        ``repair``: shared keys to rewrite from the committed state (or delete)
        even if no key changes them. An attempt also takes the keys the head
        says are owed (``Head.repair``). When the loop gives up, or an attempt
        fails, the shared keys it wrote from a state it never committed are
        recorded as owed in the head, so the next commit puts them right.

        ``claims``: claims the sweep recorded as withdrawals (slug: source
        key), taken over as this convergence's own: its commit deletes them,
        and its first page under one is written over whatever is there (a
        page the dead invocation may have written).

        ``rewrite``: slugs whose release page to write again from the
        committed state, or delete if nothing holds the slug (the sweep's
        repair of an intent record, ``_rewrite_pages``): the holder's source
        is converged with ``keys``."""
        change = Change()
        change.rewrite = set(rewrite)
        for slug, src in (claims or {}).items():
            change.claims[slug] = Claim(src, occupied=True)
        dirty: set[str] = set(repair)
        cache: dict[str, Any] = {}
        acting: dict[str, _Wanted] = {}  # what the pages written so far were for
        wanted: dict[str, _Wanted] = {}
        conflicts: dict[str, SlugConflict] = {}
        groups = Groups()
        for key in dirty:
            add_group_of(key, groups)
        if not keys and not dirty and not change.rewrite:
            return wanted, conflicts, change
        if len(keys) > 1:  # one key: one more round trip for little
            self._read_ahead(keys, now, failed, cache, change)
        attempt = 0
        while attempt < self.max_attempts:
            waiting = self._turn_of_another(change)
            if waiting:
                self.sleep(min(waiting, self.max_backoff))  # not an attempt of ours
                continue
            attempt += 1
            change.attempts = attempt
            try:
                done = self._attempt(keys, now, failed, cache, acting, dirty, groups, change)
            except StaleState:
                done = None  # a newer commit replaced what this attempt read
            except Exception:
                self._release_turn(change)
                self._owe(dirty, change)  # what this attempt wrote has no commit behind it
                raise
            if done is None:
                if change.turn_seen:
                    attempt -= 1  # another batch's turn: not a race this one lost
                    continue
                self._contended(attempt)
                continue
            self._release_turn(change)
            wanted, conflicts = done
            return wanted, conflicts, change
        self._release_turn(change)
        self._owe(dirty, change)
        raise StorageError(
            f"the state kept changing under {self.max_attempts} attempts to publish "
            f"{len(keys)} key(s); giving up so the queue delivers them again",
            STATE_KEY,
        )

    def _attempt(
        self,
        keys: list[str],
        now: datetime,
        failed: dict[str, Exception],
        cache: dict[str, Any],
        acting: dict[str, _Wanted],
        dirty: set[str],
        groups: Groups,
        change: Change,
    ) -> tuple[dict[str, _Wanted], dict[str, SlugConflict]] | None:
        """One attempt of ``_converge``; ``None`` when it lost a race."""
        renderer = self.renderer
        snap = Snapshot.read(self.source)
        snap.share_objects(change.objects)  # immutable: what an earlier attempt read holds
        if snap.etag is None and migrate_legacy_state(self.source):
            return None  # read the state in its new shape
        change.turn_seen = False
        turn = snap.head.turn
        if turn is not None and turn[0] != change.intent and turn[1] > time.time():
            change.turn_seen = True  # another batch's turn: wait for its commit
            return None
        if change.attempts > TURN_AFTER and (turn is None or turn[0] != change.intent):
            taken = self._take_turn(snap, change)
            if taken is None:
                return None
            snap = taken
        since = self._since(snap, change)
        old = self._read_state = Draft(snap)
        for page_key in change.pages if since is None else since.pages & change.pages.keys():
            # a commit since may have written this release page (a sweep's
            # rewrite): the next write of it is not skipped
            change.pages[page_key] = ("", change.pages[page_key][1])
        for slug in sorted(change.rewrite):
            holder = old.by_slug(slug)
            if holder is not None and holder.source_key not in keys:
                keys.append(holder.source_key)  # its page is rendered from its source
        take_owed(snap, dirty, groups)  # owed by an attempt that never committed
        fresh_theme = snap.etag is not None and snap.head.theme == renderer.theme
        first = snap.etag is None  # a first commit writes the whole tree
        if first:
            groups.everything = True
        # a lost race redoes only what the commits since changed: sources are
        # read again if a commit changed their entry (or never read), and a
        # shared page this convergence wrote is written again if a commit
        # wrote it too or its bytes change
        again = [k for k in keys if since is None or k in since.keys or k not in change.wanted]
        # with the sources, what depends only on the head: the hints their
        # names imply and the records of the announcements the head holds
        along = self._name_hints(snap, again) + self._announced_calls(snap, change)
        fresh = self._read_sources(again, now, cache, failed, along)
        wanted = {
            k: fresh[k] if k in fresh else change.wanted[k]
            for k in keys
            if k not in failed and (k in fresh or k in change.wanted)
        }
        change.wanted = wanted
        trusted = set() if since is None else {p for p in change.shared if p not in since.pages}
        self._prefetch(snap, keys, wanted)
        targets = targets_of(wanted, acting, old)
        if not targets and not dirty:
            return wanted, {}  # only rejections: the live site stays
        claims, conflicts = claim_slugs(targets, old)
        # claim new slugs before writing their pages (``claims``), so a page
        # is only ever written under a slug this source holds
        if not self._claim(claims, targets, conflicts, old, change):
            change.base = snap.etag
            return None
        for slug, c in change.claims.items():
            if c.written:  # a page this commit must publish or take down
                old.withdrawing = with_withdrawal(old.withdrawing, Withdrawal(slug, c.source_key))
        new = Draft(snap)
        new.repair = ()  # every owed key is dirty: this attempt decides it
        if snap.head.turn and snap.head.turn[0] == change.intent:
            new.turn = None  # the commit ends this batch's turn
        t = transition(
            old,
            new,
            targets,
            groups,
            fresh_theme=fresh_theme,
            announce=bool(self.listeners),
            by=change.intent,
        )
        self._restore_pages(targets, old, t, change)
        dropped = self._rewrite_pages(targets, old, t, change)
        for slug, c in change.claims.items():
            if c.written and c.source_key not in targets:
                # its key failed this time: the slug stays held, in the head,
                # until a delivery of that key publishes it or takes it down
                w = Withdrawal(slug, c.source_key)
                new.withdrawing = with_withdrawal(new.withdrawing, w)
        # the markers of media the batch now uses (once per convergence),
        # with the look-up of which of its new media are uploaded
        markers = {k: m for k, m in t.media_added.items() if change.media_refs.get(k) != m}
        self.pool.run(
            [lambda k=k, m=m: add_media_refs(self.source, k, m) for k, m in markers.items()]
            + self._media_lookups(t.media_new - change.media_public)
        )
        change.media_refs.update(markers)
        if first:
            new.theme = renderer.theme
        if (
            t.unchanged
            and new.withdrawing == old.withdrawing
            and new.announce == old.announce
            and not first
            and not dirty
        ):
            # already converged (duplicate or late events), except perhaps
            # for page deletions a crash interrupted after the commit
            # (announcements owed are the next commit's or the sweep's)
            if t.gone:
                self._settle(t.gone, (), wanted, change)
            if change.claims:  # none of them is needed any more
                self.source.delete_many([claim_key(s) for s in change.claims])
            return wanted, conflicts
        shared = self._plan_shared(
            old, new, groups, dirty, change, first=first, fresh_theme=fresh_theme, trusted=trusted
        )
        # the state's new objects and hints go with earlier steps of the
        # writes than the commit (``Writing._write``)
        staged = new.stage()
        if not self._write(t.media_new, t.pages, shared, dirty, change, staged, dropped):
            new.unstage()
            change.base = snap.etag
            return None
        # the log of the commit names them (``Head.log``), and the release
        # pages it rewrote: a batch that wrote one and lost to this commit
        # writes it again
        rewritten = {release_key(s) for s in change.rewrite}
        new.pages = set(dirty) | {k for k, *_r in t.pages if k in rewritten} | set(dropped)
        self._take_announcements(new, change)
        if change.intended:
            new.forget.append(intent_key(change.intent))  # committed: the record is done
        new.forget += [claim_key(s) for s in change.claims]  # the entries hold them now
        # what the commit makes obsolete is deleted with the batch's next step
        committed = new.commit(snap.etag, run=self.pool.run, later=change.obsolete)
        if committed is None:
            change.base = snap.etag
            return None
        change.turn_held = False
        change.claims.clear()
        change.deleted = [k for k in change.deleted if k not in shared.planned]
        mine = tuple(a for a in new.announce if a.by == change.intent)
        if t.gone or mine or t.media_dropped:
            assert new.committed_head is not None
            head = snap.with_head(new.committed_head, committed)
            self._settle(t.gone, mine, wanted, change, t.media_dropped, head, later=change.later)
        return wanted, conflicts

    def _restore_pages(self, targets: Targets, old: Draft, t: Transition, change: Change) -> None:
        """A release page an earlier attempt wrote for a version that a
        commit since replaced (it may have landed after that commit's own
        page) is written again with the bytes the attempt commits, and the
        attempt commits even if no entry changes: its commit is what tells
        it that no newer commit came in between."""
        planned = {k for k, *_rest in t.pages}
        for key, (entry, page) in targets.items():
            if entry is None or page is None:
                continue
            page_key = release_key(entry.slug)
            done = change.pages.get(page_key)
            if done is None or done[0] == md5_etag(page) or page_key in planned:
                continue
            t.pages.append((page_key, page, False, old.entry_of(key)))
            t.unchanged = False

    def _rewrite_pages(
        self, targets: Targets, old: Draft, t: Transition, change: Change
    ) -> tuple[str, ...]:
        """The pages of ``change.rewrite``'s slugs (``_converge``): the
        holder's page is written again with the bytes this attempt commits;
        a slug nothing holds (no entry, no withdrawal in flight: its pages
        go when it is carried out) has its page deleted. Returned: the pages
        to delete. A holder whose version cannot be rendered now (an
        embargoed update waits, or the file became invalid) keeps its page
        until the file changes again."""
        planned = {k for k, *_rest in t.pages}
        pages = {e.slug: (key, page) for key, (e, page) in targets.items() if e is not None}
        dropped: list[str] = []
        for slug in sorted(change.rewrite):
            page_key = release_key(slug)
            if page_key in planned or any(w.slug == slug for w in t.new.withdrawing):
                continue
            if slug in pages:
                key, page = pages[slug]
                if page is not None:
                    t.pages.append((page_key, page, False, old.entry_of(key)))
                    t.unchanged = False
            elif old.by_slug(slug) is None:
                dropped.append(page_key)
                t.unchanged = False
        return tuple(dropped)

    def _take_announcements(self, new: Draft, change: Change) -> None:
        """The announcements this commit records, tagged with this
        convergence (it delivers them after the commit): its own, and those
        an earlier commit's listeners failed on (or of an older version,
        untagged). Those whose convergence recorded them delivered are
        cleared, with their records; those of a commit whose listeners have
        not been called yet stay (a crash before: the sweep delivers them)."""
        keep: list[Announcement] = []
        for a in new.announce:
            if a.by == change.intent:
                keep.append(a)
            elif not a.by or change.announced.get(a.by) is False:
                keep.append(replace(a, by=change.intent))  # owed: delivered by this one
            elif a.by not in change.announced:
                keep.append(a)  # its commit's listeners are still to be called
        new.announce = tuple(dict.fromkeys(keep))
        new.forget += [announced_key(by) for by in sorted(change.announced)]

    def _after_commit(self, change: Change) -> list[Callable[[], object]]:
        """The private writes a convergence left for the batch's next step:
        the delete of what its commit made obsolete (the state objects it
        replaced, the intent record; one request) and the record of its
        announcements delivered. A fault fails the batch; its retry finds
        the site converged and finishes them; a crash leaves unreferenced
        objects (storage, nothing else) and announcements that the next
        commit or sweep delivers again (at least once)."""
        obsolete, change.obsolete = change.obsolete, []
        calls, change.later = change.later, []
        if obsolete:
            calls.append(lambda: self.source.delete_many(obsolete))
        return calls

    def _drop_obsolete(self, change: Change) -> None:
        """``_after_commit``'s writes, sent now."""
        self.pool.run(self._after_commit(change))

    def _contended(self, attempt: int) -> None:
        """A conditional write lost a race: count it, wait a jittered, growing pause."""
        self.conflicts += 1
        self._pause(attempt)

    def _pause(self, attempt: int) -> None:
        ceiling = min(self.max_backoff, self.backoff * (2 ** min(attempt, 10)))
        self.sleep(random.uniform(0, ceiling))
