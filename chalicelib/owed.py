"""Shared pages written without a commit behind them, and how they are put
right: after a lost commit race, after an attempt that gave up or failed, and
in the sweep.

A shared page an attempt wrote is *dirty* until a commit decides it: a lost
race's next attempt plans its group again on the winner's state and writes
or deletes it (the merge); an attempt that never commits records its dirty
pages as owed in the head (``Head.repair``), and the next commit (a batch's
or the sweep's) takes them over. An attempt that dies (a killed Lambda) can
record nothing then, so a convergence records the shared pages it is about
to write before it writes them (``state/intents/<id>.json``, one small PUT
beside its first writes, deleted with the commit); the sweep rewrites the
pages of every record it finds from the committed state. The record also
names the live releases whose pages the convergence writes over (written
after it): one that landed over a newer commit's page is written again from
the committed version, or deleted if nothing holds its slug any more.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta

from .core.site import Groups, plan_site, render_page
from .errors import StorageError
from .keys import INTENTS_PREFIX, intent_key, is_release_page
from .state import Draft, Snapshot
from .storage import md5_etag
from .writing import Change

log = logging.getLogger("newsroom.publisher")

# an intent record this old belongs to an invocation that is over (Lambda's
# longest timeout is 15 minutes): the sweep that repaired its pages deletes it
INTENT_ABANDONED = timedelta(minutes=20)

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


def take_owed(snap: Snapshot, dirty: set[str], groups: Groups) -> None:
    """Make the pages the head says are owed this attempt's to decide."""
    for key in snap.head.repair:
        dirty.add(key)
        add_group_of(key, groups)


class Owing:
    """The publisher's owed pages (a part of ``Publisher``; its attributes are set there)."""

    def _owe(self, pages: set[str], change: Change | None = None) -> None:
        """Record ``pages`` in the head as owed (``Head.repair``): shared pages
        written from a state that was never committed. A small conditional
        write of the head alone, retried; the next commit (a batch's or the
        sweep's) rewrites them from its own state. Once they are owed, the
        convergence's intent record (``change``) is done with, unless it
        names release pages (only the sweep puts those right)."""
        if not pages:
            return
        done = (
            change is not None
            and change.intended
            and not any(is_release_page(k) for k in change.intended)
        )
        for attempt in range(1, self.max_attempts + 1):
            try:
                draft = Draft(Snapshot.read(self.source))
                merged = tuple(sorted(set(draft.repair) | pages))
                if merged != draft.repair:
                    draft.repair = merged
                    draft.pages = pages  # the log tells a lost race to write them again
                    if done:
                        draft.forget = [intent_key(change.intent)]  # type: ignore[union-attr]
                    if draft.commit_head(draft.snap.etag) is None:
                        self._contended(attempt)
                        continue
                elif done:
                    self.source.delete(intent_key(change.intent))  # type: ignore[union-attr]
                return
            except StorageError as exc:
                log.error(
                    "repair_not_recorded",
                    extra={"pages": sorted(pages), "error_type": type(exc).__name__},
                )
                return  # the intent record tells the sweep what to check
        log.error("repair_not_recorded", extra={"pages": sorted(pages), "error_type": "contended"})

    def repair_shared(self) -> Change:
        """The sweep's repair of shared pages: those the head says are owed,
        those and the release pages the intent records name, and every page
        of the site group (front page, feeds, ``index.json``,
        sitemap index, …) whose public bytes are not what the committed state
        renders (a crash between a write and its commit). Rewritten inside a
        committed attempt, like any batch's shared pages."""
        snap = Snapshot.read(self.source)
        if snap.etag is None:
            return Change()
        stale = set(snap.head.repair)
        intents = self._intents()
        slugs: set[str] = set()
        for _at, pages, releases in intents.values():
            stale.update(pages)
            slugs.update(releases)
        if snap.head.theme == self.renderer.theme:  # else the rebuild's job
            for key, page in plan_site(Draft(snap), self.renderer).items():
                info = self.public.head(key)
                body = render_page(key, page, self.renderer)
                if info is None or info.etag != md5_etag(body):
                    stale.add(key)
        if not stale and not slugs:
            return Change()
        _wanted, _conflicts, change = self._converge(
            [], self.clock(), {}, repair=stale, rewrite=slugs
        )
        self._drop_obsolete(change)
        log.info("shared_pages_repaired", extra={"pages": sorted(stale), "releases": sorted(slugs)})
        # an invocation still running may write more after its record was
        # read: only records older than any invocation lives are done
        old = [k for k, (at, *_p) in intents.items() if at < self.clock() - INTENT_ABANDONED]
        if old:
            self.source.delete_many(old)
        return change

    def _intents(self) -> dict[str, tuple[datetime, list[str], list[str]]]:
        """The intent records (``state/intents/``): when each was written, the
        shared pages it names, and the slugs of the live releases whose
        pages it names."""
        out: dict[str, tuple[datetime, list[str], list[str]]] = {}
        for key in list(self.source.list(INTENTS_PREFIX)):
            obj = self.source.get(key)
            if obj is not None:
                doc = json.loads(obj.body)
                at = datetime.fromisoformat(doc["at"])
                out[key] = (at, list(doc["pages"]), list(doc.get("releases", ())))
        return out
