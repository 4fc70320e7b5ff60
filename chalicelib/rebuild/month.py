"""Step 4: one month, one message each.

A month's entries come from the chunks' records (``parts/<month>/``), checked
against the committed state's month object: an entry whose source the state
has in another version, or that only one side has, is read again, so a publish
committed since the chunk ran is kept. The step renders the month's pages
(archive month, month file, sitemap, the month page of each topic and kind),
writes those whose bytes differ, writes the month's private state object (not
yet pointed to), a summary per topic and kind of the month
(``g/<topic|kind>/<name>/<month>=<count>.json``, what the group steps read) and
the slugs it keeps by first character (``slugs/<c>/<month>.json``, what the
prunes compare). The last month queues ``groups``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..core.index import Entry
from ..core.site import plan_month, render_page
from ..core.view import SLICE_SIZE
from ..keys import (
    PRIVATE_CACHE,
    put_public,
    rebuild_key,
    release_key,
    slug_hint_key,
    source_hint_key,
)
from ..state import Snapshot, StaleState, add_media_refs, object_key
from ..state.encoding import month_body, with_entries
from ..state.hints import add_to_hint
from ..storage import md5_etag
from ..versions import VersionRecords
from .base import RebuildBase


def entries_of(doc: dict[str, Any]) -> list[Entry]:
    """The entries of a rebuild record (a chunk's part, a summary)."""
    return [Entry.from_json(e) for e in doc.get("entries", [])]


def summary_key(rebuild_id: str, kind: str, name: str, month: str, count: int) -> str:
    return rebuild_key(rebuild_id, f"g/{kind}/{name}/{month}={count}.json")


class MonthStep(RebuildBase):
    def run_month(
        self, rebuild_id: str, month: str, earlier: str | None, later: str | None,
        *, check: bool = False,
    ) -> dict[str, Any] | None:  # fmt: skip
        """One month's step (``check``: look at every new entry's source, as
        the commit's second look does). Returns its result record."""
        started = time.perf_counter()
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            return None
        for _attempt in range(self.max_attempts):
            snap = self._snapshot()
            try:
                live = snap.month(month)
                break
            except StaleState:
                continue
        else:
            live = snap.month(month)
        if not check:
            check = (snap.etag or "") != manifest.head  # publishes since the start
        result = self._month(rebuild_id, month, earlier, later, snap, live, check)
        result["read"] = snap.etag or ""  # what the commit's second look compares against
        result["seconds"] = round(time.perf_counter() - started, 3)
        self._put_json(rebuild_key(rebuild_id, f"months/{month}.json"), result)
        return result

    def month_step(self, rebuild_id: str, month: str, earlier: str | None,
                   later: str | None) -> None:  # fmt: skip
        if self.source.head(rebuild_key(rebuild_id, f"months/{month}.json")) is None:
            if self.run_month(rebuild_id, month, earlier, later) is None:
                return
        phase = self._written_once(rebuild_key(rebuild_id, "phases/months.json")) or {}
        done = sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "months/")))
        if done >= len(phase.get("months", [])):
            self.queue.send([{"rebuild": rebuild_id, "action": "groups"}])

    def _month(
        self, rebuild_id: str, month: str, earlier: str | None, later: str | None,
        snap: Snapshot, live: list[Entry], check: bool,
    ) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        previous = self._get_json(rebuild_key(rebuild_id, f"months/{month}.json"))
        settled = self._written_once(rebuild_key(rebuild_id, "settle.json")) or {}
        drops = set(settled.get("drops", []))
        parts = sorted(self.source.list(rebuild_key(rebuild_id, f"parts/{month}/")))
        docs = self._get_all(parts)
        rebuilt: dict[str, Entry] = {}
        for key in parts:  # the chunks' and the reused entries, then settle's
            if not key.endswith("/settle.json") and key in docs:
                rebuilt.update((e.source_key, e) for e in entries_of(docs[key]))
        for key in drops:
            rebuilt.pop(key, None)
        settle_key = rebuild_key(rebuild_id, f"parts/{month}/settle.json")
        if settle_key in docs:
            rebuilt.update((e.source_key, e) for e in entries_of(docs[settle_key]))
        committed = {e.source_key: e for e in live}

        final: dict[str, Entry] = {}
        again: list[str] = []
        unsure: list[str] = []
        for key in sorted(rebuilt.keys() | committed.keys()):
            r, c = rebuilt.get(key), committed.get(key)
            if r is not None and c is not None and r.source_digest == c.source_digest:
                final[key] = r
            elif r is not None and c is None:
                unsure.append(key)
            else:
                again.append(key)
        if check:  # a publish may have committed since the chunk read these
            heads: dict[str, Any] = {}
            self._parallel(lambda k: heads.__setitem__(k, self.source.head(k)), unsure)
            for key in unsure:
                info = heads.get(key)
                if info is not None and info.etag.strip('"') == rebuilt[key].source_digest:
                    final[key] = rebuilt[key]
                else:
                    again.append(key)
        else:
            final.update((k, rebuilt[k]) for k in unsure)

        problems: list[dict[str, str]] = []
        kept: list[str] = []
        scheduled: list[dict[str, str]] = []
        written: list[str] = []
        records = VersionRecords(self.source, self.renderer.settings.site_url)
        outcomes = self._read_all(sorted(again), now, records)
        for key, o in sorted(outcomes.items()):
            c = committed.get(key)
            if o.status == "published" and o.entry is not None:
                if o.entry.month_key == month:
                    final[key] = o.entry
                    assert o.page is not None
                    page_key = release_key(o.entry.slug)
                    info = self.public.head(page_key)
                    if info is None or info.etag != md5_etag(o.page):
                        put_public(self.public, page_key, o.page)
                        written.append(page_key)
            elif o.status == "rejected":
                problems += [{"source": key, "loc": e.loc, "msg": e.msg} for e in o.errors]
                if c is not None:  # invalid now: the last good version stays
                    final[key] = c
                    kept.append(release_key(c.slug))
            elif o.scheduled is not None:
                s = o.scheduled
                scheduled.append({"source_key": s.source_key, "slug": s.slug,
                                  "until": s.embargo_until.isoformat()})  # fmt: skip
                if c is not None:  # an embargoed update: the live version stays until its instant
                    final[key] = c
                    kept.append(release_key(c.slug))

        entries = tuple(sorted(final.values(), key=lambda e: e.sort_key))
        pages = plan_month(entries, month, earlier, later) if entries else {}
        with self.renderer.sharing_cards():  # an entry is listed in its month, topics and kind
            files = {k: render_page(k, p, self.renderer) for k, p in pages.items()}
        written += self._write_changed(files)

        # media before the state points at them; markers and hints as a commit writes them
        media = sorted({m for e in entries for m in e.media} - {m for e in live for m in e.media})
        for key in media:
            if self.source.head(key) is not None:
                self.media.sync(key, referenced=True)
        for e in entries:
            c = committed.get(e.source_key)
            new_media = sorted(set(e.media) - set(c.media if c else ()))
            if new_media:
                add_media_refs(self.source, e.source_key, new_media)
        # hints only grow (``add_to_hint``): a publish may have moved the
        # entry since this step read the state, and its month must stay named
        hints: dict[str, list[str]] = {}
        for e in entries:
            c = committed.get(e.source_key)
            if c is None or c.slug != e.slug or c.month_key != e.month_key:
                for key in (source_hint_key(e.source_key), slug_hint_key(e.slug)):
                    hints[key] = [c.month_key] if c is not None else []
        self._parallel(lambda k: add_to_hint(self.source, k, [month], hints[k]), sorted(hints))
        # the slugs the month keeps, by first character (what the prunes compare)
        by_start: dict[str, list[list[str]]] = {}
        for e in entries:
            by_start.setdefault(e.slug[0], []).append([e.slug, e.source_key])
        self._parallel(
            lambda c: self._put_json(rebuild_key(rebuild_id, f"slugs/{c}/{month}.json"),
                                     by_start[c]),
            sorted(by_start),
        )  # fmt: skip
        gone = set((previous or {}).get("starts", [])) - set(by_start)
        self._parallel(self.source.delete,
                       [rebuild_key(rebuild_id, f"slugs/{c}/{month}.json") for c in sorted(gone)])  # fmt: skip

        token = ""
        if entries:
            token = uuid.uuid4().hex[:12]
            self._private(object_key("month", month, token), month_body(month, entries))

        # the summaries the topic and kind steps read
        by_group: dict[tuple[str, str], list[Entry]] = {}
        for e in entries:
            by_group.setdefault(("kind", e.kind), []).append(e)
            for s in dict.fromkeys(e.topic_slugs):
                by_group.setdefault(("topic", s), []).append(e)
        summaries = {
            summary_key(rebuild_id, kind, name, month, len(rows)): rows
            for (kind, name), rows in by_group.items()
        }
        old = set((previous or {}).get("summaries", []))
        self._parallel(
            lambda k: self._private(k, with_entries({}, "entries", summaries[k][:SLICE_SIZE])),
            sorted(summaries),
        )  # fmt: skip
        self._parallel(self.source.delete, sorted(old - set(summaries)))
        # (a month run again leaves its earlier object unreferenced: a second
        # commit running at once may have pointed a head at it)
        return {
            "month": month,
            "token": token,
            "count": len(entries),
            "live_token": snap.head.months.get(month, ("", 0))[0],
            "live": {e.source_key: [e.source_digest, e.slug] for e in live},
            "slugs": sorted(e.slug for e in entries),
            # kept otherwise than the state it read holds them: what a later
            # publish can make stale without changing this month's token
            "moved": sorted(
                e.source_key for e in entries
                if (c := committed.get(e.source_key)) is None
                or (c.source_digest, c.slug) != (e.source_digest, e.slug)
            ),
            "starts": sorted(by_start),
            "earlier": earlier,
            "later": later,
            "pages": sorted(files),
            "written": written,
            "summaries": sorted(summaries),
            "groups": sorted(f"{k}/{n}" for k, n in by_group),
            "objects": [object_key("month", month, token)] if token else [],
            "problems": problems,
            "kept": kept,
            "scheduled": scheduled,
            "reread": len(outcomes),
            "versions": [e.to_json() for e in entries if e.translation_key],
        }

    def _private(self, key: str, body: bytes) -> None:
        self.source.put(key, body, content_type="application/json", cache_control=PRIVATE_CACHE)
