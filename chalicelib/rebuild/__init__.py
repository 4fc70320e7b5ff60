"""Rebuilds fanned out over the rebuild queue: what ``render_releases`` runs.

A rebuild re-renders the whole public site from the source bucket (after a
template or settings change). Each step is one message on the rebuild queue,
so any number of function instances (or local worker processes) share the work
and SQS retries whatever fails:

1. ``start``: list ``releases/``, write the rebuild's manifest, queue one
   ``render`` message per chunk of source keys.
2. ``render`` (one per chunk, in parallel): read each source, render its page,
   write it when its bytes differ from the public object, and record the
   chunk's entries by month. The chunk that completes the set queues ``settle``.
3. ``settle`` (once): decide what no chunk could (sources that were scheduled,
   rejected, changing, or claimed a slug another holds; language versions);
   queue one ``month`` message per month.
4. ``month`` (one per month, in parallel): the month's entries checked against
   the committed state, its pages, its private object, its topic and kind
   summaries. The last one queues ``groups``, which queues ``group`` messages
   (topics and kinds, in batches) and ``prune`` messages (release pages no
   release holds), in parallel.
5. ``commit`` (once, queued by the last of those): the pages that list the
   whole site, what it no longer has, and the private state's head, written
   with ``IfMatch`` (the publisher's commit point).

No step reads or renders more than its group holds (a chunk, a month, a topic,
the head's own lists), so none grows with the archive beyond that.

Safe alongside uploads, by the publisher's own discipline: deletions happen
before the commit, never after it, so a publish that commits later rewrites
anything it needs; a month or group whose committed object a publish replaced
since its step read it is run again by the commit, from the state as it is
then; a commit that lost the race looks again; and a chunk re-checks each
source after writing its page, so a page it wrote from an older version is
rewritten from the current one.

A failed step raises: SQS delivers it again and, after the queue's
``maxReceiveCount``, moves it to the dead-letter queue. A step there leaves
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
from .settle import SettleStep
from .sqs import MAX_MESSAGE_BYTES, Invalidator, Queue, SqsQueue
from .start import StartStep

log = logging.getLogger("newsroom.rebuild")

__all__ = [
    "CHUNK_RECHECKS",
    "MAX_MESSAGE_BYTES",
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


class RebuildService(StartStep, RenderStep, SettleStep, CommitStep):
    """The steps, run from the rebuild queue's messages."""

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
        ``render`` (``rebuild``, ``chunk``, ``keys``), ``settle``, ``month``
        (``month``, ``earlier``, ``later``), ``groups``, ``group`` (``batch``,
        ``names``), ``prune`` (``batch``, ``starts``) or ``commit``.
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
            if action == "settle":
                self.settle(rid)
                return
            if action == "month":
                month = msg["month"]
                if not isinstance(month, str) or len(month) != 7 or "/" in month:
                    raise ValueError("month")
                self.month_step(rid, month, msg.get("earlier"), msg.get("later"))
                return
            if action == "groups":
                self.plan_groups(rid)
                return
            if action == "group":
                names = [n for n in msg["names"] if isinstance(n, str) and ".." not in n]
                self.group_step(rid, int(msg["batch"]), names)
                return
            if action == "prune":
                starts = str(msg["starts"])
                if not starts.isalnum():
                    raise ValueError("starts")
                self.prune_step(rid, int(msg["batch"]), starts)
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
        months = self._get_json(rebuild_key(rebuild_id, "phases/months.json")) or {}
        groups = self._get_json(rebuild_key(rebuild_id, "phases/groups.json")) or {}
        return Progress(
            self.manifest(rebuild_id),
            done,
            failures,
            RebuildReport.from_bytes(report.body) if report else None,
            (sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "months/"))),
             len(months.get("months", []))),
            (sum(1 for _ in self.source.list(rebuild_key(rebuild_id, "gdone/"))),
             len(groups.get("batches", [])) + len(groups.get("prunes", []))),
        )  # fmt: skip
