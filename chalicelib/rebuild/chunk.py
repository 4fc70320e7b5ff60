"""Step 2, ``render``: one chunk's pages written, its entries recorded by month
(``parts/<yyyy-mm>/<chunk>.json``, what the month steps read); the chunk that
completes the set queues ``settle``.

A chunk claims each slug it writes a new page for (``claims/<slug>``, written
only if absent): two new sources in different chunks that claim one slug never
both write its page; the second is left to ``settle``, which applies the
publisher's rules. It takes the publisher's claim of the slug too
(``state/claims/``, ended by the commit), so a publish of another file with
that slug is refused meanwhile, and writes the page only if it is still
absent. A page that exists is written only by the source that held
its slug when the rebuild started."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..claims import HELD, rebuild_intent, take_claim
from ..errors import PreconditionFailed, StorageError
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
                result = self._render(rebuild_id, chunk, keys, slugs or {})
                by_month: dict[str, list[Any]] = {}
                for e in result.entries:
                    by_month.setdefault(e.month_key, []).append(e.to_json())
                self._parallel(
                    lambda m: self._put_json(
                        rebuild_key(rebuild_id, f"parts/{m}/{chunk:06d}.json"),
                        {"entries": by_month[m]},
                    ),
                    sorted(by_month),
                )
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
            self.queue.send([{"rebuild": rebuild_id, "action": "settle"}])
        return result

    def _claim(self, rebuild_id: str, slug: str, key: str) -> bool:
        """Claim ``slug`` for ``key`` in this rebuild (first come; a second
        delivery of the same chunk finds its own claim)."""
        claim = rebuild_key(rebuild_id, f"claims/{slug}")
        try:
            self.source.put(claim, key.encode(), content_type="text/plain",
                            cache_control=PRIVATE_CACHE, if_none_match=True)  # fmt: skip
            return True
        except PreconditionFailed:
            obj = self.source.get(claim)
            return obj is not None and obj.body.decode() == key

    def _hold(self, rebuild_id: str, slug: str, key: str) -> bool:
        """Take the publisher's claim of a new slug (``claims.take_claim``)
        for ``key`` in this rebuild; ``False``: a publish in flight holds it."""
        outcome, _holder = take_claim(
            self.source, slug, key, rebuild_intent(rebuild_id), self.clock()
        )
        return outcome == HELD

    def _render(
        self, rebuild_id: str, chunk: int, keys: list[str], slugs: dict[str, str]
    ) -> ChunkResult:
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
                    if info is None and not self._claim(rebuild_id, outcome.entry.slug, key):
                        return key, _Outcome("contested"), wrote  # settle decides
                    if info is None:
                        # the publisher's claim too, so a publish of another
                        # file with this slug is refused while the rebuild
                        # holds it (the commit ends the claim); then the page
                        # only if still absent: a publish that claimed and
                        # committed since the look has its page there
                        if not self._hold(rebuild_id, outcome.entry.slug, key):
                            return key, _Outcome("contested"), wrote  # settle decides
                        try:
                            put_public(self.public, page_key, outcome.page, if_none_match=True)
                        except PreconditionFailed:
                            return key, _Outcome("unsettled"), wrote  # settle decides
                        wrote = True
                    elif info.etag != md5_etag(outcome.page):
                        put_public(self.public, page_key, outcome.page)
                        wrote = True
                if outcome.status == "rejected" and not outcome.etag:
                    return key, outcome, wrote  # unreadable (archived, SSE-C): no version
                # the source again: a newer version may have been published (its
                # page written) while this one rendered; then render that one
                info = self.source.head(key)
                if (info.etag if info else "") == outcome.etag:
                    return key, outcome, wrote
            return key, _Outcome("changing"), wrote  # the commit reads it once more

        for key, outcome, wrote in self.pool.run([lambda k=k: one(k) for k in keys]):
            if outcome.status == "published":
                assert outcome.entry is not None
                result.entries.append(outcome.entry)
                if outcome.entry.translation_key:
                    result.links[key] = outcome.links
                    result.versions.append(outcome.entry)
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
