"""The whole state at once: the commit of ``newsroom rebuild``."""

from __future__ import annotations

from ..core.index import NEWEST, Entry, Index
from ..core.view import SLICE_SIZE, month_counts, topic_name
from ..keys import (
    LEGACY_STATE_KEY,
    slug_hint_key,
    source_hint_key,
)
from ..storage import Storage
from .draft import Draft
from .media_refs import add_media_refs
from .objects import Head, Snapshot, _forget, object_key


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
    and the head (``hints=False`` writes no hints and no media markers: a
    benchmark's seeded archive). Media markers are written for what an entry
    references that its ``previous`` entry did not.
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
        if hints and e.media:
            # the media markers of what it references (those of ``previous`` exist)
            add_media_refs(
                storage, e.source_key, sorted(set(e.media) - set(old.media if old else ()))
            )
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


def migrate_legacy_state(storage: Storage) -> bool:
    """Convert the single ``state/index.json`` of an earlier version into the
    bounded state, once (the head is written only if still absent). Returns
    whether there was one. A large archive is better converted by
    ``newsroom rebuild`` than by the first publish after the upgrade."""
    legacy = storage.get(LEGACY_STATE_KEY)
    if legacy is None:
        return False
    commit_full_state(storage, Index.from_bytes(legacy.body), None)
    return True
