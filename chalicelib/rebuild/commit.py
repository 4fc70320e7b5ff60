"""Step 3, ``commit``: the site assembled from every chunk's entries, written,
pruned and committed once with ``IfMatch``."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime

from ..core.i18n import language_versions
from ..core.index import Entry, Index
from ..core.site import plan, render_page
from ..errors import SlugConflict, StorageError
from ..keys import (
    INDEX_KEY,
    PRIVATE_CACHE,
    REBUILT_THEME_KEY,
    RELEASES_PREFIX,
    SITE_PREFIXES,
    STATE_KEY,
    invalidation_paths,
    is_release_key,
    put_public,
    rebuild_key,
    release_key,
)
from ..receipts import Scheduled, update_schedule
from ..state import Snapshot, StaleState, commit_full_state
from ..storage import md5_etag
from ..versions import VersionRecords, links_digest, write_records
from .base import RebuildBase
from .records import ChunkResult, RebuildReport

log = logging.getLogger("newsroom.rebuild")

# What the site owns in the public bucket besides SITE_PREFIXES: only these are
# ever removed by a rebuild. Media and anything put there by hand stay.
SITE_FILES = frozenset(
    {"index.html", "404.html", "feed.xml", "sitemap.xml", "news-sitemap.xml", INDEX_KEY}
)


def site_owned(key: str) -> bool:
    return key in SITE_FILES or key.startswith(SITE_PREFIXES)


class CommitStep(RebuildBase):
    def commit(self, rebuild_id: str) -> RebuildReport | None:
        """Commit the site the chunks rendered, once. ``None`` when there is
        nothing to do (unknown rebuild, or committed already)."""
        manifest = self.manifest(rebuild_id)
        report_key = rebuild_key(rebuild_id, "report.json")
        if manifest is None or self.source.head(report_key) is not None:
            return None
        chunks = self._chunks(rebuild_id)
        if len(chunks) < manifest.chunks + manifest.reused:
            missing = sorted(set(range(manifest.chunks)) - {c.chunk for c in chunks})
            raise StorageError(
                f"rebuild {rebuild_id}: chunks {missing[:10]} are not recorded yet",
                rebuild_key(rebuild_id, "chunks/"),
            )
        report = RebuildReport(rebuild_id)
        report.written = sum(len(c.written) for c in chunks)
        report.unchanged = sum(c.unchanged for c in chunks)
        paths = {p for c in chunks for k in c.written for p in invalidation_paths(k)}
        for attempt in range(1, self.max_attempts + 1):
            report.attempts = attempt
            if self._commit_attempt(chunks, report, paths):
                break
            self.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise StorageError(
                f"rebuild {rebuild_id}: the private state kept changing during "
                f"{self.max_attempts} commit attempts; the commit message is retried",
                STATE_KEY,
            )
        self._write_schedule(report)
        self.source.put(
            REBUILT_THEME_KEY,
            json.dumps({"theme": self.renderer.theme, "rebuild": rebuild_id}).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )
        # the publisher's records of language versions follow the rebuilt pages
        write_records(self.source, self._committed.entries, self.renderer.settings.site_url)
        if self.invalidator is not None and paths:
            self.invalidator.invalidate(sorted(paths))
            report.invalidated = len(paths)
        self.source.put(
            report_key, report.to_bytes(), content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )  # fmt: skip
        log.info(
            json.dumps(
                {"event": "rebuild_committed", "rebuild": rebuild_id, "releases": report.releases,
                 "written": report.written, "deleted": len(report.deleted),
                 "attempts": report.attempts, "problems": len(report.problems)},
                ensure_ascii=False,
            )
        )  # fmt: skip
        return report

    def _commit_attempt(self, chunks: list[ChunkResult], report: RebuildReport,
                        paths: set[str]) -> bool:  # fmt: skip
        """One optimistic attempt: the private state first, then the sources (so
        a publish committed before our read has its source in our listing),
        then the public listing; write, delete, commit with IfMatch."""
        now = self.clock()
        snap = Snapshot.read(self.source)
        etag = snap.etag
        try:
            live = snap.index()  # every month: a rebuild reads the whole state
        except StaleState:
            return False  # a publish committed while it was read: read again
        listing = {
            k: e.strip('"')
            for k, e in self.source.list_etags(RELEASES_PREFIX).items()
            if is_release_key(k)
        }
        self._seen = set(listing)
        rendered = {
            e.source_key: e
            for c in chunks
            for e in c.entries
            if listing.get(e.source_key) == e.source_digest
        }
        # a slug two sources claim: the chunks may have written the loser's page
        claims: dict[str, list[str]] = {}
        for key, entry in rendered.items():
            claims.setdefault(entry.slug, []).append(key)
        for slug, keys in claims.items():
            holder = live.slug_holder(slug)
            if len(keys) > 1 or (holder is not None and holder != keys[0]):
                for key in keys:
                    del rendered[key]
                if holder in listing:
                    rendered.pop(holder, None)
        again = sorted(k for k in listing if k not in rendered)
        report.reread = len(again)
        records = self._records()
        outcomes = self._read_all(again, now, records)
        links = {k: d for c in chunks for k, d in c.links.items() if k in rendered}
        links.update((k, o.links) for k, o in outcomes.items() if o.status == "published")

        # the publisher's rules, as a full build applies them: a live release whose
        # source is invalid now stays as published; whoever holds a slug keeps it;
        # otherwise the earliest published claimant gets it
        problems: list[dict[str, str]] = []
        invalid = {k for k, o in outcomes.items() if o.status == "rejected"}
        for key in sorted(invalid):
            problems += [{"source": key, "loc": e.loc, "msg": e.msg} for e in outcomes[key].errors]
        kept = [e for e in live.entries if e.source_key in invalid]
        holders = {e.slug: e.source_key for e in kept}
        candidates: list[tuple[Entry, bytes | None]] = [(e, None) for e in rendered.values()]
        for o in outcomes.values():
            if o.status == "published":
                assert o.entry is not None
                candidates.append((o.entry, o.page))
        for entry, _page in candidates:
            if live.slug_holder(entry.slug) == entry.source_key:
                holders[entry.slug] = entry.source_key
        winners: list[tuple[Entry, bytes | None]] = []
        for entry, page in sorted(
            candidates, key=lambda c: (c[0].published_at.timestamp(), c[0].source_key)
        ):
            holder = holders.get(entry.slug)
            if holder is not None and holder != entry.source_key:
                conflict = SlugConflict(entry.slug, holder, entry.source_key)
                problems += [
                    {"source": entry.source_key, "loc": e.loc, "msg": e.msg}
                    for e in conflict.errors
                ]
                continue
            holders[entry.slug] = entry.source_key
            winners.append((entry, page))
        winners = self._with_versions(winners, links, now, records)
        index = Index.build([e for e, _ in winners] + kept).with_theme(self.renderer.theme)
        # what the listeners are still owed survives the rebuild
        index = replace(index, announce=live.announce)
        report.releases = len(index.entries)
        report.problems = sorted(problems, key=lambda p: (p["source"], p["loc"]))
        report.kept = sorted(release_key(e.slug) for e in kept)
        report.scheduled = [
            {"source_key": o.scheduled.source_key, "slug": o.scheduled.slug,
             "until": o.scheduled.embargo_until.isoformat()}
            for o in outcomes.values() if o.scheduled is not None
        ]  # fmt: skip

        pages = plan(index, self.renderer)
        files = {key: render_page(key, page, self.renderer, index) for key, page in pages.items()}
        fresh = {release_key(e.slug): page for e, page in winners if page is not None}
        existing = self.public.list_etags()
        owned = {release_key(e.slug) for e in index.entries}
        new_pages = [k for k, body in sorted(fresh.items()) if existing.get(k) != md5_etag(body)]
        shared = sorted(
            (k for k, body in files.items() if existing.get(k) != md5_etag(body)),
            key=lambda k: (-k.count("/"), k),
        )
        stale = sorted(
            (k for k in existing if site_owned(k) and k not in files and k not in owned),
            key=lambda k: (k.count("/"), k),
        )
        self._committed = index
        same_state = etag is not None and (
            live.entries, live.withdrawing, live.theme, live.announce
        ) == (index.entries, index.withdrawing, index.theme, index.announce)
        if not new_pages and not shared and not stale and same_state:
            return True  # the site is what this rebuild would write
        # media first: a release's photo or PDF is public before its page
        for key in sorted(index.media_keys() - live.media_keys()):
            if self.source.head(key) is not None:
                self.media.sync(key, referenced=True)
        # release pages, then the listings that link to them (new ones first,
        # index.json last), then what the site no longer has: all before the
        # commit, so a publish committing after us rewrites anything it needs
        for key in new_pages:
            put_public(self.public, key, fresh[key])
        last = {"index.html", INDEX_KEY}
        for phase in (
            [k for k in shared if k not in existing and k not in last],
            [k for k in shared if k in existing and k not in last],
            [k for k in shared if k in last],
        ):
            self._parallel(lambda k: put_public(self.public, k, files[k]), phase)
        self._parallel(self.public.delete, stale)
        report.written += len(new_pages) + len(shared)
        report.deleted = sorted(set(report.deleted) | set(stale))
        for key in [*new_pages, *shared, *stale]:
            paths.update(invalidation_paths(key))
        return self._commit_state(index, etag, snap)

    def _with_versions(
        self,
        winners: list[tuple[Entry, bytes | None]],
        links: dict[str, str],
        now: datetime,
        records: VersionRecords,
    ) -> list[tuple[Entry, bytes | None]]:
        """Pages that link to other language versions than the final set has
        (a version rendered in another chunk appeared, changed or went) are
        rendered again, with the versions of every live release, as a full
        build links them."""
        site_url = self.renderer.settings.site_url
        entries = [e for e, _ in winners]
        versions = {
            k: language_versions(k, entries, site_url)
            for k in {e.translation_key for e in entries if e.translation_key}
        }
        out = []
        for entry, page in winners:
            key = entry.translation_key
            if key and links.get(entry.source_key) != links_digest(entry.slug, versions[key]):
                again = self._read(entry.source_key, now, records, versions[key])
                if again.status == "published" and again.entry is not None:
                    if again.entry.slug == entry.slug:
                        entry, page = again.entry, again.page
            out.append((entry, page))
        return out

    def _commit_state(self, index: Index, etag: str | None, previous: Snapshot) -> bool:
        """The commit point, as the publisher's: the private state written only
        over the version this attempt read (``chalicelib.state.commit_full_state``)."""
        return commit_full_state(self.source, index, etag, previous=previous) is not None

    def _write_schedule(self, report: RebuildReport) -> None:
        """The schedule for the sources this rebuild read: an entry it did not
        see (uploaded since) stays as the publisher wrote it, and so does one
        whose embargo ran out and that the rebuild put live (the next
        ``publish_due_releases`` run still writes its ``published`` receipt)."""
        now = self.clock()
        mine = [
            Scheduled(s["source_key"], s["slug"], datetime.fromisoformat(s["until"]))
            for s in report.scheduled
        ]
        mine_keys = {s.source_key for s in mine}
        seen = self._seen
        live = {e.source_key for e in self._live().entries}

        def keep(s: Scheduled) -> bool:
            if s.source_key in mine_keys:
                return False
            return s.source_key not in seen or (s.source_key in live and s.embargo_until <= now)

        update_schedule(
            self.source, lambda items: [s for s in items if keep(s)] + mine,
            attempts=self.max_attempts,
        )  # fmt: skip
