"""Whether a release is still public as its alert describes it.

A press office that deletes a release published by mistake must be able to
stop its alert while it waits in the queue. The sender asks once per release
(and queue message, not per subscriber): is an entry with the alert's slug
*and* publication date listed in the release's month file of the public bucket
(``index/<yyyy>-<mm>.json``, the file that lists every public release of a
month, written in the same commit as the page)? A release taken down, or a
different release that took the freed slug, is not. Reading the public month
files is all it needs: no private state, nothing the site does not show.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..core.site import month_key
from ..errors import StorageError
from ..storage.port import Storage


class PublicSite:
    """The public bucket, read-only, as the alert sender sees it."""

    def __init__(self, public: Storage) -> None:
        self.public = public

    def listed(self, release: dict[str, Any]) -> dict[str, Any] | None:
        """The release's entry as the site lists it now (a correction made
        since it was queued included), or None when it is not public; storage
        faults raise (the queue message is retried, never dropped on a fault)."""
        try:
            slug, published = release["slug"], str(release["published_at"])
            when = datetime.fromisoformat(published)
        except (KeyError, TypeError, ValueError):
            return None  # no release the site could list
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
