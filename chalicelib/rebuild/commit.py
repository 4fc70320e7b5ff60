"""Step 6, ``commit``: the pages of the whole site (front page, feeds,
``index.json`` head, archive, year pages, topic and kind indexes, sitemap
index), pruning, and the private state's head, once, with ``IfMatch``.

It reads one small record per month, topic and kind (what the head itself
holds) and the month objects of the newest months; it renders only the pages
that list the site as a whole. A publish that committed since a month or group
step read the state shows as a changed token in the head: that month (and
every month holding a source the publish touched, and their topics and kinds)
is run again here, from the state as it is now, before anything is committed.
A head that changes between that look and the commit fails the ``IfMatch``,
and the commit looks again.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from ..claims import end_claims, rebuild_intent
from ..core.index import NEWEST, Entry
from ..core.model import KIND_LABELS
from ..core.site import plan_site, plan_years, render_page
from ..errors import StorageError
from ..keys import (
    ASSETS_PREFIX,
    HEAD_KEY,
    INDEX_KEY,
    PRIVATE_CACHE,
    REBUILT_THEME_KEY,
    SITE_PREFIXES,
    STATE_KEY,
    invalidation_paths,
    rebuild_key,
    release_key,
)
from ..receipts import Scheduled, update_schedule
from ..state import Head, Snapshot, StaleState, object_key
from ..state.objects import _forget
from ..storage import put_if_unchanged
from ..versions import VersionRecords, write_records
from .groups import GroupSteps
from .records import RebuildReport, _Outcome
from .settle import neighbours

log = logging.getLogger("newsroom.rebuild")

# What the site owns in the public bucket besides SITE_PREFIXES: only these are
# ever removed by a rebuild. Media and anything put there by hand stay.
SITE_FILES = frozenset(
    {"index.html", "404.html", "feed.xml", "sitemap.xml", "news-sitemap.xml", INDEX_KEY}
)
LISTING_PREFIXES = ("archive/", "topics/", "kinds/", "sitemaps/", "index/", ASSETS_PREFIX)


def site_owned(key: str) -> bool:
    return key in SITE_FILES or key.startswith(SITE_PREFIXES)


class _SiteView:
    """What ``plan_site`` reads: the newest entries and the counts."""

    def __init__(self, newest: tuple[Entry, ...], months: tuple[tuple[str, int], ...],
                 kinds: tuple[tuple[str, int], ...],
                 topics: tuple[tuple[str, str, int], ...]) -> None:  # fmt: skip
        self.newest, self.months, self.kinds, self.topics = newest, months, kinds, topics


class CommitStep(GroupSteps):
    def commit(self, rebuild_id: str) -> RebuildReport | None:
        """Commit the site the steps rendered, once. ``None`` when there is
        nothing to do (unknown rebuild, or committed already)."""
        started = time.perf_counter()
        manifest = self.manifest(rebuild_id)
        report_key = rebuild_key(rebuild_id, "report.json")
        if manifest is None or self.source.head(report_key) is not None:
            return None
        settled = self._get_json(rebuild_key(rebuild_id, "settle.json")) or {}
        report = RebuildReport(rebuild_id)
        paths: set[str] = set(settled.get("paths", []))
        deleted: set[str] = set()
        written: list[str] = []
        candidates: set[str] = set()  # slugs a month run again no longer has
        for attempt in range(1, self.max_attempts + 1):
            report.attempts = attempt
            if attempt > 1 and self.source.head(report_key) is not None:
                return None  # a second commit message finished first
            snap = self._snapshot()
            months = {r["month"]: r for r in self._get_all(
                list(self.source.list(rebuild_key(rebuild_id, "months/")))).values()}  # fmt: skip
            groups = {(r["kind"], r["name"]): r for r in self._get_all(
                list(self.source.list(rebuild_key(rebuild_id, "groups/")))).values()}  # fmt: skip
            try:
                redone = self._again(rebuild_id, snap, months, groups, candidates)
            except StaleState:
                continue  # a publish replaced the state while it was read
            if redone:
                report.redone += redone
                continue  # look again: the state may have moved on meanwhile
            committed, site = self._attempt(
                rebuild_id, snap, months, groups, candidates, deleted, written
            )
            if committed:
                break
            self.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise StorageError(
                f"rebuild {rebuild_id}: the private state kept changing during "
                f"{self.max_attempts} commit attempts; the commit message is retried",
                STATE_KEY,
            )
        # the publisher's claims of the new slugs the chunks wrote: the
        # committed entries hold them now
        prefix = rebuild_key(rebuild_id, "claims/")
        slugs = [k[len(prefix) :] for k in self.source.list(prefix)]
        end_claims(self.source, slugs, rebuild_intent(rebuild_id))
        prunes = self._get_all(list(self.source.list(rebuild_key(rebuild_id, "prunes/"))))
        for doc in prunes.values():
            deleted.update(doc["deleted"])
        self._fill_report(report, settled, months, groups, written, deleted, paths)
        self._write_schedule(report)
        self.source.put(
            REBUILT_THEME_KEY,
            json.dumps({"theme": self.renderer.theme, "rebuild": rebuild_id}).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        # the publisher's records of language versions follow the rebuilt pages
        versions = [Entry.from_json(e) for r in months.values() for e in r.get("versions", [])]
        write_records(self.source, versions, self.renderer.settings.site_url)
        if self.invalidator is not None and paths:
            self.invalidator.invalidate(sorted(paths))
            report.invalidated = len(paths)
        report.timings = _timings(settled, months, groups, prunes, time.perf_counter() - started)
        self.source.put(
            report_key, report.to_bytes(), content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )  # fmt: skip
        log.info(
            json.dumps(
                {"event": "rebuild_committed", "rebuild": rebuild_id, "releases": report.releases,
                 "written": report.written, "deleted": len(report.deleted),
                 "attempts": report.attempts, "redone": report.redone,
                 "problems": len(report.problems)},
                ensure_ascii=False,
            )
        )  # fmt: skip
        return report

    # a second look: publishes since the steps read the state --------------------------------
    def _again(
        self, rebuild_id: str, snap: Snapshot, months: dict[str, dict[str, Any]],
        groups: dict[tuple[str, str], dict[str, Any]], candidates: set[str],
    ) -> int:  # fmt: skip
        """Run again every month and group whose committed object changed since
        its step read it, every month holding a source such a publish touched,
        and every month whose neighbours are not the ones its page links to.
        Returns how many steps ran."""
        head = snap.head
        # (a head pointing at this rebuild's own object: a second commit message)
        changed = {
            m for m in set(head.months) | set(months)
            if m not in months or head.months.get(m, ("",))[0]
            not in (months[m]["live_token"], months[m]["token"] or None)
        }  # fmt: skip
        also: set[str] = set()
        for m in sorted(changed):  # a month no step ran (a publish opened it) held nothing
            before = months[m]["live"] if m in months else {}
            now = {e.source_key: [e.source_digest, e.slug] for e in snap.month(m)}
            for key in before.keys() | now.keys():
                if before.get(key) != now.get(key):
                    slugs = {v[1] for v in (before.get(key), now.get(key)) if v}
                    also.update(self._holding(rebuild_id, key, slugs) - changed)
        also.update(self._stale_holders(snap, months) - changed)
        found = sorted((m for m, r in months.items() if r["count"]), reverse=True)
        ran = 0
        touched: set[tuple[str, str]] = set()
        for m in sorted(changed | also, reverse=True):
            old = months.get(m)
            earlier, later = (old["earlier"], old["later"]) if old else neighbours(found, m)
            new = self.run_month(rebuild_id, m, earlier, later, check=True)
            ran += 1
            if new is None:
                continue
            candidates.update(set(old["slugs"] if old else []) - set(new["slugs"]))
            for r in (old, new):
                for g in (r or {}).get("groups", []):
                    kind, _, name = g.partition("/")
                    touched.add((kind, name))
        if not ran:  # neighbours: every month page links to the months beside it
            for i, m in enumerate(found):
                later = found[i - 1] if i > 0 else None
                earlier = found[i + 1] if i + 1 < len(found) else None
                if (months[m]["earlier"], months[m]["later"]) != (earlier, later):
                    new = self.run_month(rebuild_id, m, earlier, later, check=True)
                    ran += 1
                    for r in (months[m], new):  # a check may find a source moved on
                        for g in (r or {}).get("groups", []):
                            kind, _, name = g.partition("/")
                            touched.add((kind, name))
        refs = {("topic", s): t[0] for s, t in head.topics.items()}
        refs.update((("kind", k), t[0]) for k, t in head.kinds.items())
        for g in set(refs) | set(groups):
            r = groups.get(g)
            if r is None or refs.get(g, "") not in (r["live_token"], r["token"] or None):
                touched.add(g)
        for kind, name in sorted(touched):
            self.run_group(rebuild_id, kind, name, head)
            ran += 1
        return ran

    def _holding(self, rebuild_id: str, key: str, slugs: set[str]) -> set[str]:
        """The months whose step kept ``key`` under one of ``slugs``."""
        return {
            month
            for slug in slugs
            for holder, month in self.slug_index(rebuild_id, slug[0]).get(slug, [])
            if holder == key
        }

    def _stale_holders(self, snap: Snapshot, months: dict[str, dict[str, Any]]) -> set[str]:
        """Months whose step kept a source otherwise than the state it read
        held it, when a commit since that read changed the source: wherever the
        publish put it (a month whose step ran later sees the publish; a
        deleted release has no month at all), no token this step read changed.
        The head's log says which sources the commits since changed; when it
        does not reach back to the step's read, such a month runs again anyway
        (few do: only those whose sources changed while the site stood)."""
        out: set[str] = set()
        for month, r in months.items():
            moved = r.get("moved", [])
            if not moved or r.get("read", "") == (snap.etag or ""):
                continue  # nothing a publish can have made stale, or read just now
            after = snap.head.since(r.get("read") or None)
            if after is None or not after.keys.isdisjoint(moved):
                out.add(month)
        return out

    # one attempt at the site's pages and the head --------------------------------------------
    def _attempt(
        self, rebuild_id: str, snap: Snapshot, months: dict[str, dict[str, Any]],
        groups: dict[tuple[str, str], dict[str, Any]], candidates: set[str],
        deleted: set[str], written: list[str],
    ) -> tuple[bool, dict[str, bytes]]:  # fmt: skip
        counts = tuple((m, r["count"]) for m, r in sorted(months.items(), reverse=True)
                       if r["count"])  # fmt: skip
        newest: list[Entry] = []
        enough = False
        for m, _n in counts:  # the newest months, and one more (offsets may interleave)
            obj = self.source.get(object_key("month", m, months[m]["token"]))
            if obj is None:
                raise StorageError(f"rebuild {rebuild_id}: the month object of {m} is gone",
                                   rebuild_key(rebuild_id, f"months/{m}.json"))  # fmt: skip
            newest += [Entry.from_json(e) for e in json.loads(obj.body)["entries"]]
            if enough:
                break
            enough = len(newest) >= NEWEST
        newest = sorted(newest, key=lambda e: e.sort_key)[:NEWEST]
        kinds = tuple((k, groups.get(("kind", k), {}).get("count", 0)) for k in KIND_LABELS)
        topics = tuple((name, r["display"], r["count"])
                       for (kind, name), r in sorted(groups.items())
                       if kind == "topic" and r["count"])  # fmt: skip
        view = _SiteView(tuple(newest), counts, kinds, topics)
        pages = plan_site(view, self.renderer)  # type: ignore[arg-type]
        pages.update(plan_years(counts))
        files = {k: render_page(k, p, self.renderer) for k, p in pages.items()}

        # what the site no longer has: listing pages no step planned, release
        # pages of slugs a month run again dropped; all before the commit
        planned = set(files)
        for r in months.values():
            planned.update(r["pages"])
        for r in groups.values():
            planned.update(r["pages"])
        stale = [k for prefix in LISTING_PREFIXES for k in self.public.list(prefix)
                 if k not in planned]  # fmt: skip
        kept: dict[str, Any] = {}
        for slug in sorted(candidates):
            if slug[0] not in kept:
                kept[slug[0]] = self.slug_index(rebuild_id, slug[0])
            if slug not in kept[slug[0]] and self.public.head(release_key(slug)) is not None:
                stale.append(release_key(slug))
        written += self._write_changed(files)
        self._parallel(self.public.delete, sorted(set(stale), key=lambda k: (k.count("/"), k)))
        deleted.update(stale)

        h = snap.head
        head = Head(
            theme=self.renderer.theme,
            newest=newest,
            months={m: (months[m]["token"], n) for m, n in counts},
            topics={name: (r["token"], r["count"], r["display"])
                    for (kind, name), r in groups.items() if kind == "topic" and r["count"]},
            kinds={name: (r["token"], r["count"])
                   for (kind, name), r in groups.items() if kind == "kind" and r["count"]},
            withdrawing=h.withdrawing,
            announce=h.announce,
            # pages an abandoned publish attempt owes: the next commit or sweep
            # rewrites them from this state
            repair=h.repair,
        )  # fmt: skip
        etag = put_if_unchanged(self.source, HEAD_KEY, head.to_bytes(), snap.etag,
                                content_type="application/json", cache_control=PRIVATE_CACHE)  # fmt: skip
        if etag is None:
            return False, files
        # the objects the head no longer points to
        keep = {object_key(k, n, ref[0]) for k, refs in
                (("month", head.months), ("topic", head.topics), ("kind", head.kinds))
                for n, ref in refs.items()}  # fmt: skip
        old = [object_key(k, n, ref[0]) for k, refs in
               (("month", h.months), ("topic", h.topics), ("kind", h.kinds))
               for n, ref in refs.items()]  # fmt: skip
        self._parallel(lambda k: _forget(self.source, k), [k for k in old if k not in keep])
        return True, files

    def _fill_report(
        self, report: RebuildReport, settled: dict[str, Any], months: dict[str, dict[str, Any]],
        groups: dict[tuple[str, str], dict[str, Any]], written: list[str], deleted: set[str],
        paths: set[str],
    ) -> None:  # fmt: skip
        step_written = [k for r in [*months.values(), *groups.values()] for k in r["written"]]
        report.releases = sum(r["count"] for r in months.values())
        report.written = settled.get("written", 0) + len(step_written) + len(written)
        report.unchanged = settled.get("unchanged", 0)
        report.deleted = sorted(deleted)
        problems = {json.dumps(p, sort_keys=True): p for p in settled.get("problems", [])}
        for r in months.values():
            problems.update((json.dumps(p, sort_keys=True), p) for p in r["problems"])
        report.problems = sorted(problems.values(), key=lambda p: (p["source"], p["loc"]))
        report.kept = sorted({k for r in months.values() for k in r["kept"]})
        scheduled = {s["source_key"]: s for s in settled.get("scheduled", [])}
        for r in months.values():
            scheduled.update((s["source_key"], s) for s in r["scheduled"])
        report.scheduled = [scheduled[k] for k in sorted(scheduled)]
        report.reread = settled.get("reread", 0) + sum(r["reread"] for r in months.values())
        report.months = len(months)
        report.groups = len(groups)
        for key in [*step_written, *written, *deleted]:
            paths.update(invalidation_paths(key))

    def _write_schedule(self, report: RebuildReport) -> None:
        """The schedule for the sources this rebuild read as scheduled; any other
        entry stays only while its source is still scheduled (uploaded since,
        as the publisher wrote it) or live with its embargo run out (the next
        ``publish_due_releases`` run still writes its ``published`` receipt)."""
        now = self.clock()
        mine = [
            Scheduled(s["source_key"], s["slug"], datetime.fromisoformat(s["until"]))
            for s in report.scheduled
        ]
        mine_keys = {s.source_key for s in mine}
        records = VersionRecords(self.source, self.renderer.settings.site_url)
        read: dict[str, _Outcome] = {}

        def keep(s: Scheduled) -> bool:
            if s.source_key in mine_keys:
                return False
            if s.source_key not in read:
                read[s.source_key] = self._read(s.source_key, now, records)
            o = read[s.source_key]
            return o.status == "scheduled" or (
                o.status == "published" and s.embargo_until <= now
            )

        update_schedule(
            self.source, lambda items: [s for s in items if keep(s)] + mine,
            attempts=self.max_attempts, replace_unreadable=True,
        )  # fmt: skip


def _timings(settled: dict[str, Any], months: dict[str, Any], groups: dict[Any, Any],
             prunes: dict[str, Any], commit: float) -> dict[str, float]:  # fmt: skip
    out = {"settle": settled.get("seconds", 0.0), "commit": round(commit, 3)}
    for name, docs in (("month", months.values()), ("group", groups.values()),
                       ("prune", prunes.values())):  # fmt: skip
        secs = [d.get("seconds", 0.0) for d in docs]
        out[name + "_sum"] = round(sum(secs), 3)
        out[name + "_max"] = round(max(secs, default=0.0), 3)
    return out
