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
from typing import Any

from ..keys import is_release_key, rebuild_key
from .base import RebuildBase, utcnow
from .chunk import CHUNK_RECHECKS, RenderStep
from .commit import SITE_FILES, CommitStep, site_owned
from .records import ChunkResult, Manifest, Progress, RebuildReport
from .sqs import MAX_MESSAGE_BYTES, Invalidator, Queue, SqsQueue
from .start import REUSED_PER_RECORD, StartStep

log = logging.getLogger("newsroom.rebuild")

__all__ = [
    "CHUNK_RECHECKS",
    "MAX_MESSAGE_BYTES",
    "REUSED_PER_RECORD",
    "SITE_FILES",
    "ChunkResult",
    "Invalidator",
    "Manifest",
    "Progress",
    "Queue",
    "RebuildBase",
    "RebuildReport",
    "RebuildService",
    "SqsQueue",
    "site_owned",
    "utcnow",
]


class RebuildService(StartStep, RenderStep, CommitStep):
    """The three steps, run from the rebuild queue's messages."""

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
