"""Step 3, ``settle``: the sources no chunk could settle, decided once; then
one ``month`` message per month.

What it reads is bounded by the problems, not the archive: the sources the
chunks left (scheduled, rejected, gone, changing under their chunk, a slug
page they did not hold, a slug another chunk claimed first), the claimants of
those slugs, and the entries with a translation key (their pages link to each
other's language versions, which only the whole set of chunks knows). It
applies the publisher's rules as ``newsroom build`` does: whoever holds a slug
keeps it, otherwise the earliest published claimant gets it. Winners' entries
go to ``parts/<month>/settle.json`` (their pages written now), losers that a
chunk had recorded are listed in ``settle.json`` as ``drops``. It reads one
small record per chunk (their counts and the pages they wrote).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..cloudfront import MAX_PATHS
from ..core.i18n import language_versions
from ..core.index import Entry
from ..errors import SlugConflict, StorageError
from ..keys import (
    HEAD_KEY,
    claim_key,
    invalidation_paths,
    put_public,
    rebuild_key,
    release_key,
)
from ..state import StaleState
from ..storage import md5_etag
from ..versions import links_digest
from .base import RebuildBase
from .records import ChunkResult, _Outcome

# a holder whose source is invalid or embargoed now keeps its slug with its live version
KEPT = ("rejected", "scheduled")

log = logging.getLogger("newsroom.rebuild")


class SettleStep(RebuildBase):
    def _claimant(self, slug: str) -> str | None:
        """The file a publish in flight claimed a new slug for (``claims``):
        it holds the slug as a committed holder does."""
        claim = self.source.get(claim_key(slug))
        return json.loads(claim.body).get("source_key") or None if claim is not None else None

    def settle(self, rebuild_id: str) -> None:
        started = time.perf_counter()
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            return
        phase = self._get_json(rebuild_key(rebuild_id, "phases/months.json"))
        if phase is not None:  # a second delivery: queue what is not done yet
            self._queue_months(rebuild_id, phase)
            return
        keys = sorted(self.source.list(rebuild_key(rebuild_id, "chunks/")))
        chunks = [ChunkResult.from_bytes(json.dumps(d).encode())
                  for d in self._get_all(keys).values()]  # fmt: skip
        if len(chunks) < manifest.chunks:
            missing = sorted(set(range(manifest.chunks)) - {c.chunk for c in chunks})
            raise StorageError(
                f"rebuild {rebuild_id}: chunks {missing[:10]} are not recorded yet",
                rebuild_key(rebuild_id, "chunks/"),
            )
        for _attempt in range(self.max_attempts):
            try:
                doc, parts = self._decide(rebuild_id, chunks)
                break
            except StaleState:
                continue  # a publish replaced the state while it was read
        else:
            raise StorageError("the state kept changing while it was read", HEAD_KEY)
        paths = {p for c in chunks for k in c.written for p in invalidation_paths(k)}
        paths.update(p for k in doc["written_keys"] for p in invalidation_paths(k))
        doc["paths"] = sorted(paths) if len(paths) <= MAX_PATHS else ["/*"]
        doc["written"] = sum(len(c.written) for c in chunks) + len(doc.pop("written_keys"))
        doc["unchanged"] = sum(c.unchanged for c in chunks) + manifest.reused
        doc["seconds"] = round(time.perf_counter() - started, 3)
        self._parallel(
            lambda m: self._put_json(rebuild_key(rebuild_id, f"parts/{m}/settle.json"),
                                     {"entries": [e.to_json() for e in parts[m]]}),
            sorted(parts),
        )  # fmt: skip
        self._put_json(rebuild_key(rebuild_id, "settle.json"), doc)
        # every month with an entry, and every month the committed state has
        # (its entries may all be gone); neighbours as the rebuild's entries say
        found = sorted(self.source.list_folders(rebuild_key(rebuild_id, "parts/")), reverse=True)
        live = set(self._snapshot().head.months)
        phase = {"months": sorted(set(found) | live, reverse=True), "found": found}
        self._put_json(rebuild_key(rebuild_id, "phases/months.json"), phase)
        self._queue_months(rebuild_id, phase)

    def _queue_months(self, rebuild_id: str, phase: dict[str, Any]) -> None:
        done = {k.rsplit("/", 1)[-1][: -len(".json")]
                for k in self.source.list(rebuild_key(rebuild_id, "months/"))}  # fmt: skip
        found: list[str] = phase["found"]
        msgs = []
        for m in phase["months"]:
            if m in done:
                continue
            earlier, later = neighbours(found, m)
            msgs.append({"rebuild": rebuild_id, "action": "month", "month": m,
                         "earlier": earlier, "later": later})  # fmt: skip
        if msgs:
            self.queue.send(msgs)
        elif not phase["months"]:
            self.queue.send([{"rebuild": rebuild_id, "action": "groups"}])

    def _decide(
        self, rebuild_id: str, chunks: list[ChunkResult]
    ) -> tuple[dict[str, Any], dict[str, list[Entry]]]:
        now = self.clock()
        snap = self._snapshot()
        records = self._records()
        again = sorted({k for c in chunks for k in c.other})
        outcomes = self._read_all(again, now, records)
        in_parts: dict[str, Entry] = {}  # entries a chunk recorded that settle decides on

        problems: list[dict[str, str]] = []
        for key, o in sorted(outcomes.items()):
            problems += [{"source": key, "loc": e.loc, "msg": e.msg} for e in o.errors]
        claimants: dict[str, dict[str, _Outcome]] = {}
        for key, o in outcomes.items():
            if o.status == "published" and o.entry is not None:
                claimants.setdefault(o.entry.slug, {})[key] = o

        drops: set[str] = set()
        winners: dict[str, _Outcome] = {}
        for slug, claims in sorted(claimants.items()):
            # the chunk that claimed the slug first, and the state's holder
            marker = self.source.get(rebuild_key(rebuild_id, f"claims/{slug}"))
            others = [marker.body.decode()] if marker is not None else []
            holder = snap.holder(slug) or self._claimant(slug)
            others += [holder] if holder else []
            kept_holder = None
            for key in dict.fromkeys(others):
                if key in claims or key in outcomes:
                    continue
                o = self._read(key, now, records)
                if o.status == "published" and o.entry is not None and o.entry.slug == slug:
                    claims[key] = o
                    in_parts[key] = o.entry
                elif key == holder and o.status in KEPT and snap.entry_of(key):
                    kept_holder = key  # invalid or embargoed now, kept as published: it holds
            if holder is not None and outcomes.get(holder, _Outcome("")).status in KEPT:
                if snap.entry_of(holder) is not None:
                    kept_holder = holder
            if kept_holder is not None:
                winner = kept_holder
            elif holder in claims:
                winner = holder
            else:
                winner = min(claims, key=lambda k: (claims[k].entry.published_at.timestamp(), k))  # type: ignore[union-attr]
            for key in sorted(claims):
                if key == winner:
                    continue
                conflict = SlugConflict(slug, winner, key)
                problems += [{"source": key, "loc": e.loc, "msg": e.msg} for e in conflict.errors]
                if key in in_parts:
                    drops.add(key)
            if winner in claims and winner not in in_parts:
                winners[winner] = claims[winner]

        # language versions: pages that link to other versions than the final set has
        tk: dict[str, Entry] = {e.source_key: e for c in chunks for e in c.versions}
        links = {k: d for c in chunks for k, d in c.links.items()}
        for key, o in winners.items():
            assert o.entry is not None
            if o.entry.translation_key:
                tk[key] = o.entry
                links[key] = o.links
        for key in drops:
            tk.pop(key, None)
        site_url = self.renderer.settings.site_url
        groups: dict[str, list[Entry]] = {}
        for e in tk.values():
            groups.setdefault(e.translation_key, []).append(e)  # type: ignore[arg-type]
        for tkey, members in groups.items():
            versions = language_versions(tkey, members, site_url)
            for e in members:
                if links.get(e.source_key) != links_digest(e.slug, versions):
                    o = self._read(e.source_key, now, records, versions)
                    if o.status == "published" and o.entry is not None and o.entry.slug == e.slug:
                        winners[e.source_key] = o

        parts: dict[str, list[Entry]] = {}
        written: list[str] = []
        for _key, o in sorted(winners.items()):
            assert o.entry is not None and o.page is not None
            parts.setdefault(o.entry.month_key, []).append(o.entry)
            page_key = release_key(o.entry.slug)
            info = self.public.head(page_key)
            if info is None or info.etag != md5_etag(o.page):
                put_public(self.public, page_key, o.page)
                written.append(page_key)
        scheduled = [
            {"source_key": o.scheduled.source_key, "slug": o.scheduled.slug,
             "until": o.scheduled.embargo_until.isoformat()}
            for o in outcomes.values() if o.scheduled is not None
        ]  # fmt: skip
        doc = {
            "drops": sorted(drops),
            "problems": problems,
            "scheduled": sorted(scheduled, key=lambda s: s["source_key"]),
            "reread": len(outcomes),
            "written_keys": written,
        }
        return doc, parts


def neighbours(months: list[str], month: str) -> tuple[str | None, str | None]:
    """The month before and after ``month`` among ``months`` (newest first)."""
    ordered = sorted(set(months) | {month}, reverse=True)
    i = ordered.index(month)
    later = ordered[i - 1] if i > 0 else None
    earlier = ordered[i + 1] if i + 1 < len(ordered) else None
    return earlier, later
