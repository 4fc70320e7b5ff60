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
  against the month object the head points to, so a month too many is
  harmless. They only grow (``add_to_hint``: a conditional merge), so an
  attempt that loses its commit never takes a committed month off one.
- ``state/media-refs/<media key>=/<source key>`` — empty markers: a media file
  is public while some marker's release references it (checked the same way).

Commit discipline (``Draft.commit``): write the new objects and hints, then the
head with ``IfMatch`` on the ETag read. On 412/409 the caller starts over from
a fresh read; the objects the failed attempt wrote are deleted (or, after a
crash, left unreferenced). After a commit the objects it replaced are deleted;
a reader still holding the old head then finds one missing and starts over
(``StaleState``), as after a failed conditional write.
"""

from .draft import Draft
from .full import commit_full_state, migrate_legacy_state
from .hints import source_hints
from .media_refs import add_media_refs, drop_media_refs, media_ref_prefix, media_referenced
from .objects import Head, Logged, Since, Snapshot, StaleState, object_key

__all__ = [
    "Draft",
    "Head",
    "Logged",
    "Since",
    "Snapshot",
    "StaleState",
    "add_media_refs",
    "commit_full_state",
    "drop_media_refs",
    "media_ref_prefix",
    "media_referenced",
    "migrate_legacy_state",
    "object_key",
    "source_hints",
]
