"""What the site plan reads: a view of the public entries, in bounded pieces.

Every shared page of the site is computed from one of these pieces, never from
the whole archive: the newest entries and the counts (``newest``, ``months``,
``kinds``, ``topics``), one month's entries (``month``), or the newest entries
and month counts of one topic or kind (``topic``, ``kind``). A full build gets
them by grouping every entry (``FullView``); the publisher gets them from the
bounded objects of its private state (``chalicelib.state``), reading only the
pieces one change touches. Both give the plan the same inputs, so the two paths
write the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .index import NEWEST, Entry
from .model import KIND_LABELS

SLICE_SIZE = 20  # newest entries a topic or kind front page shows (and its feed draws on)


@dataclass(frozen=True)
class Slice:
    """One topic or kind: its newest entries and its count per month."""

    name: str  # a topic's display name (the newest entry's spelling); "" for a kind
    newest: tuple[Entry, ...] = ()
    months: tuple[tuple[str, int], ...] = ()  # (yyyy-mm, count), newest first

    @property
    def total(self) -> int:
        return sum(n for _m, n in self.months)


class View(Protocol):
    @property
    def newest(self) -> tuple[Entry, ...]: ...  # at most NEWEST, newest first

    @property
    def months(self) -> tuple[tuple[str, int], ...]: ...  # every month, newest first

    @property
    def kinds(self) -> tuple[tuple[str, int], ...]: ...  # every kind, in KIND_LABELS order

    @property
    def topics(self) -> tuple[tuple[str, str, int], ...]: ...  # (slug, name, count) by slug

    def month(self, month: str) -> tuple[Entry, ...]: ...

    def topic(self, slug: str) -> Slice: ...

    def kind(self, kind: str) -> Slice: ...


def topic_name(entries: Iterable[Entry], slug: str) -> str:
    """The spelling of topic ``slug`` in the newest of ``entries`` that has it."""
    for e in entries:
        for name, s in zip(e.topics, e.topic_slugs, strict=True):
            if s == slug:
                return name
    return slug


def month_counts(entries: Iterable[Entry]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.month_key] = counts.get(e.month_key, 0) + 1
    return tuple(sorted(counts.items(), reverse=True))


def make_slice(name: str, entries: tuple[Entry, ...]) -> Slice:
    """A slice of ``entries`` (all of one topic or kind, newest first)."""
    return Slice(name, entries[:SLICE_SIZE], month_counts(entries))


class FullView:
    """Every entry in memory, grouped once (a full build, a rebuild)."""

    def __init__(self, entries: tuple[Entry, ...]) -> None:
        self.entries = entries
        self._months: dict[str, list[Entry]] = {}
        self._kinds: dict[str, list[Entry]] = {k: [] for k in KIND_LABELS}
        self._topics: dict[str, list[Entry]] = {}
        for e in entries:
            self._months.setdefault(e.month_key, []).append(e)
            self._kinds[e.kind].append(e)
            for s in dict.fromkeys(e.topic_slugs):
                self._topics.setdefault(s, []).append(e)

    @property
    def newest(self) -> tuple[Entry, ...]:
        return self.entries[:NEWEST]

    @property
    def months(self) -> tuple[tuple[str, int], ...]:
        return tuple((m, len(self._months[m])) for m in sorted(self._months, reverse=True))

    @property
    def kinds(self) -> tuple[tuple[str, int], ...]:
        return tuple((k, len(g)) for k, g in self._kinds.items())

    @property
    def topics(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(
            (s, topic_name(self._topics[s], s), len(self._topics[s])) for s in sorted(self._topics)
        )

    def month(self, month: str) -> tuple[Entry, ...]:
        return tuple(self._months.get(month, ()))

    def topic(self, slug: str) -> Slice:
        group = tuple(self._topics.get(slug, ()))
        return make_slice(topic_name(group, slug), group)

    def kind(self, kind: str) -> Slice:
        return make_slice("", tuple(self._kinds.get(kind, ())))
