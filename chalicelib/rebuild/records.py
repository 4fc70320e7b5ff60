"""The private records of one rebuild (manifest, chunk results, report) and
what a rebuild reads of one source (``_Outcome``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..core.index import Entry
from ..errors import FieldError
from ..receipts import Scheduled


@dataclass
class Manifest:
    rebuild_id: str
    chunks: int
    releases: int
    chunk_size: int
    started_at: str
    reused: int = 0  # entries reused as they are (not queued)
    head: str = ""  # ETag of the state's head when the rebuild started ("" none)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "rebuild": self.rebuild_id,
                "chunks": self.chunks,
                "releases": self.releases,
                "chunk_size": self.chunk_size,
                "started_at": self.started_at,
                "reused": self.reused,
                "head": self.head,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        doc = json.loads(raw)
        return cls(
            doc["rebuild"], doc["chunks"], doc["releases"], doc["chunk_size"], doc["started_at"],
            doc.get("reused", 0), doc.get("head", ""),
        )  # fmt: skip


@dataclass
class ChunkResult:
    """What one chunk found: an entry per release it rendered (its page is
    written; the entries themselves are recorded by month, ``parts/``), and
    every other key it read with what became of it."""

    chunk: int
    entries: list[Entry] = field(default_factory=list)
    # key -> scheduled|rejected|gone|changing|unsettled|contested: settle reads it again
    other: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)  # pages written (to invalidate)
    unchanged: int = 0
    # source key -> what its page links to (``links_digest``), for language versions
    links: dict[str, str] = field(default_factory=dict)
    # the entries with a translation key (settle checks their language links)
    versions: list[Entry] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        doc = {
            "chunk": self.chunk,
            "entries": len(self.entries),
            "versions": [e.to_json() for e in self.versions],
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
            [],
            dict(doc["other"]),
            list(doc.get("written", [])),
            doc.get("unchanged", 0),
            dict(doc.get("links", {})),
            [Entry.from_json(e) for e in doc.get("versions", [])],
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
    reread: int = 0  # sources read again (changed since their chunk, or unsettled)
    invalidated: int = 0
    months: int = 0  # month steps run (each a message)
    groups: int = 0  # topics and kinds rendered (in batches, a message each)
    redone: int = 0  # month and group steps the commit ran again (publishes meanwhile)
    # seconds per step: settle, commit, and per month/group/prune message (sum, max)
    timings: dict[str, float] = field(default_factory=dict)

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
    months: tuple[int, int] = (0, 0)  # month steps done, queued
    groups: tuple[int, int] = (0, 0)  # group and prune messages done, queued


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
