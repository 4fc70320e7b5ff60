"""``update_search``: keep the public search bundle in line with the site.

Each run (every 5 minutes) lists the search corpus (source bucket) and the
public month files (``index/<yyyy>-<mm>.json``), heads ``index.json``, and
compares their ETags, with the search page's bytes, to what the last run
indexed; when nothing changed it
stops there (two listings, a HEAD and one small read). Otherwise it reads both, indexes
every corpus record whose slug its public month file lists (so nothing
embargoed, withdrawn or unknown to the site is ever indexed), and uploads:

1. every bundle file whose bytes differ from what the bucket holds (chunks are
   named by content, so most of a large index is untouched by one publish);
2. ``pagefind/pagefind-entry.json``, the entry point, once everything it
   refers to is in place;
3. ``search/index.html`` if it changed (its script, named by content, before it);
4. then deletes the bundle files (and older scripts) the new ones do not use, so a withdrawn
   release's words leave the bucket in the same run. The entry point is never
   cached (``no-cache``: revalidated by ETag), and the search page retries once
   with the new entry point when a chunk it asked for is gone.

Its state (``search/state.json`` in the source bucket) records the fingerprint
of the inputs and the keys of the bundle it wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..keys import (
    INDEX_KEY,
    PRIVATE_CACHE,
    SEARCH_PAGE_KEY,
    SEARCH_STATE_KEY,
    is_search_script,
    put_public,
)
from ..storage import Storage, md5_etag
from . import page_files
from .bundle import ENTRY_KEY, PREFIX, build_bundle
from .corpus import CORPUS_PREFIX, month_of_key, parse_month

log = logging.getLogger(__name__)

STATE_KEY = SEARCH_STATE_KEY
PUBLIC_MONTHS = "index/"
_PUBLIC_MONTH = re.compile(r"^index/(\d{4}-\d{2})\.json$")


@dataclass
class SearchRun:
    changed: bool = False
    records: int = 0
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "records": self.records,
            "uploaded": len(self.uploaded),
            "deleted": len(self.deleted),
            "seconds": round(self.seconds, 3),
        }


def _etags(storage: Storage, prefix: str) -> dict[str, str]:
    listing = getattr(storage, "list_etags", None)
    if listing is not None:
        return dict(listing(prefix))
    out = {}
    for key in storage.list(prefix):
        info = storage.head(key)
        if info is not None:
            out[key] = info.etag
    return out


class SearchUpdater:
    def __init__(
        self,
        source: Storage,
        public: Storage,
        renderer: Any,
        *,
        build: Callable[[list[dict[str, Any]]], dict[str, bytes]] = build_bundle,
    ) -> None:
        self.source = source
        self.public = public
        self.renderer = renderer
        self.build = build

    def run(self) -> SearchRun:
        started = time.monotonic()
        result = SearchRun()
        corpus = {k: e for k, e in _etags(self.source, CORPUS_PREFIX).items() if month_of_key(k)}
        months = {
            k: e for k, e in _etags(self.public, PUBLIC_MONTHS).items() if _PUBLIC_MONTH.match(k)
        }
        index = self.public.head(INDEX_KEY)
        months[INDEX_KEY] = index.etag if index is not None else ""
        pages = page_files(self.renderer)
        fingerprint = hashlib.sha256(
            json.dumps(
                [sorted(corpus.items()), sorted(months.items()), md5_etag(pages[SEARCH_PAGE_KEY])]
            ).encode()
        ).hexdigest()
        state_obj = self.source.get(STATE_KEY)
        state = json.loads(state_obj.body) if state_obj else {}
        if state.get("fingerprint") == fingerprint:
            result.seconds = time.monotonic() - started
            return result
        result.changed = True
        records = self._records(corpus, self._listed(months))
        result.records = len(records)
        files = self.build(records)
        files.update(pages)
        existing = _etags(self.public, PREFIX)
        existing.update(_etags(self.public, "search/"))
        last = [ENTRY_KEY, SEARCH_PAGE_KEY]  # the entry point once its chunks are in place
        for key in sorted(k for k in files if k not in last) + [k for k in last if k in files]:
            if existing.get(key) != md5_etag(files[key]):
                put_public(self.public, key, files[key])
                result.uploaded.append(key)
        for key in sorted(existing):
            if (key.startswith(PREFIX) or is_search_script(key)) and key not in files:
                self.public.delete(key)
                result.deleted.append(key)
        new_state = {
            "fingerprint": fingerprint,
            "bundle": sorted(k for k in files if k.startswith(PREFIX)),
        }
        self.source.put(
            STATE_KEY,
            json.dumps(new_state, separators=(",", ":")).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        result.seconds = time.monotonic() - started
        log.info("search index updated", extra={"search": result.to_json()})
        return result

    def _listed(self, months: dict[str, str]) -> dict[str, set[str]]:
        """Slugs the public site lists, per month: from the month files of
        ``index.json`` version 2, or from a version 1 ``index.json`` (which
        lists every release itself)."""
        listed: dict[str, set[str]] = {}
        month_keys = [k for k in months if k != INDEX_KEY]
        if month_keys:
            for key in sorted(month_keys):
                obj = self.public.get(key)
                if obj is not None:
                    slugs = {e["slug"] for e in json.loads(obj.body).get("releases", [])}
                    listed[key[len(PUBLIC_MONTHS) : -len(".json")]] = slugs
            return listed
        obj = self.public.get(INDEX_KEY)
        if obj is not None:
            for e in json.loads(obj.body).get("releases", []):
                listed.setdefault(e["published_at"][:7], set()).add(e["slug"])
        return listed

    def _records(self, corpus: dict[str, str], listed: dict[str, set[str]]) -> list[dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for key in sorted(corpus):
            month = month_of_key(key)
            slugs = listed.get(month or "", set())
            if not slugs:
                continue
            obj = self.source.get(key)
            for rec in parse_month(obj.body if obj else None):
                if rec["slug"] in slugs:
                    records[rec["slug"]] = rec
        return [records[s] for s in sorted(records)]
