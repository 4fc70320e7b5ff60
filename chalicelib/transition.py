"""What a batch changes in the committed state, decided without I/O: each
key's target (the version the site should show), who gets a contested slug,
and the new working copy of the state with its withdrawals, announcements,
media and release pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .core.index import Announcement, Entry, Withdrawal
from .core.site import Groups
from .errors import SlugConflict
from .keys import release_key
from .sources import _Wanted
from .state import Draft
from .writing import ReleasePage

# source key -> (the entry the site should show, its page's bytes)
Targets = dict[str, tuple[Entry | None, bytes | None]]


def with_withdrawal(items: tuple[Withdrawal, ...], w: Withdrawal) -> tuple[Withdrawal, ...]:
    keep = tuple(x for x in items if x != w)
    return tuple(sorted((*keep, w), key=lambda x: (x.slug, x.source_key)))


def without_withdrawal(items: tuple[Withdrawal, ...], w: Withdrawal) -> tuple[Withdrawal, ...]:
    return tuple(x for x in items if x != w)


def with_announcements(
    items: tuple[Announcement, ...], more: tuple[Announcement, ...]
) -> tuple[Announcement, ...]:
    return tuple(a for a in items if a not in more) + more


def without_announcements(
    items: tuple[Announcement, ...], done: tuple[Announcement, ...]
) -> tuple[Announcement, ...]:
    return tuple(a for a in items if a not in done)


def announcements(key: str, prev: Entry | None, entry: Entry | None) -> list[Announcement]:
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


def targets_of(wanted: dict[str, _Wanted], acting: dict[str, _Wanted], old: Draft) -> Targets:
    """Each key's target. ``acting`` records what the pages written so far
    were for: a file replaced by an invalid one after an earlier attempt wrote
    its pages finishes that version, so the site stays consistent."""
    targets: Targets = {}
    for key, w in wanted.items():
        if w.status != "rejected":
            acting[key] = w
        if key in acting:
            if acting[key].status == "scheduled":
                # an embargoed update of a live release: the live version
                # stays, unchanged, until the new instant
                targets[key] = (old.entry_of(key), None)
            else:
                targets[key] = (acting[key].entry, acting[key].page)
        elif any(x.source_key == key for x in old.withdrawing):
            # a rejected file with a withdrawal in flight (the claim of a dead
            # invocation the sweep recorded, a crash): its live version stays
            # and the withdrawal is carried out, or the slug stays held for good
            targets[key] = (old.entry_of(key), None)
    return targets


def claim_slugs(targets: Targets, old: Draft) -> tuple[list[Withdrawal], dict[str, SlugConflict]]:
    """Slugs: the earliest-published claimant in the batch first (as a build
    decides). A key refused its slug keeps its live version (``targets`` is
    changed in place); the claims of free slugs are returned, to be committed
    to the head before any page is written under them."""
    claims: list[Withdrawal] = []
    conflicts: dict[str, SlugConflict] = {}
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
            claims.append(Withdrawal(entry.slug, key))
            claimed[entry.slug] = key
    return claims, conflicts


@dataclass
class Transition:
    """One attempt's change of the state: ``new`` is the working copy after it."""

    new: Draft
    unchanged: bool = True  # no key's committed entry changes
    gone: set[Withdrawal] = field(default_factory=set)  # release pages to delete after the commit
    pages: list[ReleasePage] = field(default_factory=list)
    media_new: set[str] = field(default_factory=set)
    media_dropped: dict[str, set[str]] = field(default_factory=dict)
    media_added: dict[str, list[str]] = field(default_factory=dict)  # source -> media it now uses


def transition(
    old: Draft,
    new: Draft,
    targets: Targets,
    groups: Groups,
    *,
    fresh_theme: bool,
    announce: bool,
    by: str = "",
) -> Transition:
    """Apply ``targets`` to ``new`` (a copy of ``old``), adding to ``groups``
    every page group an entry leaves or joins; the announcements it owes are
    tagged ``by`` (the convergence that delivers them)."""
    t = Transition(new)
    owed: list[Announcement] = []
    for key, (entry, page) in targets.items():
        prev = old.entry_of(key)
        for e in (prev, entry):
            if e is not None:
                groups.add(e)
        if prev != entry:
            t.unchanged = False
            new.put(prev, entry)
        if announce:
            owed.extend(announcements(key, prev, entry))
        before = set(prev.media) if prev is not None else set()
        after = set(entry.media) if entry is not None else set()
        t.media_new |= after - before
        if before - after:
            t.media_dropped[key] = before - after
        if after - before:
            t.media_added[key] = sorted(after - before)
        # pages this source no longer owns: an unpublish, a slug change, or a
        # withdrawal a crashed earlier run left unfinished
        own = {w for w in old.withdrawing if w.source_key == key}
        mine = set(own)
        if prev is not None and (entry is None or prev.slug != entry.slug):
            mine.add(Withdrawal(prev.slug, key))
        mine = {w for w in mine if entry is None or w.slug != entry.slug}
        for w in own - mine:
            new.withdrawing = without_withdrawal(new.withdrawing, w)  # (re)published here
        for w in mine:
            new.withdrawing = with_withdrawal(new.withdrawing, w)
        t.gone |= mine
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
            fresh = prev is None or prev.slug != entry.slug
            t.pages.append((release_key(entry.slug), page, fresh, prev))
    new.announce = with_announcements(new.announce, tuple(replace(a, by=by) for a in owed))
    return t
