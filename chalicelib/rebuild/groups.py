"""Step 5: the topics, kinds and prunes, in bounded groups, one message each.

- ``groups``: queues the topic and kind steps (in batches) and the prune steps,
  once every month step is done.
- ``group`` (a batch of topics and kinds): each one's front page, feed and
  year pages and its private state object, from the month summaries: their
  names give the counts, the newest months give the newest entries.
- ``prune`` (a range of first characters): release pages that no month kept
  are deleted.

Each step reads and writes what its group holds; the last one queues
``commit``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.index import Entry
from ..core.model import KIND_LABELS
from ..core.site import plan_kind, plan_topic, render_page
from ..core.view import SLICE_SIZE, Slice, topic_name
from ..keys import PRIVATE_CACHE, RELEASES_PREFIX, rebuild_key, release_key
from ..state import object_key
from ..state.encoding import slice_body
from .month import MonthStep, entries_of, summary_key

GROUPS_PER_MESSAGE = 25  # topics or kinds one ``group`` message renders
RELEASES_PER_PRUNE = 20_000  # release pages one ``prune`` message lists (about)
SLUG_STARTS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class _SliceView:
    """What ``plan_topic``/``plan_kind`` read of one topic or kind."""

    slice: Slice

    def topic(self, _slug: str) -> Slice:
        return self.slice

    def kind(self, _kind: str) -> Slice:
        return self.slice


class GroupSteps(MonthStep):
    # groups: plan the topic, kind and prune messages ---------------------------------------
    def plan_groups(self, rebuild_id: str) -> None:
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            return
        phase = self._get_json(rebuild_key(rebuild_id, "phases/groups.json"))
        if phase is None:
            results = self._get_all(list(self.source.list(rebuild_key(rebuild_id, "months/"))))
            names = {g for r in results.values() for g in r["groups"]}
            head = self._snapshot().head
            names |= {f"topic/{s}" for s in head.topics} | {f"kind/{k}" for k in KIND_LABELS}
            ordered = sorted(names)
            batches = [ordered[i : i + GROUPS_PER_MESSAGE]
                       for i in range(0, len(ordered), GROUPS_PER_MESSAGE)]  # fmt: skip
            ranges = max(1, min(len(SLUG_STARTS), -(-manifest.releases // RELEASES_PER_PRUNE)))
            step = -(-len(SLUG_STARTS) // ranges)
            prunes = [SLUG_STARTS[i : i + step] for i in range(0, len(SLUG_STARTS), step)]
            phase = {"batches": batches, "prunes": prunes}
            self._put_json(rebuild_key(rebuild_id, "phases/groups.json"), phase)
        done = {k.rsplit("/", 1)[-1] for k in self.source.list(rebuild_key(rebuild_id, "gdone/"))}
        msgs = [{"rebuild": rebuild_id, "action": "group", "batch": n, "names": names}
                for n, names in enumerate(phase["batches"]) if f"g{n}" not in done]  # fmt: skip
        msgs += [{"rebuild": rebuild_id, "action": "prune", "batch": n, "starts": starts}
                 for n, starts in enumerate(phase["prunes"]) if f"p{n}" not in done]  # fmt: skip
        self.queue.send(msgs)

    def _phase_done(self, rebuild_id: str, mark: str) -> None:
        self.source.put(rebuild_key(rebuild_id, f"gdone/{mark}"), b"",
                        content_type="text/plain", cache_control=PRIVATE_CACHE)  # fmt: skip
        phase = self._written_once(rebuild_key(rebuild_id, "phases/groups.json")) or {}
        total = len(phase.get("batches", [])) + len(phase.get("prunes", []))
        done = sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "gdone/")))
        if done >= total:
            self.queue.send([{"rebuild": rebuild_id, "action": "commit"}])

    # group: topics and kinds --------------------------------------------------------------
    def group_step(self, rebuild_id: str, batch: int, names: Iterable[str]) -> None:
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            return
        if self.source.head(rebuild_key(rebuild_id, f"gdone/g{batch}")) is None:
            head = self._snapshot().head
            for name in names:
                kind, _, value = name.partition("/")
                if kind in ("topic", "kind") and value:
                    self.run_group(rebuild_id, kind, value, head)
        self._phase_done(rebuild_id, f"g{batch}")

    def run_group(self, rebuild_id: str, kind: str, name: str, head: Any) -> dict[str, Any]:
        """One topic's or kind's pages and private object, from the month summaries."""
        started = time.perf_counter()
        prefix = rebuild_key(rebuild_id, f"g/{kind}/{name}/")
        months: dict[str, tuple[int, str]] = {}
        for key in self.source.list(prefix):
            stem = key[len(prefix) : -len(".json")]
            month, _, count = stem.partition("=")
            months[month] = (int(count), key)
        counts = tuple((m, months[m][0]) for m in sorted(months, reverse=True))
        newest: list[Entry] = []
        for m, _n in counts:  # the newest months, until a slice is full
            doc = self._get_json(months[m][1])
            newest += entries_of(doc or {})
            if len(newest) >= SLICE_SIZE:
                break
        newest = sorted(newest, key=lambda e: e.sort_key)[:SLICE_SIZE]
        display = topic_name(newest, name) if kind == "topic" else ""
        total = sum(n for _m, n in counts)
        view = _SliceView(Slice(display, tuple(newest), counts))
        if kind == "topic":
            pages = plan_topic(view, self.renderer, name)  # type: ignore[arg-type]
        else:
            pages = plan_kind(view, self.renderer, name)  # type: ignore[arg-type]
        files = {k: render_page(k, p, self.renderer) for k, p in pages.items()}
        written = self._write_changed(files)
        token = ""
        if total:
            token = uuid.uuid4().hex[:12]
            self._private(object_key(kind, name, token), slice_body(counts, newest))
        refs = head.topics if kind == "topic" else head.kinds
        result = {
            "kind": kind, "name": name, "token": token, "count": total, "display": display,
            "live_token": refs.get(name, ("",))[0], "pages": sorted(files), "written": written,
            "objects": [object_key(kind, name, token)] if token else [],
            "seconds": round(time.perf_counter() - started, 3),
        }  # fmt: skip
        self._put_json(rebuild_key(rebuild_id, f"groups/{name}.{kind}.json"), result)
        return result

    def slug_index(self, rebuild_id: str, start: str) -> dict[str, list[tuple[str, str]]]:
        """Slug -> (source key, month) of every release the month steps kept
        whose slug starts with ``start`` (one small record per month)."""
        prefix = rebuild_key(rebuild_id, f"slugs/{start}/")
        out: dict[str, list[tuple[str, str]]] = {}
        for key, rows in self._get_all(list(self.source.list(prefix))).items():
            month = key[len(prefix) : -len(".json")]
            for slug, source_key in rows:
                out.setdefault(slug, []).append((source_key, month))
        return out

    # prune: release pages nothing holds ---------------------------------------------------
    def prune_step(self, rebuild_id: str, batch: int, starts: str) -> None:
        manifest = self.manifest(rebuild_id)
        if manifest is None or self.source.head(rebuild_key(rebuild_id, "report.json")):
            return
        if self.source.head(rebuild_key(rebuild_id, f"gdone/p{batch}")) is None:
            started = time.perf_counter()
            deleted: list[str] = []
            for c in starts:
                marked = set(self.slug_index(rebuild_id, c))
                for key in list(self.public.list(RELEASES_PREFIX + c)):
                    slug = key[len(RELEASES_PREFIX) :].split("/", 1)[0]
                    if key != release_key(slug) or slug not in marked:
                        deleted.append(key)
            self._parallel(self.public.delete, deleted)
            self._put_json(rebuild_key(rebuild_id, f"prunes/{batch}.json"),
                           {"deleted": deleted,
                            "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
        self._phase_done(rebuild_id, f"p{batch}")


__all__ = ["GroupSteps", "summary_key"]
