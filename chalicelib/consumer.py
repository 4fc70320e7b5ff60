"""The publish queue's consumer: one SQS batch -> one convergence of the public site.

``sync_release`` hands each batch here. The batch's release keys are converged
together (one commit of the index), its media keys through the same writer;
keys outside ``releases/`` and ``media/``, folder markers and records of
other buckets are ignored. The answer is Lambda's
partial batch response: only messages whose keys met an infrastructure fault
come back. One structured metrics line per batch (CloudWatch Embedded Metric
Format) carries what was published and rejected, the batch size and the age
of its oldest message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from .keys import MEDIA_PREFIX, RELEASES_PREFIX
from .publisher import Publisher
from .queue import Message, batch_keys, batch_response, parse_batch
from .receipts import Receipt

log = logging.getLogger("newsroom.consumer")
metrics_log = logging.getLogger("newsroom.metrics")

NAMESPACE = "Newsroom"


def emf(function: str, values: dict[str, float], units: dict[str, str], now_ms: int) -> str:
    """One CloudWatch Embedded Metric Format document (a JSON log line that
    CloudWatch turns into metrics without any API call)."""
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
                }
            ],
        },
        "Function": function,
    }
    doc.update(values)
    return json.dumps(doc, separators=(",", ":"))


class QueueConsumer:
    def __init__(
        self,
        publisher: Publisher,
        *,
        source_bucket: str | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.publisher = publisher
        self.source_bucket = source_bucket  # the bucket whose events count (others: ignored)
        self.now_ms = now_ms

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Converge every key a batch names; return the partial batch response."""
        messages = parse_batch(event, self.source_bucket)
        keys = batch_keys(messages)
        releases = [k for k in keys if k.startswith(RELEASES_PREFIX)]
        media = [k for k in keys if k.startswith(MEDIA_PREFIX)]
        failed: set[str] = set()
        receipts: list[Receipt] = []
        try:
            outcome = self.publisher.sync_batch(releases)
        except Exception:  # noqa: BLE001 - logged by the publisher; the messages come back
            failed.update(releases)
        else:
            failed.update(outcome.failed)
            receipts.extend(outcome.receipts)
        try:
            receipts.extend(self.publisher.sync_media(media))
        except Exception as exc:  # noqa: BLE001 - the messages come back
            log.error("media_failed", extra={"error_type": type(exc).__name__, "error": str(exc)})
            failed.update(media)
        self._metrics(messages, receipts, failed)
        return batch_response(messages, failed)

    def _metrics(self, messages: list[Message], receipts: list[Receipt], failed: set[str]) -> None:
        now = self.now_ms()
        sent = [m.sent_ms for m in messages if m.sent_ms is not None]
        values: dict[str, float] = {
            "BatchSize": len(messages),
            "Published": sum(1 for r in receipts if r.status == "published"),
            "Rejected": sum(1 for r in receipts if r.status == "rejected"),
            "Failed": len(failed),
            "OldestMessageAge": max(0, now - min(sent)) if sent else 0,
        }
        units = {name: "Count" for name in values}
        units["OldestMessageAge"] = "Milliseconds"
        metrics_log.info(emf("sync_release", values, units, now))
