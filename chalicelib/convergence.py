"""The convergence of one batch: the optimistic loop over the bounded state
(``chalicelib.state``) with the head as the commit point.

Write order (so no reader sees a listing that links to a missing page, and a
Lambda retry of the same event completes the job): media, then new release
pages, then every shared object whose inputs changed (the plan of the page
groups the batch touches, new pages before pages that link to them), updated
release pages, obsolete shared objects; then the state's objects and the head
with ``IfMatch`` on the ETag read in this attempt: the commit point. On
412/409 the attempt starts over from a fresh read, and every shared object an
earlier attempt touched is decided again. Withdrawn release pages go after the
commit (``settle``), tracked in the head's ``withdrawing`` list until gone.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .core.index import Announcement, Entry, Withdrawal
from .core.site import Groups, Page, changed_keys, plan, plan_groups, render_page
from .errors import SlugConflict, StorageError
from .keys import (
    STATE_KEY,
    cache_control,
    content_type,
    invalidation_paths,
    release_key,
)
from .sources import _Wanted
from .state import (
    Draft,
    Snapshot,
    StaleState,
    add_media_refs,
    migrate_legacy_state,
)

log = logging.getLogger("newsroom.publisher")


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


def _write_order(key: str) -> tuple[bool, int, str]:
    # topic pages first (a new release page links to them), then deeper keys
    # before shallower: a month or year page exists before the index pages
    # that link to it, a topic's feed before the topic page that links to it.
    # Deletions run in the reverse order.
    return (not key.startswith("topics/") or key.count("/") < 2, -key.count("/"), key)


def _with(items: tuple[Withdrawal, ...], w: Withdrawal) -> tuple[Withdrawal, ...]:
    keep = tuple(x for x in items if x != w)
    return tuple(sorted((*keep, w), key=lambda x: (x.slug, x.source_key)))


def _without(items: tuple[Withdrawal, ...], w: Withdrawal) -> tuple[Withdrawal, ...]:
    return tuple(x for x in items if x != w)


def _with_announcements(
    items: tuple[Announcement, ...], more: tuple[Announcement, ...]
) -> tuple[Announcement, ...]:
    return tuple(a for a in items if a not in more) + more


def _without_announcements(
    items: tuple[Announcement, ...], done: tuple[Announcement, ...]
) -> tuple[Announcement, ...]:
    return tuple(a for a in items if a not in done)


def _neighbours(groups: Groups, old: Draft, new: Draft) -> None:
    """A month that appears or goes changes its neighbours' earlier/later links."""
    before = [m for m, _n in old.months]
    after = [m for m, _n in new.months]
    for month in set(before) ^ set(after):
        months = after if month in after else before
        i = months.index(month)
        groups.months.update(months[j] for j in (i - 1, i + 1) if 0 <= j < len(months))


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


class Convergence:
    """The publisher's convergence (a part of ``Publisher``; its attributes are set there)."""

    def _converge(
        self, keys: list[str], now: datetime, failed: dict[str, Exception]
    ) -> tuple[dict[str, _Wanted], dict[str, SlugConflict], Change]:
        """Optimistic loop with the state's head as the commit point, for a whole
        batch. Each attempt reads the head, *then* the sources (so an attempt
        that commits after another batch's commit also read the sources after
        it: a stale read never overwrites a newer version), plans the page
        groups the batch touches from the bounded state, writes what changed,
        deletes what is obsolete, and commits with ``IfMatch``. On 412/409 it
        starts over; keys an earlier attempt wrote or deleted are redone from
        the fresh state (the groups of every attempt are planned, so each of
        those keys is decided again)."""
        change = Change()
        dirty: set[str] = set()
        cache: dict[str, Any] = {}
        acting: dict[str, _Wanted] = {}  # what the pages written so far were for
        wanted: dict[str, _Wanted] = {}
        conflicts: dict[str, SlugConflict] = {}
        groups = Groups()
        if not keys:
            return wanted, conflicts, change
        for attempt in range(1, self.max_attempts + 1):
            change.attempts = attempt
            try:
                done = self._attempt(keys, now, failed, cache, acting, dirty, groups, change)
            except StaleState:
                done = None  # a newer commit replaced what this attempt read
            if done is None:
                self._contended(attempt)
                continue
            wanted, conflicts = done
            return wanted, conflicts, change
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
        if snap.etag is None and migrate_legacy_state(self.source):
            return None  # read the state in its new shape
        old = self._read_state = Draft(snap)
        fresh_theme = snap.etag is not None and snap.head.theme == renderer.theme
        first = snap.etag is None  # a first commit writes the whole tree
        if first:
            groups.everything = True
        wanted = self._read_sources(keys, now, cache, failed)
        conflicts: dict[str, SlugConflict] = {}
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
                    targets[key] = (old.entry_of(key), None)
                else:
                    targets[key] = (acting[key].entry, acting[key].page)
        if not targets and not dirty and not old.announce:
            return wanted, conflicts  # only rejections: the live site stays
        # slugs: the earliest-published claimant in the batch first (as a build decides)
        claims: list[Withdrawal] = []
        claimed: dict[str, str] = {}
        for key in sorted(
            (k for k, t in targets.items() if t[0] is not None),
            key=lambda k: (targets[k][0].published_at.timestamp(), k),  # type: ignore[union-attr]
        ):
            entry = targets[key][0]
            assert entry is not None
            holder = old.holder(entry.slug) or claimed.get(entry.slug)
            if holder is not None and holder != key:
                conflicts[key] = SlugConflict(entry.slug, holder, key)
                targets[key] = (old.entry_of(key), None)  # the live version (if any) stays
            elif holder is None:
                # claim the slug in the head before writing its page, so a
                # page is only ever written under a slug this source holds
                claims.append(Withdrawal(entry.slug, key))
                claimed[entry.slug] = key
        if claims:
            claim = Draft(snap)
            for w in claims:
                claim.withdrawing = _with(claim.withdrawing, w)
            if snap.etag is None:
                claim.theme = renderer.theme
            etag = claim.commit_head(snap.etag)
            if etag is None:
                return None
            snap = snap.with_head(claim.head(), etag)
            old = self._read_state = Draft(snap)
        new = Draft(snap)
        gone: set[Withdrawal] = set()
        owed: list[Announcement] = []
        pages: list[tuple[str, bytes, bool]] = []  # (key, page, is a new slug)
        media_new: set[str] = set()
        media_dropped: dict[str, set[str]] = {}
        unchanged = True
        for key, (entry, page) in targets.items():
            prev = old.entry_of(key)
            for e in (prev, entry):
                if e is not None:
                    groups.add(e)
            if prev != entry:
                unchanged = False
                new.put(prev, entry)
            if self.listeners:
                owed.extend(_announcements(key, prev, entry))
            before = set(prev.media) if prev is not None else set()
            after = set(entry.media) if entry is not None else set()
            media_new |= after - before
            if before - after:
                media_dropped[key] = before - after
            if after - before:
                add_media_refs(self.source, key, sorted(after - before))
            # pages this source no longer owns: an unpublish, a slug change, or a
            # withdrawal a crashed earlier run left unfinished
            own = {w for w in old.withdrawing if w.source_key == key}
            mine = set(own)
            if prev is not None and (entry is None or prev.slug != entry.slug):
                mine.add(Withdrawal(prev.slug, key))
            mine = {w for w in mine if entry is None or w.slug != entry.slug}
            for w in own - mine:
                new.withdrawing = _without(new.withdrawing, w)  # (re)published under this slug
            for w in mine:
                new.withdrawing = _with(new.withdrawing, w)
            gone |= mine
            if (
                entry is not None
                and page is not None
                and (
                    prev is None
                    or prev.revision != entry.revision
                    or prev.slug != entry.slug
                    or not fresh_theme
                )
            ):
                pages.append(
                    (release_key(entry.slug), page, prev is None or prev.slug != entry.slug)
                )
        new.announce = _with_announcements(new.announce, tuple(owed))
        if first:
            new.theme = renderer.theme
        if (
            unchanged
            and new.withdrawing == old.withdrawing
            and new.announce == old.announce
            and not first
            and not dirty
        ):
            # already converged (duplicate or late events), except perhaps
            # for page deletions or announcements a crash interrupted after
            # the commit
            if gone or new.announce:
                self._settle(gone, new.announce, wanted, change)
            return wanted, conflicts

        _neighbours(groups, old, new)
        if groups.everything:
            old_plan: dict[str, Page] = {} if first else plan(old, renderer)
            new_plan = plan(new, renderer)
        else:
            old_plan = plan_groups(old, renderer, groups)
            new_plan = plan_groups(new, renderer, groups)
        write, obsolete = changed_keys(old_plan if fresh_theme else {}, new_plan)
        # pages new to the site before pages that change: nothing links to a
        # new page (a month's neighbours, a topic's index) until those change
        to_write = sorted(
            (set(write) | dirty) & new_plan.keys(),
            key=lambda k: (k in old_plan, *_write_order(k)),
        )
        to_delete = sorted(
            (set(obsolete) | (dirty - new_plan.keys())) - new_plan.keys(),
            key=_write_order,
            reverse=True,
        )
        # media first: a release's photo or PDF is public before its page
        for key in sorted(media_new):
            self._publish_media(key, change)
        # new pages first: nothing links to them until the listings do
        for page_key, body, fresh in pages:
            if fresh:
                self._put(page_key, body, change)
        for key in to_write:
            body = render_page(key, new_plan[key], renderer)
            # inputs changed but the bytes may not have (a body edit changes
            # the entry, not the front page): the public object was rendered
            # from old_plan under this theme, so compare bytes, no I/O
            if key not in dirty and key in old_plan and fresh_theme:
                if render_page(key, old_plan[key], renderer) == body:
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
        committed = new.commit(snap.etag)
        if committed is None:
            return None
        change.deleted = [k for k in change.deleted if k not in new_plan]
        if gone or new.announce or media_dropped:
            self._settle(gone, new.announce, wanted, change, media_dropped)
        return wanted, conflicts

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
