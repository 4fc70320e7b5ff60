"""``update_search``: keep the public search bundle in line with the site.

Each run (every 5 minutes) lists the search corpus (source bucket) and the
public month files (``index/<yyyy>-<mm>.json``), heads ``index.json``, and
compares their ETags, with the search page's bytes, to what the last run
indexed; when nothing changed it stops there (two listings, a HEAD and one
small read).

Otherwise it reads ``index.json`` (the number of releases of each month, which
decides the pieces: ``pieces.py``) and rebuilds only the pieces (one Pagefind
index per year) whose months changed: a piece records what it was built from
(the ETags of its months' corpus files and public month files), and one whose
inputs are the same is neither read nor rebuilt. For each changed piece, one
after the other, it reads those months, indexes every corpus record whose slug
the public month file lists (so nothing embargoed, withdrawn or unknown to the
site is ever indexed), and uploads:

1. the piece's files whose bytes differ from what the bucket holds (chunks are
   named by content), then the piece's ``pagefind-entry.json``, once
   everything it names is in place;
2. then the top of the bundle: Pagefind's runtime, the shell index and the
   manifest ``pagefind/pieces.json`` (the entry point the search page reads
   first), then ``search/index.html`` if it changed (its script, named by
   content, before it);
3. then deletes the files the new bundle no longer uses (a changed piece's
   old chunks, a piece that has no release left), so a withdrawn release's
   words leave the bucket in the same run. The entry points are never cached
   (``no-cache``: revalidated by ETag), and the search page retries once from
   the new manifest when a chunk it asked for is gone.

A new Pagefind version (the pieces' entries name it) rebuilds every piece, so
pieces and runtime always match. Its state (``search/state.json`` in the
source bucket) records the fingerprint of the inputs, each piece's inputs and
entry, and the top files it wrote.
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
    is_pagefind_entry,
    is_search_script,
    put_public,
)
from ..storage import Storage, md5_etag
from . import page_files
from .bundle import ENTRY_KEY, ENTRY_NAME, PREFIX, build_piece, piece_prefix
from .corpus import CORPUS_PREFIX, corpus_key, month_of_key, parse_month
from .pieces import MANIFEST_KEY, piece_of_key, piece_topics, pieces_of, shell

log = logging.getLogger(__name__)

STATE_KEY = SEARCH_STATE_KEY
PUBLIC_MONTHS = "index/"
_PUBLIC_MONTH = re.compile(r"^index/(\d{4}-\d{2})\.json$")


@dataclass
class SearchRun:
    changed: bool = False
    records: int = 0
    pieces: list[str] = field(default_factory=list)  # the pieces rebuilt
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "records": self.records,
            "pieces": len(self.pieces),
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


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class SearchUpdater:
    def __init__(
        self,
        source: Storage,
        public: Storage,
        renderer: Any,
        *,
        build: Callable[[str, list[dict[str, Any]]], tuple[dict[str, bytes], dict[str, bytes]]]
        = build_piece,
    ) -> None:  # fmt: skip
        self.source = source
        self.public = public
        self.renderer = renderer
        self.build = build
        self._index: dict[str, Any] | None = None
        self._months: dict[str, set[str]] = {}  # slugs of the public month files read

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
        self._index, self._months = None, {}
        v1 = not any(k != INDEX_KEY for k in months)  # an index.json of version 1
        of = pieces_of(self._counts(v1, sorted(k for k in months if k != INDEX_KEY)))
        inputs: dict[str, list[list[str]]] = {}
        for month, piece in sorted(of.items()):
            public_key = INDEX_KEY if v1 else f"{PUBLIC_MONTHS}{month}.json"
            inputs.setdefault(piece, []).append(
                [month, corpus.get(corpus_key(month), ""), months.get(public_key, "")]
            )
        old: dict[str, dict[str, Any]] = state.get("pieces", {})
        version = state.get("pagefind", "")
        new: dict[str, dict[str, Any]] = {}
        todo = [
            p
            for p in sorted(inputs)
            if old.get(p, {}).get("inputs") != _digest(inputs[p]) or "topics" not in old[p]
        ]
        runtime: dict[str, bytes] = {}
        done: set[str] = set()
        while todo:
            piece = todo.pop(0)
            done.add(piece)
            built = self._piece(piece, [m for m, _c, _p in inputs[piece]], v1, result, runtime)
            if built is not None:
                entry, topics = built
                new[piece] = {"inputs": _digest(inputs[piece]), "entry": entry, "topics": topics}
                if entry.get("version") != version:
                    # a new Pagefind: every piece is built again with it
                    version = entry.get("version", "")
                    todo = [p for p in sorted(inputs) if p not in done]
        for piece in sorted(inputs):
            if piece not in done and piece in old:
                new[piece] = old[piece]
        top, needed = shell({p: new[p]["entry"] for p in new}, {p: new[p]["topics"] for p in new})
        old_top: dict[str, str] = state.get("top", {})
        for key in needed:
            if key in runtime:
                top[key] = runtime[key]
        missing = [k for k in needed if k not in top and k not in old_top]
        if missing and not state.get("retried"):
            # the runtime of a language is gone (a lost file): build everything again
            log.warning("search runtime missing, rebuilding", extra={"missing": missing})
            return self._again(state, result)
        top_md5 = {k: md5_etag(v) for k, v in top.items()}
        for key in [k for k in needed if k not in top and k in old_top]:
            top_md5[key] = old_top[key]  # kept as it is
        files = dict(top)
        files.update(pages)
        existing = _etags(self.public, "search/")
        last = [ENTRY_KEY, MANIFEST_KEY, SEARCH_PAGE_KEY]  # the entry points, in this order
        for key in sorted(k for k in files if k not in last) + [k for k in last if k in files]:
            known = old_top.get(key) if key.startswith(PREFIX) else existing.get(key)
            if known != md5_etag(files[key]):
                put_public(self.public, key, files[key])
                result.uploaded.append(key)
        stale = [k for k in old_top if k not in top_md5]
        stale += [k for k in state.get("bundle", []) if k not in top_md5]  # the single-index layout
        stale += [k for k in existing if is_search_script(k) and k not in files]
        for key in sorted(set(stale)):
            if piece_of_key(key) in new:
                continue  # a piece's files are its own sync's business
            self.public.delete(key)
            result.deleted.append(key)
        for piece in sorted((set(old) | done) - set(new)):
            # no release left in it, and the manifest no longer names it
            result.deleted.extend(self._sync(piece_prefix(piece), {}))
        new_state = {"fingerprint": fingerprint, "pagefind": version, "pieces": new, "top": top_md5}
        self.source.put(
            STATE_KEY,
            json.dumps(new_state, sort_keys=True, separators=(",", ":")).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        result.seconds = time.monotonic() - started
        log.info("search index updated", extra={"search": result.to_json()})
        return result

    def _again(self, state: dict[str, Any], result: SearchRun) -> SearchRun:
        self.source.put(
            STATE_KEY,
            json.dumps({"top": state.get("top", {}), "retried": True}).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        again = self.run()
        again.uploaded[:0] = result.uploaded
        again.pieces[:0] = result.pieces
        return again

    def _piece(
        self,
        piece: str,
        months: list[str],
        v1: bool,
        result: SearchRun,
        runtime: dict[str, bytes],
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Build one piece from its months and bring its folder in line; its entry
        and topics (None: no release of it is listed: its folder goes once the
        manifest no longer names it)."""
        records: dict[str, dict[str, Any]] = {}
        for month in months:
            slugs = self._listed(month, v1)
            if not slugs:
                continue
            obj = self.source.get(corpus_key(month))
            for rec in parse_month(obj.body if obj else None):
                if rec["slug"] in slugs:
                    records[rec["slug"]] = rec
        result.records += len(records)
        result.pieces.append(piece)
        if not records:
            return None
        files, more = self.build(piece, [records[s] for s in sorted(records)])
        runtime.update(more)
        prefix = piece_prefix(piece)
        result.deleted.extend(self._sync(prefix, files, result.uploaded))
        return json.loads(files[prefix + ENTRY_NAME]), piece_topics(files, piece)

    def _sync(
        self, prefix: str, files: dict[str, bytes], uploaded: list[str] | None = None
    ) -> list[str]:
        """Upload ``files`` (all under ``prefix``) that differ from the bucket's,
        the entry point last, then delete what else is under ``prefix``."""
        existing = _etags(self.public, prefix)
        for key in sorted(files, key=lambda k: (is_pagefind_entry(k), k)):
            if existing.get(key) != md5_etag(files[key]):
                put_public(self.public, key, files[key])
                if uploaded is not None:
                    uploaded.append(key)
        deleted = []
        for key in sorted(existing):
            if key not in files:
                self.public.delete(key)
                deleted.append(key)
        return deleted

    def _counts(self, v1: bool, month_keys: list[str]) -> dict[str, int]:
        """Public releases per month: from ``index.json`` (its months, or the
        releases of a version 1 index), else from the month files themselves."""
        index = self._public_index()
        if not v1 and index.get("months") is not None:
            return {m["month"]: int(m["count"]) for m in index["months"]}
        if not v1:
            months = [k[len(PUBLIC_MONTHS) : -len(".json")] for k in month_keys]
            return {m: len(self._listed(m, v1)) for m in months}
        counts: dict[str, int] = {}
        for e in index.get("releases", []):
            counts[e["published_at"][:7]] = counts.get(e["published_at"][:7], 0) + 1
        return counts

    def _public_index(self) -> dict[str, Any]:
        if self._index is None:
            obj = self.public.get(INDEX_KEY)
            self._index = json.loads(obj.body) if obj is not None else {}
        return self._index

    def _listed(self, month: str, v1: bool) -> set[str]:
        """Slugs of ``month`` the public site lists: from its month file (``index.json``
        version 2), or from a version 1 ``index.json`` (which lists every release)."""
        if v1:
            return {
                e["slug"]
                for e in self._public_index().get("releases", [])
                if e["published_at"][:7] == month
            }
        if month not in self._months:
            obj = self.public.get(f"{PUBLIC_MONTHS}{month}.json")
            releases = json.loads(obj.body).get("releases", []) if obj is not None else []
            self._months[month] = {e["slug"] for e in releases}
        return self._months[month]
