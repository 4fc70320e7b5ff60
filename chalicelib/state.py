"""The publisher's private state, in bounded objects (source bucket, ``state/``).

One publish reads and writes a bounded amount, whatever the archive's size:

- ``state/head.json`` — the commit point: the newest ``NEWEST`` entries, the
  count per month, kind and topic (with a pointer to each month's, topic's and
  kind's object), the withdrawals in progress and the announcements owed.
- ``state/objects/…`` — one object per month (every entry of that month, with
  its private fields), per topic and per kind (its newest ``SLICE_SIZE``
  entries and its count per month). They are never changed in place: a commit
  writes changed ones under a new name and points the head at them, so every
  reader sees one consistent version, exactly as with one object.
- ``state/sources/<name>.json`` and ``state/slugs/<slug>.json`` — pointers
  (which months may hold the entry of a source, or of a slug's holder). They
  are hints: written before the commit, and every answer they give is checked
  against the month object the head points to, so a stale one is harmless.
- ``state/media-refs/<media key>=/<source key>`` — empty markers: a media file
  is public while some marker's release references it (checked the same way).

Commit discipline (``Draft.commit``): write the new objects and hints, then the
head with ``IfMatch`` on the ETag read. On 412/409 the caller starts over from
a fresh read; the objects the failed attempt wrote are deleted (or, after a
crash, left unreferenced). After a commit the objects it replaced are deleted;
a reader still holding the old head then finds one missing and starts over
(``StaleState``), as after a failed conditional write.
"""

from __future__ import annotations

import json
import uuid
from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from .core.index import NEWEST, Announcement, Entry, Index, Withdrawal
from .core.model import KIND_LABELS
from .core.view import SLICE_SIZE, Slice, month_counts, topic_name
from .errors import PreconditionFailed, StorageError
from .keys import (
    HEAD_KEY,
    MEDIA_REFS_PREFIX,
    PRIVATE_CACHE,
    STATE_OBJECTS_PREFIX,
    slug_hint_key,
    source_hint_key,
)
from .storage import Storage, put_if_unchanged


def object_key(kind: str, name: str, token: str) -> str:
    """``state/objects/<kind>s/<name>.<token>.json``: one version of one object."""
    return f"{STATE_OBJECTS_PREFIX}{kind}s/{name}.{token}.json"


class StaleState(StorageError):
    """An object the head read points to is gone: a newer commit replaced it."""


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _entries_json(entries: Iterable[Entry]) -> str:
    return "[" + ",".join(e.json_text for e in entries) + "]"


def _entries(items: list[dict[str, Any]]) -> list[Entry]:
    return [Entry.from_json(e) for e in items]


def _put_private(storage: Storage, key: str, body: bytes, **conditions: Any) -> str:
    return storage.put(
        key, body, content_type="application/json", cache_control=PRIVATE_CACHE, **conditions
    )


@dataclass
class Head:
    """The commit point (``state/head.json``)."""

    theme: str = ""
    newest: list[Entry] = field(default_factory=list)
    # month -> (object token, count); the object is ``object_key("month", month, token)``
    months: dict[str, tuple[str, int]] = field(default_factory=dict)
    topics: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # (token, n, name)
    kinds: dict[str, tuple[str, int]] = field(default_factory=dict)
    withdrawing: tuple[Withdrawal, ...] = ()
    announce: tuple[Announcement, ...] = ()

    def to_bytes(self) -> bytes:
        doc = {
            "version": 3,
            "theme": self.theme,
            "months": [[m, *self.months[m]] for m in sorted(self.months, reverse=True)],
            "topics": [[s, *self.topics[s]] for s in sorted(self.topics)],
            "kinds": [[k, *self.kinds[k]] for k in KIND_LABELS if k in self.kinds],
            "withdrawing": [{"slug": w.slug, "source_key": w.source_key} for w in self.withdrawing],
            "announce": [a.to_json() for a in self.announce],
        }
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return (text[:-1] + ',"newest":' + _entries_json(self.newest) + "}\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Head:
        if not raw:
            return cls()
        doc = json.loads(raw)
        return cls(
            theme=doc.get("theme", ""),
            newest=_entries(doc.get("newest", [])),
            months={m: (o, n) for m, o, n in doc.get("months", [])},
            topics={s: (o, n, name) for s, o, n, name in doc.get("topics", [])},
            kinds={k: (o, n) for k, o, n in doc.get("kinds", [])},
            withdrawing=tuple(
                Withdrawal(w["slug"], w["source_key"]) for w in doc.get("withdrawing", [])
            ),
            announce=tuple(Announcement(**a) for a in doc.get("announce", [])),
        )


class Snapshot:
    """One committed version of the state: the head and the objects it points
    to, read on demand and kept (immutable objects never change)."""

    def __init__(self, storage: Storage, head: Head, etag: str | None) -> None:
        self.storage = storage
        self.head = head
        self.etag = etag
        self._objects: dict[str, Any] = {}
        self._hints: dict[str, list[str]] = {}
        self.reads = 0  # state objects read (bench figures)

    def with_head(self, head: Head, etag: str | None) -> Snapshot:
        """The same objects under a head this process just committed."""
        snap = Snapshot(self.storage, head, etag)
        snap._objects, snap._hints = self._objects, self._hints
        return snap

    @classmethod
    def read(cls, storage: Storage) -> Snapshot:
        current = storage.get(HEAD_KEY)
        if current is None:
            return cls(storage, Head(), None)
        return cls(storage, Head.from_bytes(current.body), current.etag)

    def _object(self, key: str) -> Any:
        if key not in self._objects:
            obj = self.storage.get(key)
            if obj is None:
                raise StaleState(f"{key} was replaced by a newer commit", key)
            self.reads += 1
            self._objects[key] = json.loads(obj.body)
        return self._objects[key]

    def month(self, month: str) -> list[Entry]:
        ref = self.head.months.get(month)
        if ref is None:
            return []
        doc = self._object(object_key("month", month, ref[0]))
        if "_entries" not in doc:
            doc["_entries"] = _entries(doc["entries"])
        return list(doc["_entries"])

    def _slice(self, kind: str, name: str) -> tuple[list[Entry], dict[str, int]]:
        ref = (self.head.topics if kind == "topic" else self.head.kinds).get(name)
        if ref is None:
            return [], {}
        doc = self._object(object_key(kind, name, ref[0]))
        if "_newest" not in doc:
            doc["_newest"] = _entries(doc["newest"])
        return list(doc["_newest"]), dict(doc["months"])

    def topic(self, slug: str) -> tuple[list[Entry], dict[str, int]]:
        return self._slice("topic", slug)

    def kind(self, kind: str) -> tuple[list[Entry], dict[str, int]]:
        return self._slice("kind", kind)

    def hint(self, key: str) -> list[str]:
        """The months a source's (or a slug holder's) entry may be in."""
        if key not in self._hints:
            obj = self.storage.get(key)
            self._hints[key] = list(json.loads(obj.body).get("months", [])) if obj else []
        return self._hints[key]

    def entry_of(self, source_key: str) -> Entry | None:
        """The committed entry of ``source_key`` (a bounded lookup: its hint's months)."""
        for month in self.hint(source_hint_key(source_key)):
            for e in self.month(month):
                if e.source_key == source_key:
                    return e
        return None

    def holder(self, slug: str) -> str | None:
        """Source key of whoever holds ``slug`` now (live, claimed or being withdrawn)."""
        w = next((w for w in self.head.withdrawing if w.slug == slug), None)
        if w is not None:
            return w.source_key
        for month in self.hint(slug_hint_key(slug)):
            for e in self.month(month):
                if e.slug == slug:
                    return e.source_key
        return None

    def all_entries(self) -> list[Entry]:
        """Every entry (reads every month object: a sweep or a rebuild, never a publish)."""
        out: list[Entry] = []
        for month in sorted(self.head.months, reverse=True):
            out.extend(self.month(month))
        return out

    def index(self) -> Index:
        """The whole state as one in-memory ``Index`` (a rebuild's ``live``)."""
        h = self.head
        return Index(tuple(self.all_entries()), h.withdrawing, h.theme, h.announce)


def _matches(entry: Entry, what: tuple[str, str]) -> bool:
    kind, name = what
    if kind == "all":
        return True
    if kind == "kind":
        return entry.kind == name
    return name in entry.topic_slugs


class Draft:
    """A working copy of a snapshot: the view (``core.view.View``) the site plan
    reads, changed entry by entry, then committed as one new version."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        h = snap.head
        self.theme = h.theme
        self.withdrawing = h.withdrawing
        self.announce = h.announce
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
        self.written: list[str] = []  # objects the last commit wrote
        self.replaced: list[str] = []  # objects it replaced

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
        months = self.hints.get(source_hint_key(source_key)) or self.snap.hint(
            source_hint_key(source_key)
        )
        for month in months:
            for e in self._month(month):
                if e.source_key == source_key:
                    return e
        return None

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
            months={m: h.months[m] for m in h.months},
            topics=dict(h.topics),
            kinds=dict(h.kinds),
        )
        return head

    def commit(self, etag: str | None, *, cleanup: bool = True) -> str | None:
        """Write the changed objects and hints, then the head with ``IfMatch``
        on ``etag``. Returns the new ETag, or ``None`` if the head changed since
        (the caller starts over from a fresh read)."""
        storage = self.snap.storage
        head = self.head()
        written: list[str] = []
        replaced: list[str] = []
        for kind, name in sorted(self.changed):
            refs: dict[str, Any] = getattr(head, kind + "s")
            old = refs.get(name)
            count = self._counts[kind].get(name, 0)
            if count == 0:
                refs.pop(name, None)
            else:
                if kind == "month":
                    body = _dumps({"month": name, "entries": []})
                    body = body[: -len(b"[]}")] + _entries_json(self._months[name]).encode() + b"}"
                else:
                    newest, months = self._slices[(kind, name)]
                    body = _dumps({"months": sorted(months.items(), reverse=True), "newest": []})
                    body = body[: -len(b"[]}")] + _entries_json(newest).encode() + b"}"
                token = uuid.uuid4().hex[:12]
                key = object_key(kind, name, token)
                _put_private(storage, key, body)
                written.append(key)
                refs[name] = (
                    (token, count, self._names[name]) if kind == "topic" else (token, count)
                )
            if old is not None:
                replaced.append(object_key(kind, name, old[0]))
        for key, months in sorted(self.hints.items()):
            if self.snap.hint(key) != months:
                _put_private(storage, key, _dumps({"months": months}))
        etag = put_if_unchanged(
            storage,
            HEAD_KEY,
            head.to_bytes(),
            etag,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        self.written, self.replaced = written, replaced
        if cleanup:
            for key in written if etag is None else replaced:
                _forget(storage, key)
        return etag

    def commit_head(self, etag: str | None) -> str | None:
        """Commit only the head's own fields (a claim, a drained announcement):
        no month, topic or kind may have changed."""
        assert not self.changed, self.changed
        return self.commit(etag)


def _forget(storage: Storage, key: str) -> None:
    try:
        storage.delete(key)
    except StorageError:
        pass  # an unreferenced object left behind costs storage, nothing else


# media references ---------------------------------------------------------------------
def media_ref_prefix(media_key: str) -> str:
    return f"{MEDIA_REFS_PREFIX}{quote(media_key, safe='/')}=/"


def add_media_refs(storage: Storage, source_key: str, keys: Iterable[str]) -> None:
    for key in keys:
        _put_private(storage, media_ref_prefix(key) + quote(source_key, safe="/"), b"")


def drop_media_refs(storage: Storage, source_key: str, keys: Iterable[str]) -> None:
    for key in keys:
        _forget(storage, media_ref_prefix(key) + quote(source_key, safe="/"))


def media_referenced(
    storage: Storage, media_key: str, lookup: Callable[[str], Entry | None]
) -> bool:
    """Whether a public release references ``media_key`` now: a marker whose
    source's committed entry does (stale markers are passed over)."""
    prefix = media_ref_prefix(media_key)
    for marker in storage.list(prefix):
        entry = lookup(unquote(marker[len(prefix) :]))
        if entry is not None and media_key in entry.media:
            return True
    return False


# the whole state at once (a rebuild) ---------------------------------------------------------
def commit_full_state(
    storage: Storage,
    index: Index,
    etag: str | None,
    *,
    previous: Snapshot | None = None,
    hints: bool = True,
) -> str | None:
    """Write ``index`` (every entry, its theme, withdrawals and announcements)
    as the new state, conditional on the head still having ``etag``: the
    commit of ``newsroom rebuild``. Hints are written only for entries whose
    slug or month differ from ``previous`` (the snapshot the caller read), so
    a rebuild that changed nothing writes one object per month, topic and kind
    and the head (``hints=False`` writes none: a benchmark's seeded archive).
    Returns the new ETag, or ``None`` if a publish committed
    since the read (run again)."""
    snap = Snapshot(storage, Head(theme=index.theme), None)
    draft = Draft(snap)
    known = {e.source_key: e for e in previous.all_entries()} if previous is not None else {}
    by_month: dict[str, list[Entry]] = {}
    for e in index.entries:
        by_month.setdefault(e.month_key, []).append(e)
    draft._months = by_month
    for m, rows in by_month.items():
        draft._counts["month"][m] = len(rows)
        draft.changed.add(("month", m))
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in index.entries:
        groups.setdefault(("kind", e.kind), []).append(e)
        for s in dict.fromkeys(e.topic_slugs):
            groups.setdefault(("topic", s), []).append(e)
        old = known.get(e.source_key)
        if hints and (old is None or old.slug != e.slug or old.month_key != e.month_key):
            hint = list(dict.fromkeys(m for m in (e.month_key, old and old.month_key) if m))
            draft.hints[source_hint_key(e.source_key)] = hint
            draft.hints[slug_hint_key(e.slug)] = hint
    draft._slices[("all", "")] = (list(index.entries[:NEWEST]), {})
    for (kind, name), rows in groups.items():
        draft._slices[(kind, name)] = (rows[:SLICE_SIZE], dict(month_counts(rows)))
        draft._counts[kind][name] = len(rows)
        draft.changed.add((kind, name))
        if kind == "topic":
            draft._names[name] = topic_name(rows, name)
    draft.withdrawing = index.withdrawing
    draft.announce = index.announce
    old_objects = _object_keys(previous.head) if previous is not None else []
    snap.hint = lambda key: []  # type: ignore[method-assign] # every hint it has is new or moved
    new_etag = draft.commit(etag, cleanup=False)
    for key in draft.written if new_etag is None else old_objects:
        _forget(storage, key)
    return new_etag


def _object_keys(head: Head) -> list[str]:
    return [
        object_key(kind, name, ref[0])
        for kind, refs in (("month", head.months), ("topic", head.topics), ("kind", head.kinds))
        for name, ref in refs.items()
    ]


__all__ = [
    "Draft",
    "Head",
    "PreconditionFailed",
    "Snapshot",
    "StaleState",
    "add_media_refs",
    "commit_full_state",
    "drop_media_refs",
    "media_referenced",
]
