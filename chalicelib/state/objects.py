"""The head (the commit point) and a snapshot: one committed version of the
state, its objects read on demand."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..core.index import Announcement, Entry, Index, Withdrawal
from ..core.model import KIND_LABELS
from ..errors import StorageError
from ..keys import HEAD_KEY, PRIVATE_CACHE, STATE_OBJECTS_PREFIX, slug_hint_key
from ..storage import Storage
from .encoding import entries_json
from .hints import entry_in_months, read_hint, source_hints


def object_key(kind: str, name: str, token: str) -> str:
    """``state/objects/<kind>s/<name>.<token>.json``: one version of one object."""
    return f"{STATE_OBJECTS_PREFIX}{kind}s/{name}.{token}.json"


class StaleState(StorageError):
    """An object the head read points to is gone: a newer commit replaced it."""


def _entries(items: list[dict[str, Any]]) -> list[Entry]:
    return [Entry.from_json(e) for e in items]


def _put_private(storage: Storage, key: str, body: bytes, **conditions: Any) -> str:
    return storage.put(
        key, body, content_type="application/json", cache_control=PRIVATE_CACHE, **conditions
    )


LOG_KEPT = 24  # commits the head remembers (``Head.log``)
LOG_ITEMS = 2500  # and at most this many keys, hints and pages in all


@dataclass(frozen=True)
class Logged:
    """What one commit changed, as the head remembers it: the ETag of the head
    it replaced, the source keys whose entry it changed, the hints it wrote
    (with their values) and the shared pages it wrote or deleted."""

    parent: str
    keys: tuple[str, ...] = ()
    hints: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pages: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return 1 + len(self.keys) + len(self.hints) + len(self.pages)

    def to_json(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "keys": list(self.keys),
            "hints": [[k, list(v)] for k, v in self.hints],
            "pages": list(self.pages),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Logged:
        return cls(
            doc["parent"],
            tuple(doc.get("keys", ())),
            tuple((k, tuple(v)) for k, v in doc.get("hints", ())),
            tuple(doc.get("pages", ())),
        )


@dataclass
class Since:
    """Everything committed after one head (``Head.since``)."""

    keys: set[str] = field(default_factory=set)
    hints: dict[str, list[str]] = field(default_factory=dict)
    pages: set[str] = field(default_factory=set)


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
    # shared pages an abandoned attempt wrote from a state it never committed:
    # the next attempt that commits rewrites (or deletes) them from its own
    repair: tuple[str, ...] = ()
    # the latest commits, oldest first (bounded): a batch that lost the race
    # redoes only what the commits since its read changed (``since``)
    log: tuple[Logged, ...] = ()
    # a batch that lost the race several times takes a turn: (its id, until
    # when, in epoch seconds); the others wait for its commit (``convergence``)
    turn: tuple[str, float] | None = None

    def logged(self, entry: Logged) -> tuple[Logged, ...]:
        """This head's log with ``entry`` appended, the oldest dropped past the bounds."""
        log = [*self.log, entry][-LOG_KEPT:]
        while len(log) > 1 and sum(e.size for e in log) > LOG_ITEMS:
            log.pop(0)
        return tuple(log)

    def since(self, etag: str | None) -> Since | None:
        """What the commits after the head with ``etag`` changed, or ``None``
        when the log does not reach back that far (redo everything)."""
        if etag is None:
            return None
        out = Since()
        for entry in reversed(self.log):
            out.keys.update(entry.keys)
            out.pages.update(entry.pages)
            for key, months in entry.hints:
                out.hints.setdefault(key, list(months))  # the newest value
            if entry.parent == etag:
                return out
        return None

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
        if self.repair:
            doc["repair"] = sorted(self.repair)
        if self.log:
            doc["log"] = [e.to_json() for e in self.log]
        if self.turn:
            doc["turn"] = list(self.turn)
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return (text[:-1] + ',"newest":' + entries_json(self.newest) + "}\n").encode()

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
            repair=tuple(doc.get("repair", ())),
            log=tuple(Logged.from_json(e) for e in doc.get("log", ())),
            turn=(doc["turn"][0], float(doc["turn"][1])) if doc.get("turn") else None,
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

    def share_hints(self, hints: dict[str, list[str]]) -> None:
        """Keep hints in ``hints`` (a cache that outlives this snapshot): the
        caller drops those a later commit changed (``Head.since``)."""
        hints.update(self._hints)
        self._hints = hints

    def share_objects(self, objects: dict[str, Any]) -> None:
        """Keep state objects in ``objects`` (a cache that outlives this
        snapshot): each is immutable under its key, so what an earlier read
        found holds for every head that points to it."""
        objects.update(self._objects)
        self._objects = objects

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
            self._hints[key] = read_hint(self.storage, key)[0]
        return self._hints[key]

    def knows_hint(self, key: str) -> bool:
        """Whether the hint at ``key`` was read (or ruled out) already."""
        return key in self._hints

    def rule_out(self, prefix: str, keys: Iterable[str], limit: int = 1000) -> None:
        """One listing of ``prefix`` instead of a GET per hint of ``keys``
        under it: those not listed are absent. Source hints exist only for
        releases published under a slug their file name does not imply, so
        the folder is small and a batch of new releases reads none of them.
        Skipped when it lists more than ``limit`` (one page) or saves nothing."""
        wanted = [k for k in dict.fromkeys(keys) if k.startswith(prefix) and k not in self._hints]
        if len(wanted) < 2:
            return
        listed = set(islice(self.storage.list(prefix), limit + 1))
        if len(listed) > limit:
            return
        for key in wanted:
            if key not in listed:
                self._hints[key] = []

    def remember_hint(self, key: str, months: list[str]) -> None:
        """What this process just wrote to a hint (any value a commit wrote
        names the committed month too, so lookups stay right)."""
        self._hints[key] = list(months)

    def prefetch(
        self,
        run: Any,
        *,
        hints: Iterable[str] = (),
        months: Iterable[str] = (),
        topics: Iterable[str] = (),
        kinds: Iterable[str] = (),
        also: Iterable[Any] = (),
    ) -> None:
        """Read what a step will look up, all at once (``run``: a
        ``RequestPool.run``): hints, then month, topic and kind objects not
        read yet. Lookups afterwards find them here. ``also``: more calls
        for the same round trip."""
        calls: list[Any] = list(also)
        calls += [lambda k=k: self.hint(k) for k in dict.fromkeys(hints) if k not in self._hints]
        calls += [
            lambda k=k: self._object(k)
            for k in dict.fromkeys(
                [
                    object_key("month", m, self.head.months[m][0])
                    for m in months
                    if m in self.head.months
                ]
                + [
                    object_key("topic", t, self.head.topics[t][0])
                    for t in topics
                    if t in self.head.topics
                ]
                + [
                    object_key("kind", k, self.head.kinds[k][0])
                    for k in kinds
                    if k in self.head.kinds
                ]
            )
            if k not in self._objects
        ]
        run(calls)

    def entry_of(self, source_key: str) -> Entry | None:
        """The committed entry of ``source_key`` (a bounded lookup: its hints' months)."""
        months = [m for key in source_hints(source_key) for m in self.hint(key)]
        return entry_in_months(source_key, months, self.month)

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


def _forget(storage: Storage, *keys: str) -> None:
    if not keys:
        return
    try:
        storage.delete_many(list(keys))
    except StorageError:
        pass  # an unreferenced object left behind costs storage, nothing else
