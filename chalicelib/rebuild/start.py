"""Step 1, ``start``: list the sources, record the manifest, queue the chunks."""

from __future__ import annotations

import json
import logging
import uuid

from ..errors import StorageError
from ..keys import (
    HEAD_KEY,
    PRIVATE_CACHE,
    REBUILT_THEME_KEY,
    RELEASES_PREFIX,
    is_release_key,
    rebuild_key,
    release_key,
)
from ..state import Snapshot, StaleState
from .base import RebuildBase
from .records import Manifest
from .sqs import MAX_MESSAGE_BYTES

log = logging.getLogger("newsroom.rebuild")


class StartStep(RebuildBase):
    def start(
        self, chunk_size: int | None = None, rebuild_id: str | None = None, *, full: bool = False
    ) -> Manifest:
        """List the sources, record the manifest, queue the chunks (the commit
        is queued by the chunk that completes the set). Unless ``full``, a
        source whose listed ETag is the digest its live entry was rendered from,
        under the same theme and with its page in place, is not queued at all:
        its entry is recorded as it is (``parts/<month>/reused.json``), as a chunk
        would have."""
        size = max(1, int(chunk_size or self.chunk_size))
        rid = rebuild_id or (
            self.clock().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        )
        listing = {
            k: e.strip('"')
            for k, e in self.source.list_etags(RELEASES_PREFIX).items()
            if is_release_key(k)
        }
        for _attempt in range(self.max_attempts):
            try:
                etag, held, skip = self._scan(rid, listing, full)
                break
            except StaleState:
                continue  # a publish replaced a month while it was read: again
        else:
            raise StorageError("the state kept changing while it was read", HEAD_KEY)
        keys = sorted(k for k in listing if k not in skip)
        chunks = _chunked(keys, size, held)
        manifest = Manifest(
            rid, len(chunks), len(listing), size, self.clock().isoformat(), len(skip), etag or "",
        )  # fmt: skip
        self.source.put(
            rebuild_key(rid, "manifest.json"),
            manifest.to_bytes(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        if chunks:
            self.queue.send(
                {"rebuild": rid, "action": "render", "chunk": n, "keys": c,
                 "slugs": {k: held[k] for k in c if k in held}}
                for n, c in enumerate(chunks)
            )  # fmt: skip
        else:
            self.queue.send([{"rebuild": rid, "action": "settle"}])
        log.info(
            json.dumps(
                {"event": "rebuild_started", "rebuild": rid, "releases": len(listing),
                 "chunks": len(chunks), "reused": len(skip)}
            )
        )  # fmt: skip
        return manifest

    def _scan(
        self, rid: str, listing: dict[str, str], full: bool
    ) -> tuple[str | None, dict[str, str], set[str]]:
        """Read the committed state month by month (memory: one month at a
        time, and a slug per source): the slug each source holds (a chunk
        writes a page only over its own), and the live entries that need no
        rendering, recorded as they are in ``parts/<month>/reused.json``: those
        whose source and theme are unchanged and whose page is there. The
        theme is the one the last rebuild rendered every page under: the
        private state's theme alone does not tell, since a publish under a new
        theme renders only its own release pages. Returns the head's ETag, the
        slugs held, and the sources reused."""
        snap = Snapshot.read(self.source)
        marker = self.source.get(REBUILT_THEME_KEY)
        theme = json.loads(marker.body).get("theme") if marker else None
        reuse = not full and theme == self.renderer.theme == snap.head.theme
        pages = set(self.public.list(RELEASES_PREFIX)) if reuse and snap.head.months else set()
        held: dict[str, str] = {}
        skip: set[str] = set()
        for month in sorted(snap.head.months):
            entries = Snapshot(self.source, snap.head, snap.etag).month(month)
            keep = []
            for e in entries:
                held[e.source_key] = e.slug
                if (
                    reuse
                    and e.source_digest
                    and not e.translation_key  # its page links to versions that may change
                    and listing.get(e.source_key) == e.source_digest
                    and release_key(e.slug) in pages
                ):
                    keep.append(e)
            if keep:
                self._put_json(rebuild_key(rid, f"parts/{month}/reused.json"),
                               {"entries": [e.to_json() for e in keep]})  # fmt: skip
                skip.update(e.source_key for e in keep)
        return snap.etag, held, skip


def _chunked(keys: list[str], size: int, held: dict[str, str]) -> list[list[str]]:
    """``size`` keys per chunk, fewer when the message would grow too large."""
    chunks: list[list[str]] = []
    current: list[str] = []
    weight = 0
    for key in keys:
        cost = 2 * len(key.encode()) + len(held.get(key, "")) + 10
        if current and (len(current) >= size or weight + cost > MAX_MESSAGE_BYTES // 2):
            chunks.append(current)
            current, weight = [], 0
        current.append(key)
        weight += cost
    if current:
        chunks.append(current)
    return chunks
