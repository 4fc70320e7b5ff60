"""The convergence of one batch: the optimistic loop over the bounded state
(``chalicelib.state``) with the head as the commit point.

Write order (so no reader sees a listing that links to a missing page, and a
Lambda retry of the same event completes the job): media, then new release
pages, then every shared object whose inputs changed (the plan of the page
groups the batch touches, new pages before pages that link to them), updated
release pages, obsolete shared objects; then the state's objects and the head
with ``IfMatch`` on the ETag read in this attempt: the commit point. The
independent requests of each step run at once (``pool``). On 412/409 the
attempt starts over from a fresh read and merges: the release pages it wrote
stay, and every shared object an earlier attempt touched is decided again.
Shared objects written by an attempt that never commits (it gave up, or met
a fault) are recorded as owed in the head, and the next commit decides them.
Withdrawn release pages go after the commit (``settle``), tracked in the
head's ``withdrawing`` list until gone.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from .core.index import Announcement, Entry, Withdrawal
from .core.site import Groups, Page, changed_keys, plan, plan_groups, plan_site, render_page
from .errors import SlugConflict, StorageError
from .keys import (
    STATE_KEY,
    cache_control,
    content_type,
    invalidation_paths,
    release_key,
    slug_hint_key,
)
from .sources import _Wanted
from .state import (
    Draft,
    Snapshot,
    StaleState,
    add_media_refs,
    migrate_legacy_state,
    source_hints,
)
from .storage import md5_etag

log = logging.getLogger("newsroom.publisher")

RENDERED_KEPT = 2000  # shared pages whose last rendering an instance keeps (a few MB)


@dataclass
class Change:
    """What one convergence wrote and deleted in the public bucket."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    attempts: int = 0
    # release page -> (digest of the bytes written, the committed entry they
    # were written over): a later attempt keeps the page rather than writing
    # the same bytes again
    pages: dict[str, tuple[str, Entry | None]] = field(default_factory=dict, repr=False)
    # immutable state objects read by earlier attempts, and shared pages rendered
    objects: dict[str, Any] = field(default_factory=dict, repr=False)
    rendered: dict[str, list[tuple[Page, bytes]]] = field(default_factory=dict, repr=False)

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


def _rank(key: str) -> tuple[bool, int, bool]:
    # a rank of the write order of pages that come or go: ``_write_order``
    # without its tie-break by name, except that a leaf (a feed, a JSON or
    # XML file) goes before the HTML pages of its depth, which may link to it.
    # Pages of one rank do not link to each other.
    later, depth, _name = _write_order(key)
    return (later, depth, key.endswith(".html"))


def _step(key: str, exists: bool) -> tuple[bool, bool, int, bool]:
    # new pages by rank, so a page exists before any page links to it; pages
    # that exist already are rewritten in one step (a link from one of them
    # reaches a page that exists, or a new one written before)
    return (True, False, 0, False) if exists else (False, *_rank(key))


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


_MONTH_PAGE = re.compile(
    r"^(?:archive|(?:topics|kinds)/[^/]+)/(\d{4})/(\d{2})/index\.html$"
    r"|^(?:index/(\d{4})-(\d{2})\.json|sitemaps/(\d{4})-(\d{2})\.xml)$"
)
_YEAR_PAGE = re.compile(r"^archive/(\d{4})/index\.html$")
_GROUP_PAGE = re.compile(r"^(topics|kinds)/([^/]+)/")


def add_group_of(key: str, groups: Groups) -> None:
    """Add the page group a shared key belongs to (``core.site``'s layout), so
    a plan of ``groups`` decides that key: written if the plan has it, deleted
    if not. Keys of no month, year, topic or kind are the site group's, which
    every plan holds."""
    m = _MONTH_PAGE.match(key)
    if m:
        year, month = (g for g in m.groups() if g is not None)
        groups.months.add(f"{year}-{month}")
        return
    m = _YEAR_PAGE.match(key)
    if m:
        groups.years.add(int(m.group(1)))
        return
    m = _GROUP_PAGE.match(key)
    if m:
        (groups.topics if m.group(1) == "topics" else groups.kinds).add(m.group(2))


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
        self,
        keys: list[str],
        now: datetime,
        failed: dict[str, Exception],
        *,
        repair: Iterable[str] = (),
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
        recorded as owed in the head, so the next commit puts them right."""
        change = Change()
        dirty: set[str] = set(repair)
        cache: dict[str, Any] = {}
        acting: dict[str, _Wanted] = {}  # what the pages written so far were for
        wanted: dict[str, _Wanted] = {}
        conflicts: dict[str, SlugConflict] = {}
        groups = Groups()
        for key in dirty:
            add_group_of(key, groups)
        if not keys and not dirty:
            return wanted, conflicts, change
        for attempt in range(1, self.max_attempts + 1):
            change.attempts = attempt
            try:
                done = self._attempt(keys, now, failed, cache, acting, dirty, groups, change)
            except StaleState:
                done = None  # a newer commit replaced what this attempt read
            except Exception:
                self._owe(dirty)  # what this attempt wrote has no commit behind it
                raise
            if done is None:
                self._contended(attempt)
                continue
            wanted, conflicts = done
            return wanted, conflicts, change
        self._owe(dirty)
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
        old = self._read_state = Draft(snap)
        for key in snap.head.repair:  # owed by an attempt that never committed
            dirty.add(key)
            add_group_of(key, groups)
        fresh_theme = snap.etag is not None and snap.head.theme == renderer.theme
        first = snap.etag is None  # a first commit writes the whole tree
        if first:
            groups.everything = True
        wanted = self._read_sources(keys, now, cache, failed)
        self._prefetch(snap, keys, wanted)
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
        new.repair = ()  # every owed key is dirty: this attempt decides it
        gone: set[Withdrawal] = set()
        owed: list[Announcement] = []
        # (key, page, is a new slug, the committed entry it replaces)
        pages: list[tuple[str, bytes, bool, Entry | None]] = []
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
                    (release_key(entry.slug), page, prev is None or prev.slug != entry.slug, prev)
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
            key=lambda k: (_step(k, k in old_plan), k),
        )
        to_delete = sorted(
            (set(obsolete) | (dirty - new_plan.keys())) - new_plan.keys(),
            key=lambda k: (_rank(k), k),
            reverse=True,
        )
        # media first: a release's photo or PDF is public before its page
        for key in sorted(media_new):
            self._publish_media(key, change)
        # the release pages: kept if an earlier attempt wrote these bytes over
        # the same committed entry (a lost race re-plans only the shared pages)
        pages = [
            (k, body, fresh, prev)
            for k, body, fresh, prev in pages
            if change.pages.get(k) != (md5_etag(body), prev)
        ]
        # new pages first: nothing links to them until the listings do
        self._put_all([(k, body) for k, body, fresh, _p in pages if fresh], change)
        bodies: dict[str, bytes] = {}
        for key in to_write:
            # inputs changed but the bytes may not have (a body edit changes
            # the entry, not the front page): the public object was rendered
            # from old_plan under this theme, so compare bytes, no I/O (the
            # old version first: it is often the one the last batch rendered)
            before = None
            if key not in dirty and key in old_plan and fresh_theme:
                before = self._render(key, old_plan[key], change)
            body = self._render(key, new_plan[key], change)
            if body == before:
                continue
            bodies[key] = body
        # new shared pages one rank at a time, then every page that exists
        # already in one step, updated release pages with them (the new topic
        # pages they link to exist by now)
        steps = [list(s) for _r, s in groupby(bodies, key=lambda k: _step(k, k in old_plan))]
        if not steps or steps[-1][0] not in old_plan:
            steps.append([])
        for n, step_keys in enumerate(steps):
            dirty.update(step_keys)  # before the requests: a write that fails may land
            items = [(k, bodies[k]) for k in step_keys]
            if n == len(steps) - 1:
                items += [(k, body) for k, body, fresh, _p in pages if not fresh]
            self._put_all(items, change)
        for k, body, _fresh, prev in pages:
            change.pages[k] = (md5_etag(body), prev)
        # obsolete pages go before the commit, inside this attempt: a
        # concurrent publish that needs one again commits after us and
        # rewrites it, and a crash cannot leave one behind
        for _r, step in groupby(to_delete, key=_rank):
            step_keys = list(step)
            dirty.update(step_keys)
            self.public.delete_many(step_keys)
            change.deleted.extend(k for k in step_keys if k not in change.deleted)
        committed = new.commit(snap.etag, run=self.pool.run)
        if committed is None:
            return None
        change.deleted = [k for k in change.deleted if k not in new_plan]
        if gone or new.announce or media_dropped:
            assert new.committed_head is not None
            mine = snap.with_head(new.committed_head, committed)
            self._settle(gone, new.announce, wanted, change, media_dropped, mine)
        return wanted, conflicts

    def _owe(self, pages: set[str]) -> None:
        """Record ``pages`` in the head as owed (``Head.repair``): shared pages
        written from a state that was never committed. A small conditional
        write of the head alone, retried; the next commit (a batch's or the
        sweep's) rewrites them from its own state."""
        if not pages:
            return
        for attempt in range(1, self.max_attempts + 1):
            try:
                draft = Draft(Snapshot.read(self.source))
                merged = tuple(sorted(set(draft.repair) | pages))
                if merged == draft.repair:
                    return
                draft.repair = merged
                if draft.commit_head(draft.snap.etag) is not None:
                    return
            except StorageError as exc:
                log.error(
                    "repair_not_recorded",
                    extra={"pages": sorted(pages), "error_type": type(exc).__name__},
                )
                return  # the sweep's check of the site's own pages is what is left
            self._contended(attempt)
        log.error("repair_not_recorded", extra={"pages": sorted(pages), "error_type": "contended"})

    def repair_shared(self) -> Change:
        """The sweep's repair of shared pages: those the head says are owed,
        and every page of the site group (front page, feeds, ``index.json``,
        sitemap index, …) whose public bytes are not what the committed state
        renders (a crash between a write and its commit). Rewritten inside a
        committed attempt, like any batch's shared pages."""
        snap = Snapshot.read(self.source)
        if snap.etag is None:
            return Change()
        stale = set(snap.head.repair)
        if snap.head.theme == self.renderer.theme:  # else the rebuild's job
            for key, page in plan_site(Draft(snap), self.renderer).items():
                info = self.public.head(key)
                body = render_page(key, page, self.renderer)
                if info is None or info.etag != md5_etag(body):
                    stale.add(key)
        if not stale:
            return Change()
        _wanted, _conflicts, change = self._converge([], self.clock(), {}, repair=stale)
        log.info("shared_pages_repaired", extra={"pages": sorted(stale)})
        return change

    def _prefetch(self, snap: Snapshot, keys: list[str], wanted: dict[str, _Wanted]) -> None:
        """Read at once what this attempt will look up: the hints of the
        batch's sources and slugs, then the months they point to and the
        months, topics and kinds of the entries involved."""
        run = self.pool.run
        entries = [w.entry for w in wanted.values() if w.entry is not None]
        slugs = [w.release.slug for w in wanted.values() if w.release is not None]
        hints = [h for k in keys for h in source_hints(k)] + [slug_hint_key(s) for s in slugs]
        snap.prefetch(run, hints=hints)
        months = {m for h in hints for m in snap.hint(h)} | {e.month_key for e in entries}
        snap.prefetch(run, months=sorted(months))
        entries += [e for e in (snap.entry_of(k) for k in keys) if e is not None]
        snap.prefetch(
            run,
            topics=sorted({t for e in entries for t in e.topic_slugs}),
            kinds=sorted({e.kind for e in entries}),
        )

    def _render(self, key: str, page: Page, change: Change) -> bytes:
        """A shared page's bytes, rendered once per convergence (a lost race
        plans again; most pages' inputs are the same), and kept for the next
        batch of this instance: the old version of a page it compares against
        is often the new version the batch before rendered."""
        for seen, body in change.rendered.get(key, ()):
            if seen == page:
                return body
        last = self._last_rendered.get(key)
        if last is not None and last[0] == page:
            body = last[1]
        else:
            body = render_page(key, page, self.renderer)
        change.rendered.setdefault(key, []).append((page, body))
        self._last_rendered[key] = (page, body)
        self._last_rendered.move_to_end(key)
        while len(self._last_rendered) > RENDERED_KEPT:
            self._last_rendered.popitem(last=False)
        return body

    def _put_all(self, items: list[tuple[str, bytes]], change: Change) -> None:
        """Write independent objects at once (one step of the write order)."""
        self.pool.each(lambda item: self._put(item[0], item[1], change), items)

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
