"""A working copy of a snapshot: the view the site plan reads, changed entry by
entry, then committed as one new version."""

from __future__ import annotations

import uuid
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.index import NEWEST, Entry
from ..core.model import KIND_LABELS
from ..core.view import SLICE_SIZE, Slice, topic_name
from ..keys import (
    HEAD_KEY,
    PRIVATE_CACHE,
    slug_hint_key,
    source_hint_key,
)
from ..storage import put_if_unchanged
from .encoding import month_body, slice_body
from .hints import add_to_hint, entry_in_months, name_slug, source_hints
from .objects import Head, Logged, Snapshot, _forget, _put_private, object_key


def _matches(entry: Entry, what: tuple[str, str]) -> bool:
    kind, name = what
    if kind == "all":
        return True
    if kind == "kind":
        return entry.kind == name
    return name in entry.topic_slugs


@dataclass
class _Staged:
    """The object and hint writes of one commit, prepared once (``Draft.stage``)."""

    changed: frozenset[tuple[str, str]]
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    puts: list[tuple[str, bytes]] = field(default_factory=list)
    objects: list[Callable[[], object]] = field(default_factory=list)  # not sent yet
    hints: list[Callable[[], object]] = field(default_factory=list)  # not sent yet
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # hints as written

    def take_objects(self) -> list[Callable[[], object]]:
        """The object writes not sent yet (the caller sends them now)."""
        calls, self.objects = self.objects, []
        return calls

    def take_hints(self) -> list[Callable[[], object]]:
        """The hint writes not sent yet (the caller sends them now)."""
        calls, self.hints = self.hints, []
        return calls


class Draft:
    """A working copy of a snapshot: the view (``core.view.View``) the site plan
    reads, changed entry by entry, then committed as one new version."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        h = snap.head
        self.theme = h.theme
        self.withdrawing = h.withdrawing
        self.announce = h.announce
        self.repair = h.repair
        self.turn = h.turn
        self._months: dict[str, list[Entry]] = {}
        self._slices: dict[tuple[str, str], tuple[list[Entry], dict[str, int]]] = {}
        self._slices[("all", "")] = (list(h.newest), {m: n for m, (_o, n) in h.months.items()})
        self._counts = {
            "month": {m: n for m, (_o, n) in h.months.items()},
            "kind": {k: n for k, (_o, n) in h.kinds.items()},
            "topic": {s: n for s, (_o, n, _name) in h.topics.items()},
        }
        self._names = {s: name for s, (_o, _n, name) in h.topics.items()}
        self.changed: set[tuple[str, str]] = set()  # ("month"|"topic"|"kind", name)
        self.hints: dict[str, list[str]] = {}  # hint key -> months
        self.keys: set[str] = set()  # sources whose entry changed
        self.pages: set[str] = set()  # shared pages written or deleted for this commit
        self.written: list[str] = []  # objects the last commit wrote
        self.replaced: list[str] = []  # objects it replaced
        self.forget: list[str] = []  # private objects a commit makes obsolete (deleted with them)
        self.committed_head: Head | None = None  # the head the last commit wrote
        self._staged: _Staged | None = None  # objects and hints written ahead (``stage``)

    # the view the plan reads ------------------------------------------------------
    @property
    def newest(self) -> tuple[Entry, ...]:
        return tuple(self._slices[("all", "")][0][:NEWEST])

    @property
    def months(self) -> tuple[tuple[str, int], ...]:
        c = self._counts["month"]
        return tuple((m, c[m]) for m in sorted(c, reverse=True) if c[m])

    @property
    def kinds(self) -> tuple[tuple[str, int], ...]:
        return tuple((k, self._counts["kind"].get(k, 0)) for k in KIND_LABELS)

    @property
    def topics(self) -> tuple[tuple[str, str, int], ...]:
        c = self._counts["topic"]
        return tuple((s, self._names[s], c[s]) for s in sorted(c) if c[s])

    def month(self, month: str) -> tuple[Entry, ...]:
        return tuple(self._month(month))

    def topic(self, slug: str) -> Slice:
        newest, months = self._slice(("topic", slug))
        return Slice(
            self._names.get(slug, slug), tuple(newest), tuple(sorted(months.items(), reverse=True))
        )

    def kind(self, kind: str) -> Slice:
        newest, months = self._slice(("kind", kind))
        return Slice("", tuple(newest), tuple(sorted(months.items(), reverse=True)))

    # lookups --------------------------------------------------------------------------
    def entry_of(self, source_key: str) -> Entry | None:
        months = [
            m
            for key in source_hints(source_key)
            for m in self.hints.get(key) or self.snap.hint(key)
        ]
        return entry_in_months(source_key, months, self._month)

    def holder(self, slug: str) -> str | None:
        """Who holds ``slug``: a claim or withdrawal in progress, else the live entry."""
        w = next((w for w in self.withdrawing if w.slug == slug), None)
        if w is not None:
            return w.source_key
        entry = self.by_slug(slug)
        return entry.source_key if entry is not None else None

    def by_slug(self, slug: str) -> Entry | None:
        months = self.hints.get(slug_hint_key(slug)) or self.snap.hint(slug_hint_key(slug))
        for month in months:
            for e in self._month(month):
                if e.slug == slug:
                    return e
        return None

    # changes ------------------------------------------------------------------------
    def _month(self, month: str) -> list[Entry]:
        if month not in self._months:
            self._months[month] = self.snap.month(month)
        return self._months[month]

    def _slice(self, what: tuple[str, str]) -> tuple[list[Entry], dict[str, int]]:
        if what not in self._slices:
            kind, name = what
            self._slices[what] = self.snap.topic(name) if kind == "topic" else self.snap.kind(name)
        return self._slices[what]

    def put(self, prev: Entry | None, entry: Entry | None) -> None:
        """Replace ``prev`` (the source's committed entry, if any) by ``entry``."""
        if prev == entry:
            return
        source_key = (entry or prev).source_key  # type: ignore[union-attr]
        self.keys.add(source_key)
        months = [e.month_key for e in (prev, entry) if e is not None]
        for month in dict.fromkeys(months):
            rows = [e for e in self._month(month) if e.source_key != source_key]
            if entry is not None and entry.month_key == month:
                insort(rows, entry, key=lambda e: e.sort_key)
            self._months[month] = rows
            self._counts["month"][month] = len(rows)
            self.changed.add(("month", month))
        touched = [("all", "")]
        for e in (prev, entry):
            if e is not None:
                touched.append(("kind", e.kind))
                touched += [("topic", s) for s in e.topic_slugs]
        for what in dict.fromkeys(touched):
            self._update_slice(what, source_key, prev, entry)
        if entry is not None:
            found = prev.month_key if prev is not None else None
            hint = list(dict.fromkeys(m for m in (entry.month_key, found) if m))
            if entry.slug != name_slug(source_key):
                # under its name's slug the slug's hint is the source's too
                self.hints[source_hint_key(source_key)] = hint
            if prev is None or prev.slug != entry.slug or prev.month_key != entry.month_key:
                self.hints[slug_hint_key(entry.slug)] = hint

    def _update_slice(
        self, what: tuple[str, str], source_key: str, prev: Entry | None, entry: Entry | None
    ) -> None:
        newest, months = self._slice(what)
        size = NEWEST if what[0] == "all" else SLICE_SIZE
        newest = [e for e in newest if e.source_key != source_key]
        months = dict(months)
        if prev is not None and _matches(prev, what):
            months[prev.month_key] = months.get(prev.month_key, 0) - 1
        if entry is not None and _matches(entry, what):
            months[entry.month_key] = months.get(entry.month_key, 0) + 1
            if len(newest) < size or entry.sort_key < newest[-1].sort_key:
                insort(newest, entry, key=lambda e: e.sort_key)
        months = {m: n for m, n in months.items() if n > 0}
        newest = newest[:size]
        total = sum(months.values())
        if len(newest) < min(size, total):
            newest = self._refill(what, months, size)
        self._slices[what] = (newest, months)
        if what[0] != "all":
            self.changed.add(what)
            self._counts[what[0]][what[1]] = total
            if what[0] == "topic":
                self._names[what[1]] = topic_name(newest, what[1])

    def _refill(self, what: tuple[str, str], months: dict[str, int], size: int) -> list[Entry]:
        """The newest ``size`` entries of a slice, from its months (newest first):
        after a removal left fewer than it should show."""
        out: list[Entry] = []
        for month in sorted(months, reverse=True):
            out.extend(e for e in self._month(month) if _matches(e, what))
            if len(out) >= size:
                break
        return sorted(out, key=lambda e: e.sort_key)[:size]

    # the commit -----------------------------------------------------------------------
    def head(self) -> Head:
        h = self.snap.head
        head = Head(
            theme=self.theme,
            newest=list(self.newest),
            withdrawing=self.withdrawing,
            announce=self.announce,
            repair=self.repair,
            months={m: h.months[m] for m in h.months},
            topics=dict(h.topics),
            kinds=dict(h.kinds),
            log=h.log,
            turn=self.turn,
        )
        return head

    def stage(self) -> _Staged:
        """The writes of the changed objects and of the hints, for the caller
        to send in earlier steps than the commit (``_Staged.objects`` with
        the release pages: nothing reads them until the head points at them;
        ``_Staged.hints`` once the release pages are written); ``commit``
        writes whatever was not sent, then the head. After ``stage`` only the
        head's own fields may change."""
        self._staged = self._object_writes()
        return self._staged

    def unstage(self) -> None:
        """The attempt ends without a commit: delete the staged objects it
        sent (best effort; nothing points at them)."""
        staged, self._staged = self._staged, None
        if staged is not None and not staged.objects:
            _forget(self.snap.storage, *(k for k, _b in staged.puts))

    def _object_writes(self) -> _Staged:
        staged = _Staged(frozenset(self.changed))
        for kind, name in sorted(self.changed):
            if self._counts[kind].get(name, 0) == 0:
                continue
            if kind == "month":
                body = month_body(name, self._months[name])
            else:
                newest, months = self._slices[(kind, name)]
                body = slice_body(sorted(months.items(), reverse=True), newest)
            token = uuid.uuid4().hex[:12]
            staged.tokens[(kind, name)] = token
            staged.puts.append((object_key(kind, name, token), body))
        storage = self.snap.storage
        # a hint already naming every month of this commit's is left as it is
        # (what this process knows of a hint is never more than it holds)
        hints = [
            (k, m) for k, m in sorted(self.hints.items()) if not set(m) <= set(self.snap.hint(k))
        ]

        def put_hint(key: str, months: list[str]) -> None:
            staged.merged.append((key, add_to_hint(storage, key, months, self.snap.hint(key))))

        staged.objects = [lambda k=k, b=b: _put_private(storage, k, b) for k, b in staged.puts]
        staged.hints = [lambda k=k, m=m: put_hint(k, m) for k, m in hints]
        return staged

    def commit(
        self,
        etag: str | None,
        *,
        cleanup: bool = True,
        run: Any = None,
        later: list[str] | None = None,
    ) -> str | None:
        """Write the changed objects and hints (all at once with ``run``, a
        ``RequestPool.run``: they are independent until the head points at
        them; nothing if ``stage`` handed them out), then the head with
        ``IfMatch`` on ``etag``. Returns the new ETag, or ``None`` if the
        head changed since (the caller starts over from a fresh read).
        ``later``: a committed head's obsolete objects are put there for the
        caller to delete with its next step, rather than deleted here."""
        storage = self.snap.storage
        staged, self._staged = self._staged, None
        if staged is None:
            staged = self._object_writes()
        calls = staged.take_objects() + staged.take_hints()
        if run is None:
            for call in calls:
                call()
        elif calls:
            run(calls)
        assert staged.changed == self.changed, "changed after stage()"
        head = self.head()
        head.log = head.logged(
            Logged(
                etag or "",
                tuple(sorted(self.keys)),
                tuple((k, tuple(v)) for k, v in sorted(self.hints.items())),
                tuple(sorted(self.pages)),
            )
        )
        replaced: list[str] = []
        for kind, name in sorted(self.changed):
            refs: dict[str, Any] = getattr(head, kind + "s")
            old = refs.get(name)
            count = self._counts[kind].get(name, 0)
            if count == 0:
                refs.pop(name, None)
            else:
                token = staged.tokens[(kind, name)]
                refs[name] = (
                    (token, count, self._names[name]) if kind == "topic" else (token, count)
                )
            if old is not None:
                replaced.append(object_key(kind, name, old[0]))
        written = [k for k, _b in staged.puts]
        etag = put_if_unchanged(
            storage,
            HEAD_KEY,
            head.to_bytes(),
            etag,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        self.written, self.replaced = written, replaced
        self.committed_head = head
        if etag is None:
            # a lost race: the hints hold what this attempt wrote; a cache
            # that outlives the snapshot (``share_hints``) knows it, so the
            # next attempt writes only hints whose value changes again
            for key, months in staged.merged:
                self.snap.remember_hint(key, months)
        if cleanup and etag is None:
            _forget(storage, *written)  # a lost race: nothing points at them
        elif cleanup and later is not None:
            later.extend(replaced + self.forget)
        elif cleanup and (replaced or self.forget):
            # a fault here fails the batch; its retry finds it done
            storage.delete_many(replaced + self.forget)
        return etag

    def commit_head(self, etag: str | None) -> str | None:
        """Commit only the head's own fields (a claim, a drained announcement):
        no month, topic or kind may have changed."""
        assert not self.changed, self.changed
        return self.commit(etag)
