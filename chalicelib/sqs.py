"""One SQS queue by name, as the rebuild and alert queues both send to it: the
URL looked up once, JSON bodies sent in batches with SQS's partial failures
retried, every request counted, and any client fault a transient error (the
message that asked for the send is delivered again)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import TransientStorageError

SEND_ATTEMPTS = 5  # a batch whose entries SQS keeps failing is a fault


class NamedQueue:
    """Takes its boto3 client and the queue name."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self._url = ""
        self.requests = 0

    @property
    def url(self) -> str:
        if not self._url:
            self.requests += 1
            try:
                self._url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
            except Exception as exc:
                raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
        return self._url

    @staticmethod
    def batches(bodies: Iterable[dict[str, Any]]) -> Iterable[list[dict[str, str]]]:
        """The bodies as compact JSON, ten entries (SQS's most) per batch."""
        batch = [json.dumps(b, ensure_ascii=False, separators=(",", ":")) for b in bodies]
        for i in range(0, len(batch), 10):
            yield [{"Id": str(n), "MessageBody": body} for n, body in enumerate(batch[i : i + 10])]

    def send_batch(self, entries: list[dict[str, str]]) -> None:
        for _attempt in range(SEND_ATTEMPTS):
            self.requests += 1
            try:
                resp = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as exc:
                raise TransientStorageError(f"sqs {self.name}: {exc}") from exc
            failed = {f["Id"] for f in resp.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                return
        raise TransientStorageError(f"sqs {self.name}: {len(entries)} messages not queued")
