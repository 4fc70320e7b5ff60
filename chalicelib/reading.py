"""What an attempt reads before it decides: the batch's sources read ahead
of the head it commits on, what the commits since its last read changed,
the hints the sources' names imply, and the state objects it will look up,
each step's requests at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .keys import SOURCE_HINTS_PREFIX, announced_key, slug_hint_key
from .sources import _Wanted
from .state import Since, Snapshot, StaleState, source_hints
from .writing import Change


class Reading:
    """The publisher's reads ahead (a part of ``Publisher``; its attributes are set there)."""

    def _read_ahead(
        self,
        keys: list[str],
        now: datetime,
        failed: dict[str, Exception],
        cache: dict[str, Any],
        change: Change,
    ) -> None:
        """Read the head, then the sources (parsed and rendered) and what the
        first attempt will look up, before that attempt reads the head it
        commits on: from there it reads again only what the commits in
        between changed (``_since``), as after a lost race. So the slow part
        of a batch lies outside the window in which another commit makes it
        lose (one more GET of the head)."""
        snap = Snapshot.read(self.source)
        if snap.etag is None:
            return  # a first commit: nothing to gain
        snap.share_objects(change.objects)
        snap.share_hints(change.hints)
        change.wanted = self._read_sources(keys, now, cache, failed, self._name_hints(snap, keys))
        try:
            self._prefetch(snap, keys, change.wanted)
        except StaleState:
            pass  # a commit replaced an object meanwhile: the attempt reads the new one
        change.base = snap.etag

    def _since(self, snap: Snapshot, change: Change) -> Since | None:
        """What the commits since the last attempt's read changed (``None``:
        unknown, redo everything), with the hints they wrote put into the
        hints this convergence keeps across attempts."""
        since = None
        if change.base is not None:
            since = Since() if snap.etag == change.base else snap.head.since(change.base)
        if since is None:
            change.hints.clear()
            change.wanted.clear()
            change.shared.clear()
        else:
            change.hints.update(since.hints)
        if since is None or since.keys:
            # a commit that changed entries may have taken media down or
            # dropped the markers of a key: those are decided again
            change.media_public.clear()
            for key in list(change.media_refs):
                if since is None or key in since.keys:
                    del change.media_refs[key]
        snap.share_hints(change.hints)
        return since

    def _name_hints(self, snap: Snapshot, keys: list[str]) -> list[Callable[[], object]]:
        """The reads of the hints the keys' names imply (a source's own and
        its name's slug's), to send with the sources themselves: they do not
        depend on the sources' content, only on the head read before (a
        release under the slug its name implies, nearly every one, then
        needs no hint read after its source). For a batch, one listing of
        ``state/sources/`` stands for its GETs (``Snapshot.rule_out``)."""
        hints = [h for k in keys for h in source_hints(k) if not snap.knows_hint(h)]
        own = [h for h in hints if h.startswith(SOURCE_HINTS_PREFIX)]
        calls: list[Callable[[], object]] = []
        if len(own) > 1:
            calls.append(lambda: snap.rule_out(SOURCE_HINTS_PREFIX, own))
            hints = [h for h in hints if h not in own]
        calls += [lambda h=h: snap.hint(h) for h in dict.fromkeys(hints)]
        return calls

    def _prefetch(self, snap: Snapshot, keys: list[str], wanted: dict[str, _Wanted]) -> None:
        """Read at once what this attempt will look up: the hints of the
        batch's sources and slugs not read yet, then the months they point
        to with the months, topics and kinds of the entries the batch wants,
        then those of the committed entries it replaces (nothing more,
        unless one moves to another topic or kind)."""
        run = self.pool.run
        entries = [w.entry for w in wanted.values() if w.entry is not None]
        slugs = [w.release.slug for w in wanted.values() if w.release is not None]
        hints = [h for k in keys for h in source_hints(k)] + [slug_hint_key(s) for s in slugs]
        snap.rule_out(SOURCE_HINTS_PREFIX, hints)
        snap.prefetch(run, hints=hints)
        months = {m for h in hints for m in snap.hint(h)} | {e.month_key for e in entries}
        snap.prefetch(
            run,
            months=sorted(months),
            topics=sorted({t for e in entries for t in e.topic_slugs}),
            kinds=sorted({e.kind for e in entries}),
        )
        entries += [e for e in (snap.entry_of(k) for k in keys) if e is not None]
        snap.prefetch(
            run,
            topics=sorted({t for e in entries for t in e.topic_slugs}),
            kinds=sorted({e.kind for e in entries}),
        )

    def _announced_calls(self, snap: Snapshot, change: Change) -> list[Any]:
        """Reads of the records (``announced_key``) of the convergences whose
        announcements the head holds, into ``change.announced``; a record
        once written never changes, so each is read once."""
        tags = {a.by for a in snap.head.announce if a.by and a.by != change.intent}

        def read(tag: str) -> None:
            obj = self.source.get(announced_key(tag))
            if obj is not None:
                change.announced[tag] = bool(json.loads(obj.body).get("delivered"))

        return [lambda t=t: read(t) for t in sorted(tags - set(change.announced))]
