"""Rebuilds fanned out over the rebuild queue: what ``render_releases`` runs.

A rebuild re-renders the whole public site from the source bucket (after a
template or settings change). Each step is one message on the rebuild queue,
so any number of function instances (or local worker processes) share the work
and SQS retries whatever fails:

1. ``start``: list ``releases/``, write the rebuild's manifest, queue one
   ``render`` message per chunk of source keys.
2. ``render`` (one per chunk, in parallel): read each source, render its page,
   write it when its bytes differ from the public object, and record the
   chunk's entries (the private facts the commit needs: slug, digest, revision,
   listing fields) in the source bucket. The chunk that completes the set
   queues the ``commit``.
3. ``commit``: assemble the site from every chunk's entries, reading again only
   the sources that changed since their chunk read them (or that a chunk could
   not settle: scheduled, rejected, contested slugs), write the shared pages
   whose bytes differ, delete what the site no longer has, then commit the
   private state with ``IfMatch`` (the publisher's commit point). When a
   publish committed meanwhile, the attempt starts over from fresh state.

Safe alongside uploads, by the publisher's own discipline: deletions happen
before the commit, never after it, so a publish that commits later rewrites
anything it needs; a commit that lost a race redoes its diff from fresh state;
and a chunk re-checks each source after writing its page, so a page it wrote
from an older version is rewritten from the current one (a publish of that
newer version may have written its page first).

A failed step raises: SQS delivers it again and, after the queue's
``maxReceiveCount``, moves it to the dead-letter queue. A chunk there leaves
its rebuild uncommitted (never half-committed); ``newsroom rebuild`` reports it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from .core.i18n import Version, language_versions
from .core.index import Entry, Index, source_digest
from .core.model import parse_release
from .core.render import Renderer
from .core.site import plan, render_page
from .errors import FieldError, InvalidRelease, SlugConflict, StorageError, TransientStorageError
from .keys import (
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
from .media import MediaSync
from .receipts import Scheduled, update_schedule
from .state import Snapshot, StaleState, commit_full_state
from .storage import Storage, md5_etag
from .versions import VersionRecords, links_digest, write_records

log = logging.getLogger("newsroom.rebuild")

# What the site owns in the public bucket besides SITE_PREFIXES: only these are
# ever removed by a rebuild. Media and anything put there by hand stay.
SITE_FILES = frozenset(
    {"index.html", "404.html", "feed.xml", "sitemap.xml", "news-sitemap.xml", INDEX_KEY}
)
MAX_MESSAGE_BYTES = 200_000  # SQS takes 256 KiB; a chunk closes before that
REUSED_PER_RECORD = 1000  # reused entries per private record (about 1 MB)
CHUNK_RECHECKS = 3  # a source that keeps changing under its chunk is left to the commit


def site_owned(key: str) -> bool:
    return key in SITE_FILES or key.startswith(SITE_PREFIXES)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Invalidator(Protocol):
    def invalidate(self, paths: list[str]) -> None: ...


class Queue(Protocol):
    """The rebuild queue as this module uses it (``SqsQueue`` in Lambda and locally)."""

    def send(self, bodies: Iterable[dict[str, Any]]) -> None: ...


class SqsQueue:
    """SQS adapter for the rebuild queue: takes its boto3 client and the queue name."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self._url = ""

    @property
    def url(self) -> str:
        if not self._url:
            try:
                self._url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
            except Exception as exc:
                raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
        return self._url

    def send(self, bodies: Iterable[dict[str, Any]]) -> None:
        batch = [json.dumps(b, ensure_ascii=False, separators=(",", ":")) for b in bodies]
        for i in range(0, len(batch), 10):
            entries = [
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(batch[i : i + 10])
            ]
            # a batch of ten chunk messages may exceed SQS's 256 KiB per request
            if sum(len(e["MessageBody"].encode()) for e in entries) > MAX_MESSAGE_BYTES:
                for entry in entries:
                    self._send([entry])
            else:
                self._send(entries)

    def _send(self, entries: list[dict[str, str]]) -> None:
        for _attempt in range(5):
            try:
                resp = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as exc:
                raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
            failed = {f["Id"] for f in resp.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                return
        raise TransientStorageError(f"sqs {self.name}: {len(entries)} messages not queued")

    def counts(self) -> dict[str, int]:
        """Approximate messages waiting, in flight and delayed (SQS's own counts)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        try:
            attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        except Exception as exc:
            raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
        values = attrs.get("Attributes", {})
        return {
            "waiting": int(values.get(names[0], 0)),
            "in_flight": int(values.get(names[1], 0)),
            "delayed": int(values.get(names[2], 0)),
        }

    def dead_letter_queue(self) -> SqsQueue | None:
        """The queue's dead-letter queue, from its redrive policy (None if it has none)."""
        try:
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
            )
        except Exception as exc:
            raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
        raw = attrs.get("Attributes", {}).get("RedrivePolicy")
        if not raw:
            return None
        arn = json.loads(raw).get("deadLetterTargetArn", "")
        return SqsQueue(self.client, arn.rsplit(":", 1)[-1]) if arn else None

    def peek(self, limit: int = 10) -> list[dict[str, Any]]:
        """Bodies of up to ``limit`` messages, left on the queue (visible again at once).
        For reading the dead-letter queue; never used on a queue being consumed."""
        out: list[dict[str, Any]] = []
        try:
            resp = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, limit),
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
            )
        except Exception as exc:
            raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
        for m in resp.get("Messages", []):
            try:
                out.append(json.loads(m["Body"]))
            except ValueError:
                continue
        return out


# The private records of one rebuild ---------------------------------------------------
@dataclass
class Manifest:
    rebuild_id: str
    chunks: int
    releases: int
    chunk_size: int
    started_at: str
    reused: int = 0  # records of entries reused as they are (not queued)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "rebuild": self.rebuild_id,
                "chunks": self.chunks,
                "releases": self.releases,
                "chunk_size": self.chunk_size,
                "started_at": self.started_at,
                "reused": self.reused,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        doc = json.loads(raw)
        return cls(
            doc["rebuild"], doc["chunks"], doc["releases"], doc["chunk_size"], doc["started_at"],
            doc.get("reused", 0),
        )  # fmt: skip


@dataclass
class ChunkResult:
    """What one chunk found: an entry per release it rendered (its page is
    written), and every other key it read with what became of it."""

    chunk: int
    entries: list[Entry] = field(default_factory=list)
    # key -> scheduled|rejected|gone|changing|unsettled: the commit reads it again
    other: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)  # pages written (to invalidate)
    unchanged: int = 0
    # source key -> what its page links to (``links_digest``), for language versions
    links: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        doc = {
            "chunk": self.chunk,
            "entries": [e.to_json() for e in self.entries],
            "other": self.other,
            "written": self.written,
            "unchanged": self.unchanged,
            "links": self.links,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChunkResult:
        doc = json.loads(raw)
        return cls(
            doc["chunk"],
            [Entry.from_json(e) for e in doc["entries"]],
            dict(doc["other"]),
            list(doc.get("written", [])),
            doc.get("unchanged", 0),
            dict(doc.get("links", {})),
        )


@dataclass
class RebuildReport:
    """The outcome of a commit, kept as ``report.json`` beside the manifest."""

    rebuild_id: str = ""
    releases: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # source, loc, msg
    scheduled: list[dict[str, str]] = field(default_factory=list)  # source_key, until
    kept: list[str] = field(default_factory=list)
    attempts: int = 0
    reread: int = 0  # sources the commit read again (changed since their chunk)
    invalidated: int = 0

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RebuildReport:
        return cls(**json.loads(raw))


@dataclass
class Progress:
    """A rebuild as its private records show it (the command polls this)."""

    manifest: Manifest | None
    done: int = 0
    failures: dict[int, str] = field(default_factory=dict)
    report: RebuildReport | None = None


@dataclass(frozen=True)
class _Outcome:
    """One source read: ``published`` (entry and page), ``scheduled``,
    ``rejected`` (errors) or ``gone``."""

    status: str
    entry: Entry | None = None
    page: bytes | None = None
    errors: tuple[FieldError, ...] = ()
    scheduled: Scheduled | None = None
    etag: str = ""
    links: str = ""  # links_digest of the page's language versions


class RebuildService:
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
        self.media = MediaSync(source, public, renderer.settings.site_url)
        self._seen: set[str] = set()  # the source keys the last commit attempt listed
        self._committed = Index()  # the index the last commit attempt wrote

    # The queue's messages ---------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> None:
        """Run every message of an SQS batch. A failure is raised after the
        others ran, so Lambda (batch size 1) or the worker leaves the message on
        the queue: it is delivered again, and ends in the dead-letter queue."""
        failure: Exception | None = None
        for record in event.get("Records", None) or []:
            try:
                msg = json.loads(record.get("body") or "")
            except ValueError:
                msg = None
            try:
                self.run_message(msg)
            except Exception as exc:  # noqa: BLE001 - re-raised below
                failure = failure or exc
        if failure is not None:
            raise failure

    def run_message(self, msg: Any) -> None:
        """One message: ``{"action": "start"}`` (optionally ``chunk_size``),
        ``render`` (``rebuild``, ``chunk``, ``keys``) or ``commit`` (``rebuild``).
        A malformed one is logged and dropped: delivering it again cannot help."""
        action = msg.get("action") if isinstance(msg, dict) else None
        try:
            if action == "start":
                size = msg.get("chunk_size")
                self.start(int(size) if size else None, full=bool(msg.get("full")))
                return
            rid = msg["rebuild"]
            if not isinstance(rid, str) or not rid or "/" in rid:
                raise ValueError("rebuild id")
            if action == "render":
                keys = [k for k in msg["keys"] if isinstance(k, str) and is_release_key(k)]
                slugs = msg.get("slugs") or {}
                if not isinstance(slugs, dict):
                    raise ValueError("slugs")
                self.render_chunk(rid, int(msg["chunk"]), keys, slugs)
                return
            if action == "commit":
                self.commit(rid)
                return
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("malformed rebuild message ignored (%s): %.200r", exc, msg)
            return
        log.warning("rebuild message without a known action ignored: %.200r", msg)

    # 1. start ---------------------------------------------------------------------------
    def start(
        self, chunk_size: int | None = None, rebuild_id: str | None = None, *, full: bool = False
    ) -> Manifest:
        """List the sources, record the manifest, queue the chunks (the commit
        is queued by the chunk that completes the set). Unless ``full``, a
        source whose listed ETag is the digest its live entry was rendered from,
        under the same theme and with its page in place, is not queued at all:
        its entry is recorded as it is (``reused/``), as a chunk would have."""
        size = max(1, int(chunk_size or self.chunk_size))
        rid = rebuild_id or (
            self.clock().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        )
        listing = {
            k: e.strip('"')
            for k, e in self.source.list_etags(RELEASES_PREFIX).items()
            if is_release_key(k)
        }
        live = self._live()
        reused = [] if full else self._reusable(listing, live)
        skip = {e.source_key for e in reused}
        keys = sorted(k for k in listing if k not in skip)
        # the slug each source holds now: a chunk writes a page only over its own
        held = {e.source_key: e.slug for e in live.entries}
        chunks = _chunked(keys, size, held)
        records = [reused[i : i + REUSED_PER_RECORD] for i in range(0, len(reused),
                                                                     REUSED_PER_RECORD)]  # fmt: skip
        for n, entries in enumerate(records):
            self.source.put(
                rebuild_key(rid, f"reused/{n:06d}.json"),
                ChunkResult(-1 - n, entries, unchanged=len(entries)).to_bytes(),
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )
        manifest = Manifest(
            rid, len(chunks), len(listing), size, self.clock().isoformat(), len(records)
        )
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
            self.queue.send([{"rebuild": rid, "action": "commit"}])
        log.info(
            json.dumps(
                {"event": "rebuild_started", "rebuild": rid, "releases": len(listing),
                 "chunks": len(chunks), "reused": len(reused)}
            )
        )  # fmt: skip
        return manifest

    def _reusable(self, listing: dict[str, str], live: Index) -> list[Entry]:
        """Live entries whose source and theme are unchanged and whose page is there.
        The theme is the one the last rebuild rendered every page under: the
        private state's theme alone does not tell, since a publish under a new
        theme renders only its own release pages."""
        marker = self.source.get(REBUILT_THEME_KEY)
        theme = json.loads(marker.body).get("theme") if marker else None
        if theme != self.renderer.theme:
            return []
        if not live.entries or live.theme != self.renderer.theme:
            return []
        pages = self.public.list_etags(RELEASES_PREFIX)
        return [
            e
            for e in live.entries
            if e.source_digest
            and not e.translation_key  # its page links to versions that may change
            and listing.get(e.source_key) == e.source_digest
            and release_key(e.slug) in pages
        ]

    # 2. render one chunk ----------------------------------------------------------------
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
        obj = self.source.get(key)
        if obj is None:
            return _Outcome("gone")
        try:
            release = parse_release(obj.body, name=key)
        except InvalidRelease as exc:
            return _Outcome("rejected", errors=tuple(exc.errors), etag=obj.etag)
        except Exception as exc:  # noqa: BLE001 - a poison file is that file's problem
            return _Outcome("rejected", errors=(_poison(exc),), etag=obj.etag)
        if release.is_scheduled(now):
            s = Scheduled(key, release.slug, release.publication_instant)
            return _Outcome("scheduled", scheduled=s, etag=obj.etag)
        try:
            if versions is None:
                versions = records.lookup(key, release)
            rendered = self.renderer.release(release, versions)
            entry = Entry.from_release(
                release,
                source_key=key,
                site_url=self.renderer.settings.site_url,
                summary=rendered.summary,
                revision=rendered.revision,
                source_digest=source_digest(obj.body),
            )
            entry.json_text  # noqa: B018 - an entry that cannot be encoded is poison too
        except Exception as exc:  # noqa: BLE001
            return _Outcome("rejected", errors=(_poison(exc),), etag=obj.etag)
        links = links_digest(release.slug, versions) if release.translation_key else ""
        return _Outcome("published", entry=entry, page=rendered.page, etag=obj.etag, links=links)

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

    # 3. commit --------------------------------------------------------------------------
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

    def _read_all(
        self, keys: list[str], now: datetime, records: VersionRecords
    ) -> dict[str, _Outcome]:
        if not keys:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.io_threads, len(keys))) as pool:
            outcomes = pool.map(lambda k: self._read(k, now, records), keys)
            return dict(zip(keys, outcomes, strict=True))

    def _parallel(self, fn: Callable[[str], Any], keys: list[str]) -> None:
        if not keys:
            return
        with ThreadPoolExecutor(max_workers=min(self.io_threads, len(keys))) as pool:
            list(pool.map(fn, keys))

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
        obj = self.source.get(rebuild_key(rebuild_id, "manifest.json"))
        return Manifest.from_bytes(obj.body) if obj else None

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

    def progress(self, rebuild_id: str) -> Progress:
        """Chunks recorded, failures seen, and the report once committed."""
        done = sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "chunks/")))
        failures = {}
        for key in self.source.list(rebuild_key(rebuild_id, "failures/")):
            obj = self.source.get(key)
            if obj is not None:
                doc = json.loads(obj.body)
                failures[int(doc["chunk"])] = str(doc.get("error", ""))
        report = self.source.get(rebuild_key(rebuild_id, "report.json"))
        return Progress(
            self.manifest(rebuild_id),
            done,
            failures,
            RebuildReport.from_bytes(report.body) if report else None,
        )


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


def _poison(exc: Exception) -> FieldError:
    msg = f"could not be rendered ({type(exc).__name__}: {exc}); fix the file and upload it again"
    return FieldError("(file)", msg)
