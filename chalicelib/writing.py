"""The write step of one attempt: what goes to the public bucket before the
commit, and in which order.

Order, so no reader sees a page that links to a missing one: media, then new
release pages, then new shared pages rank by rank (a page exists before any
page links to it), then every page that exists already together with the
updated release pages, then obsolete shared pages (deepest last). The
independent requests of one step run at once (``pool``); each step is over
before the next starts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from .core.index import Entry
from .core.site import Page
from .errors import PreconditionFailed
from .keys import (
    PRIVATE_CACHE,
    RELEASE_PAGE,
    cache_control,
    content_type,
    intent_key,
    invalidation_paths,
    is_release_page,
    release_key,
)
from .state.draft import _Staged
from .storage import md5_etag


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
    # for the merge after a lost race: the ETag of the head the last attempt
    # planned on, the hints and sources it read, and each shared page it
    # wrote (the digest of its bytes) or deleted (None)
    base: str | None = field(default=None, repr=False)
    hints: dict[str, list[str]] = field(default_factory=dict, repr=False)
    wanted: dict[str, Any] = field(default_factory=dict, repr=False)
    shared: dict[str, str | None] = field(default_factory=dict, repr=False)
    media_refs: dict[str, list[str]] = field(default_factory=dict, repr=False)  # markers written
    media_public: set[str] = field(default_factory=set, repr=False)  # media published
    # private objects a commit made obsolete, deleted with the batch's next
    # step, and other writes left for that step (``Convergence._after_commit``)
    obsolete: list[str] = field(default_factory=list, repr=False)
    later: list[Callable[[], object]] = field(default_factory=list, repr=False)
    # the intent record (``keys.intent_key``) of this convergence and the
    # pages it names so far (shared ones, and live releases' pages)
    intent: str = field(default_factory=lambda: uuid.uuid4().hex[:16], repr=False)
    intended: set[str] = field(default_factory=set, repr=False)
    # slugs whose release page the sweep writes again (``Convergence._rewrite_pages``)
    rewrite: set[str] = field(default_factory=set, repr=False)
    # new slugs this convergence claimed (``claims.Claim`` by slug), and the
    # state of the records of announcements (``announced_key``) read so far:
    # True delivered, False the listeners failed
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    announced: dict[str, bool] = field(default_factory=dict, repr=False)
    turn_seen: bool = field(default=False, repr=False)  # another batch's turn was read
    turn_held: bool = field(default=False, repr=False)  # this batch's turn is in the head

    @property
    def paths(self) -> list[str]:
        out: list[str] = []
        for key in [*self.written, *self.deleted]:
            out.extend(invalidation_paths(key))
        return sorted(set(out))


# (public key, page bytes, is a new slug, the committed entry it replaces)
ReleasePage = tuple[str, bytes, bool, "Entry | None"]


@dataclass
class SharedWrites:
    """The shared pages one attempt writes and deletes (``shared.plan_shared``)."""

    bodies: dict[str, bytes]  # in write order
    to_delete: list[str]  # in delete order
    existing: set[str]  # planned before the change (written over, not new)
    planned: set[str]  # planned after the change


def _write_order(key: str) -> tuple[bool, int, str]:
    # topic pages first (a new release page links to them), then deeper keys
    # before shallower: a month or year page exists before the index pages
    # that link to it, a topic's feed before the topic page that links to it.
    # Deletions run in the reverse order.
    return (not key.startswith("topics/") or key.count("/") < 2, -key.count("/"), key)


def rank(key: str) -> tuple[bool, int, bool]:
    """A rank of the write order of pages that come or go: ``_write_order``
    without its tie-break by name, except that a leaf (a feed, a JSON or XML
    file) goes before the HTML pages of its depth, which may link to it.
    Pages of one rank do not link to each other."""
    later, depth, _name = _write_order(key)
    return (later, depth, key.endswith(".html"))


def step(key: str, exists: bool) -> tuple[bool, bool, int, bool]:
    """New pages by rank, so a page exists before any page links to it; pages
    that exist already are rewritten in one step (a link from one of them
    reaches a page that exists, or a new one written before)."""
    return (True, False, 0, False) if exists else (False, *rank(key))


class Writing:
    """The publisher's write step (a part of ``Publisher``; its attributes are set there)."""

    def _write(
        self,
        media_new: set[str],
        pages: list[ReleasePage],
        shared: SharedWrites,
        dirty: set[str],
        change: Change,
        staged: _Staged | None = None,
        dropped: tuple[str, ...] = (),
    ) -> bool:
        """Write one attempt's objects in order (module docstring). Every
        shared key is added to ``dirty`` before its request: a write that
        fails may still land, and the next attempt or commit decides it.
        ``False``: a page under a slug this convergence claimed was there
        already; nothing after the new pages was written (``claims``).

        ``staged``: the state's writes for the commit, sent in earlier steps
        than the commit itself: its new objects (immutable, read by nobody
        before the head points at them) with the first step; its hints with
        the first step after every release page is written (a hint of a
        version can then never land before that version's page), else by
        the commit.

        ``dropped``: release pages of slugs nothing holds, deleted with the
        updated release pages (the sweep's repair of an intent record)."""
        for key in sorted(media_new - change.media_public):
            self._publish_media(key, change)
            change.media_public.add(key)
        # the release pages: kept if an earlier attempt wrote these bytes over
        # the same committed entry (a lost race re-plans only the shared pages)
        pages = [
            (k, body, fresh, prev)
            for k, body, fresh, prev in pages
            if change.pages.get(k) != (md5_etag(body), prev)
        ]
        # new pages first: nothing links to them until the listings do; with
        # them, the record of the shared pages about to be written. The first
        # page under a slug this convergence claimed is written only if absent
        claimed = {release_key(slug): c for slug, c in change.claims.items()}
        calls = [
            (lambda k=k, body=body: self._put_claimed(k, body, claimed[k], change))
            if k in claimed
            else (lambda k=k, body=body: self._put(k, body, change))
            for k, body, fresh, _p in pages
            if fresh
        ]
        # the record also names the pages of live releases written over (and
        # those dropped): they land after it, so a convergence that dies
        # before its commit leaves none the sweep cannot find
        updated = [(k, body) for k, body, fresh, _p in pages if not fresh]
        intended = change.intended | set(shared.bodies) | set(shared.to_delete)
        intended |= {k for k, _b in updated} | set(dropped)
        if intended != change.intended:
            calls.append(lambda: self._record_intent(intended, change))
        if False in self.pool.run([*calls, *(staged.take_objects() if staged else ())]):
            return False  # a page under a slug claimed now: read the head again
        bodies = shared.bodies
        steps = [list(s) for _r, s in groupby(bodies, key=lambda k: step(k, k in shared.existing))]
        if not steps or steps[-1][0] not in shared.existing:
            steps.append([])
        for n, step_keys in enumerate(steps):
            dirty.update(step_keys)  # before the requests: a write that fails may land
            items = [(k, bodies[k]) for k in step_keys]
            drops = []
            if n == len(steps) - 1:
                items += updated
                drops = [lambda k=k: self._drop(k, change) for k in dropped]
            hints = staged.take_hints() if staged and not updated and items else []
            puts = [lambda i=i: self._put(i[0], i[1], change) for i in items]
            self.pool.run([*puts, *drops, *hints])
            for k in step_keys:
                change.shared[k] = md5_etag(bodies[k])
        for k, body, _fresh, prev in pages:
            change.pages[k] = (md5_etag(body), prev)
        # obsolete pages go before the commit, inside this attempt: a
        # concurrent publish that needs one again commits after us and
        # rewrites it, and a crash cannot leave one behind
        for _r, group in groupby(shared.to_delete, key=rank):
            step_keys = list(group)
            dirty.update(step_keys)
            self.public.delete_many(step_keys)
            change.deleted.extend(k for k in step_keys if k not in change.deleted)
            change.shared.update(dict.fromkeys(step_keys))
        return True

    def _put_claimed(self, key: str, body: bytes, claim: Any, change: Change) -> bool:
        """The page of a slug this convergence claimed: only if absent the
        first time. A page there already belongs to a holder that committed
        before the claim was made (the next attempt's read of the head names
        it) or is a stray nobody holds (the next attempt overwrites it)."""
        if claim.written or claim.occupied:
            claim.written = True
            self._put(key, body, change)
            return True
        try:
            self.public.put(
                key,
                body,
                content_type=content_type(key),
                cache_control=cache_control(key),
                if_none_match=True,
            )
        except PreconditionFailed:
            claim.occupied = True
            return False
        finally:
            claim.written = not claim.occupied
        if key not in change.written:
            change.written.append(key)
        return True

    def _record_intent(self, pages: set[str], change: Change) -> None:
        """Record the shared pages this convergence may write before it writes
        them (``state/intents/``), and the slugs of live releases whose pages
        it writes over: if it dies before its commit, the sweep puts them
        back to the committed state (``owed``). The commit deletes the
        record."""
        doc = {
            "pages": sorted(k for k in pages if not is_release_page(k)),
            "releases": sorted(RELEASE_PAGE.name(k) for k in pages if is_release_page(k)),
            "at": self.clock().isoformat(),
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.source.put(
            intent_key(change.intent),
            body,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        change.intended = pages

    def _drop(self, key: str, change: Change) -> None:
        self.public.delete(key)
        if key not in change.deleted:
            change.deleted.append(key)

    def _put(self, key: str, body: bytes, change: Change) -> None:
        self.public.put(key, body, content_type=content_type(key), cache_control=cache_control(key))
        if key not in change.written:
            change.written.append(key)
