"""Whether a release is still public as its alert describes it.

A press office that deletes a release published by mistake must be able to
stop its alert while it waits in the queue. The sender asks once per release
(and queue message, not per subscriber): is an entry with the alert's slug
*and* publication date listed in the release's month file of the public bucket
(``index/<yyyy>-<mm>.json``, the file that lists every public release of a
month, written in the same commit as the page)? A release taken down, or a
different release that took the freed slug, is not.

A release *corrected* meanwhile (its date or slug fixed) is no longer listed
under the alert's slug and date, yet it was never taken down. So when the
alert names its source file, a miss asks the publisher's committed state where
that file's release is listed now, and looks for that entry in its public
month file: found there, the alert goes out as the site shows the release.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..core.site import month_key
from ..errors import StorageError
from ..state import Snapshot
from ..storage.port import Storage


class PublicSite:
    """The public bucket, read-only, as the alert sender sees it (and the
    source bucket's committed state, read-only, to follow a correction)."""

    def __init__(self, public: Storage, source: Storage | None = None) -> None:
        self.public = public
        self.source = source

    def listed(
        self, release: dict[str, Any], source_key: str | None = None
    ) -> dict[str, Any] | None:
        """The release's entry as the site lists it now (a correction made
        since it was queued included), or None when it is not public; storage
        faults raise (the queue message is retried, never dropped on a fault)."""
        try:
            entry = self._in_month_file(str(release["slug"]), str(release["published_at"]))
        except (KeyError, TypeError, ValueError):
            entry = None  # no release the site could list under that name
        if entry is not None or not source_key or self.source is None:
            return entry
        now = Snapshot.read(self.source).entry_of(source_key)
        if now is None:
            return None  # taken down (or never committed)
        return self._in_month_file(now.slug, now.published_at.isoformat())

    def _in_month_file(self, slug: str, published: str) -> dict[str, Any] | None:
        when = datetime.fromisoformat(published)
        key = month_key(when.year, when.month)
        obj = self.public.get(key)
        if obj is None:
            return None  # no public release left in that month
        try:
            entries = json.loads(obj.body)["releases"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{key}: unreadable month file", key) from exc
        for e in entries:
            if e.get("slug") == slug and e.get("published_at") == published:
                return dict(e)
        return None
