"""What every rebuild step shares: the service's parts, reading one source as
the publisher decides it, the committed state, and the rebuild's records."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..core.i18n import Version
from ..core.index import Index, source_digest
from ..core.model import MAX_BYTES, parse_release
from ..core.render import Renderer
from ..errors import InvalidRelease, ObjectUnreadable, StorageError
from ..keys import (
    INDEX_KEY,
    PRIVATE_CACHE,
    STATE_KEY,
    put_public,
    rebuild_key,
)
from ..media import MediaSync
from ..pool import RequestPool
from ..receipts import Scheduled
from ..sources import unreadable, unrenderable
from ..state import Snapshot, StaleState
from ..storage import Storage, md5_etag
from ..versions import VersionRecords, links_digest
from .records import ChunkResult, Manifest, _Outcome
from .sqs import Invalidator, Queue

log = logging.getLogger("newsroom.rebuild")


def utcnow() -> datetime:
    return datetime.now(UTC)


class RebuildBase:
    """The parts and readings each step uses; ``RebuildService`` joins the steps."""

    def __init__(
        self,
        source: Storage,
        public: Storage,
        renderer: Renderer,
        queue: Queue,
        *,
        invalidator: Invalidator | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        chunk_size: int = 200,
        max_attempts: int = 25,
        io_threads: int = 8,
    ) -> None:
        self.source = source
        self.public = public
        self.renderer = renderer
        self.queue = queue
        self.invalidator = invalidator
        self.clock = clock
        self.sleep = sleep
        self.chunk_size = max(1, chunk_size)
        self.max_attempts = max_attempts
        self.io_threads = max(1, io_threads)
        self.pool = RequestPool(self.io_threads)
        self.media = MediaSync(source, public, renderer.settings.site_url)
        self._seen: set[str] = set()  # the source keys the last commit attempt listed
        self._committed = Index()  # the index the last commit attempt wrote
        self._once: dict[str, Any] = {}  # records written once, by key

    def _records(self) -> VersionRecords:
        """The publisher's records of language versions, read afresh."""
        return VersionRecords(self.source, self.renderer.settings.site_url)

    def _read(
        self,
        key: str,
        now: datetime,
        records: VersionRecords,
        versions: tuple[Version, ...] | None = None,
    ) -> _Outcome:
        """What the site should show for ``key`` now, as the publisher decides it.
        A release page links to its language versions: ``versions`` when given
        (the commit knows them all), else as the publisher's record lists them."""
        try:
            obj = self.source.get(key, limit=MAX_BYTES)
        except ObjectUnreadable as exc:
            return _Outcome("rejected", errors=(unreadable(exc),))
        if obj is None:
            return _Outcome("gone")
        try:
            release = parse_release(obj.body, name=key, size=obj.size)
        except InvalidRelease as exc:
            return _Outcome("rejected", errors=tuple(exc.errors), etag=obj.etag)
        except Exception as exc:  # noqa: BLE001 - a poison file is that file's problem
            return _Outcome("rejected", errors=(unrenderable(exc),), etag=obj.etag)
        if release.is_scheduled(now):
            s = Scheduled(key, release.slug, release.publication_instant)
            return _Outcome("scheduled", scheduled=s, etag=obj.etag)
        try:
            if versions is None:
                versions = records.lookup(key, release)
            rendered = self.renderer.release(release, versions)
            entry = self.renderer.entry(
                release, rendered, source_key=key, source_digest=source_digest(obj.body)
            )
            entry.json_text  # noqa: B018 - an entry that cannot be encoded is poison too
        except Exception as exc:  # noqa: BLE001
            return _Outcome("rejected", errors=(unrenderable(exc),), etag=obj.etag)
        links = links_digest(release.slug, versions) if release.translation_key else ""
        return _Outcome("published", entry=entry, page=rendered.page, etag=obj.etag, links=links)

    def _read_all(
        self, keys: list[str], now: datetime, records: VersionRecords
    ) -> dict[str, _Outcome]:
        if not keys:
            return {}
        outcomes = self.pool.run([lambda k=k: self._read(k, now, records) for k in keys])
        return dict(zip(keys, outcomes, strict=True))

    def _parallel(self, fn: Callable[[str], Any], keys: list[str]) -> None:
        if not keys:
            return
        self.pool.each(fn, keys)

    def _snapshot(self) -> Snapshot:
        """The committed state, its head read now (objects read on demand)."""
        return Snapshot.read(self.source)

    def _put_json(self, key: str, doc: Any) -> None:
        self.source.put(
            key,
            json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
            content_type="application/json",
            cache_control=PRIVATE_CACHE,
        )

    def _get_json(self, key: str) -> Any:
        obj = self.source.get(key)
        return json.loads(obj.body) if obj is not None else None

    def _get_all(self, keys: list[str]) -> dict[str, Any]:
        """Several private records at once (in parallel); absent ones left out."""
        out: dict[str, Any] = {}

        def one(key: str) -> None:
            doc = self._get_json(key)
            if doc is not None:
                out[key] = doc

        self._parallel(one, keys)
        return out

    def _write_changed(self, files: dict[str, bytes]) -> list[str]:
        """Write the public objects whose bytes differ from what is there (a HEAD
        each), new ones first, ``index.html`` and ``index.json`` last; returns
        the keys written."""
        infos: dict[str, Any] = {}

        def look(key: str) -> None:
            infos[key] = self.public.head(key)

        self._parallel(look, sorted(files))
        changed = [k for k in sorted(files)
                   if infos[k] is None or infos[k].etag != md5_etag(files[k])]  # fmt: skip
        last = {"index.html", INDEX_KEY}
        for phase in (
            [k for k in changed if infos[k] is None and k not in last],
            [k for k in changed if infos[k] is not None and k not in last],
            [k for k in changed if k in last],
        ):
            self._parallel(lambda k: put_public(self.public, k, files[k]), phase)
        return changed

    def _live(self) -> Index:
        """The committed state as one ``Index`` (read again if a publish replaced
        part of it while it was read)."""
        for _attempt in range(self.max_attempts):
            try:
                return Snapshot.read(self.source).index()
            except StaleState:
                continue
        raise StorageError("the state kept changing while it was read", STATE_KEY)

    # Progress -----------------------------------------------------------------------------
    def manifest(self, rebuild_id: str) -> Manifest | None:
        doc = self._written_once(rebuild_key(rebuild_id, "manifest.json"))
        return Manifest.from_bytes(json.dumps(doc).encode()) if doc is not None else None

    def _written_once(self, key: str) -> Any:
        """A record that never changes once written (the manifest, settle's
        decisions, a phase's plan), read once per process: an invocation that
        runs many messages pays for it once."""
        if key not in self._once:
            doc = self._get_json(key)
            if doc is None:
                return None
            self._once[key] = doc
        return self._once[key]

    def _chunks(self, rebuild_id: str) -> list[ChunkResult]:
        """Every chunk's record, and the entries the start reused."""
        keys = sorted(self.source.list(rebuild_key(rebuild_id, "chunks/")))
        keys += sorted(self.source.list(rebuild_key(rebuild_id, "reused/")))
        out = []
        for key in keys:
            obj = self.source.get(key)
            if obj is not None:
                out.append(ChunkResult.from_bytes(obj.body))
        return out
