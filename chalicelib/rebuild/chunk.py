"""Step 2, ``render``: one chunk's pages written, its entries recorded; the
chunk that completes the set queues the commit."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

from ..errors import StorageError
from ..keys import (
    PRIVATE_CACHE,
    put_public,
    rebuild_key,
    release_key,
)
from ..storage import md5_etag
from .base import RebuildBase
from .records import ChunkResult, _Outcome

log = logging.getLogger("newsroom.rebuild")

CHUNK_RECHECKS = 3  # a source that keeps changing under its chunk is left to the commit


class RenderStep(RebuildBase):
    def render_chunk(
        self, rebuild_id: str, chunk: int, keys: list[str], slugs: dict[str, str] | None = None
    ) -> ChunkResult | None:
        """Render one chunk; ``slugs``: the slug each of its sources held when the
        rebuild started (a page is written only over the source's own page)."""
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            # unknown, or committed already (a late duplicate delivery): nothing to do
            return None
        done_key = rebuild_key(rebuild_id, f"chunks/{chunk:06d}.json")
        if self.source.head(done_key) is None:
            try:
                result = self._render(chunk, keys, slugs or {})
            except Exception as exc:
                self._record_failure(rebuild_id, chunk, exc)
                raise
            self.source.put(
                done_key,
                result.to_bytes(),
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )
        else:
            result = None  # a duplicate delivery: the chunk is recorded
        # the chunk that completes the set queues the commit (two may both see it
        # complete; a second commit finds the report and does nothing)
        done = sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "chunks/")))
        if done >= manifest.chunks:
            self.queue.send([{"rebuild": rebuild_id, "action": "commit"}])
        return result

    def _render(self, chunk: int, keys: list[str], slugs: dict[str, str]) -> ChunkResult:
        now = self.clock()
        result = ChunkResult(chunk)
        records = self._records()

        def one(key: str) -> tuple[str, _Outcome, bool]:
            wrote = False
            for _check in range(CHUNK_RECHECKS):
                outcome = self._read(key, now, records)
                if outcome.status == "published":
                    assert outcome.entry is not None and outcome.page is not None
                    page_key = release_key(outcome.entry.slug)
                    info = self.public.head(page_key)
                    if info is not None and slugs.get(key) != outcome.entry.slug:
                        # a page this source did not hold: perhaps another's (a
                        # contested slug), so the commit decides and writes it
                        return key, _Outcome("unsettled"), wrote
                    if info is None or info.etag != md5_etag(outcome.page):
                        put_public(self.public, page_key, outcome.page)
                        wrote = True
                # the source again: a newer version may have been published (its
                # page written) while this one rendered; then render that one
                info = self.source.head(key)
                if (info.etag if info else "") == outcome.etag:
                    return key, outcome, wrote
            return key, _Outcome("changing"), wrote  # the commit reads it once more

        with ThreadPoolExecutor(max_workers=min(self.io_threads, max(1, len(keys)))) as pool:
            for key, outcome, wrote in pool.map(one, keys):
                if outcome.status == "published":
                    assert outcome.entry is not None
                    result.entries.append(outcome.entry)
                    if outcome.entry.translation_key:
                        result.links[key] = outcome.links
                    if wrote:
                        result.written.append(release_key(outcome.entry.slug))
                    else:
                        result.unchanged += 1
                else:
                    result.other[key] = outcome.status
        return result

    def _record_failure(self, rebuild_id: str, chunk: int, exc: Exception) -> None:
        """Best effort: the reason ``newsroom rebuild`` prints for a failed chunk."""
        log.error(
            json.dumps(
                {"event": "rebuild_chunk_failed", "rebuild": rebuild_id, "chunk": chunk,
                 "error_type": type(exc).__name__, "error": str(exc)},
                ensure_ascii=False,
            )
        )  # fmt: skip
        try:
            self.source.put(
                rebuild_key(rebuild_id, f"failures/{chunk:06d}.json"),
                json.dumps({"chunk": chunk, "error": f"{type(exc).__name__}: {exc}"}).encode(),
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )
        except StorageError:
            pass
