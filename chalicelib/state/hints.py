"""Hints: where a source's entry may be (``state/sources/<name>.json``) and
who holds a slug (``state/slugs/<slug>.json``), each a list of months.
Written before the commit they belong to, by attempts that may lose it, so
a hint only ever grows (``add_to_hint``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from ..core.index import Entry
from ..core.model import SLUG_MAX, SLUG_RE, default_slug
from ..errors import StorageError
from ..keys import PRIVATE_CACHE, slug_hint_key, source_hint_key
from ..storage import Storage, put_if_unchanged
from .encoding import hint_body


def name_slug(source_key: str) -> str | None:
    """The slug ``releases/<name>.json`` implies, if its name is a valid slug."""
    slug = default_slug(source_key)
    return slug if SLUG_RE.fullmatch(slug) and len(slug) <= SLUG_MAX else None


def source_hints(source_key: str) -> list[str]:
    """The hints that may point to a source's entry: its own, and that of the
    slug its file name implies. A source published under that slug (nearly
    every one) writes only the slug's hint: one object answers both
    questions, who holds the slug and where the source's entry is."""
    slug = name_slug(source_key)
    return [source_hint_key(source_key)] + ([slug_hint_key(slug)] if slug else [])


HINT_TRIES = 25  # conditional writes of one hint before it counts as a fault


def add_to_hint(storage: Storage, key: str, months: list[str], known: list[str]) -> list[str]:
    """Add ``months`` to the hint at ``key``, keeping every month it names:
    a read, then a write conditional on the ETag read (or on its absence),
    again until no other writer came in between. Returns what it holds now.

    Hints are written before the commit they belong to, by attempts that may
    lose it; a hint that only ever grows cannot lose the month a concurrent
    commit put there. Overwritten instead, a losing attempt's hint could land
    after the winner's and name only months that no longer hold the entry:
    the next update of the source would add a second entry, its delete leave
    the release live. ``known``: what this process last saw of it (``[]``:
    absent, so the first write needs no read)."""
    etag: str | None = None
    stored: list[str] = []
    if known:
        stored, etag = read_hint(storage, key)
    for _ in range(HINT_TRIES):
        if stored and set(months) <= set(stored):
            return stored
        merged = list(dict.fromkeys([*months, *stored]))
        written = put_if_unchanged(
            storage,
            key,
            hint_body(merged),
            etag,
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        if written is not None:
            return merged
        stored, etag = read_hint(storage, key)
    raise StorageError(f"{key} kept changing under {HINT_TRIES} conditional writes", key)


def read_hint(storage: Storage, key: str) -> tuple[list[str], str | None]:
    """The months a hint names (``[]`` when absent) and its ETag."""
    obj = storage.get(key)
    if obj is None:
        return [], None
    return list(json.loads(obj.body).get("months", [])), obj.etag


def entry_in_months(
    source_key: str, months: Iterable[str], month: Callable[[str], Iterable[Entry]]
) -> Entry | None:
    """The entry of ``source_key`` in the first of ``months`` (each read once) that has it."""
    for m in dict.fromkeys(months):
        for e in month(m):
            if e.source_key == source_key:
                return e
    return None
