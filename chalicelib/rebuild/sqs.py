"""The rebuild queue's client: sends the steps' messages, and reads its counts
and dead-letter queue for ``newsroom rebuild``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from ..errors import TransientStorageError
from ..sqs import NamedQueue

MAX_MESSAGE_BYTES = 200_000  # SQS takes 256 KiB; a chunk closes before that


class Invalidator(Protocol):
    def invalidate(self, paths: list[str]) -> None: ...


class Queue(Protocol):
    """The rebuild queue as this module uses it (``SqsQueue`` in Lambda and locally)."""

    def send(self, bodies: Iterable[dict[str, Any]]) -> None: ...


class SqsQueue(NamedQueue):
    """SQS adapter for the rebuild queue: takes its boto3 client and the queue name."""

    def send(self, bodies: Iterable[dict[str, Any]]) -> None:
        for entries in self.batches(bodies):
            # a batch of ten chunk messages may exceed SQS's 256 KiB per request
            if sum(len(e["MessageBody"].encode()) for e in entries) > MAX_MESSAGE_BYTES:
                for entry in entries:
                    self.send_batch([entry])
            else:
                self.send_batch(entries)

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
