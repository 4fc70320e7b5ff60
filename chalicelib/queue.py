"""The publish queue's messages -> the source keys they name, and the answer Lambda wants.

S3 sends every ``releases/`` and ``media/`` change of the source bucket to an
SQS standard queue; each SQS message body is an S3 event notification (JSON,
keys URL-encoded with ``+`` for a space), possibly inside an SNS envelope (the
bucket's events fanned out through a topic), or S3's one-off ``s3:TestEvent``. An
event is only a hint that a key changed, so all this module keeps of it is the
decoded key; the publisher reads what the bucket holds *now*.

The handler answers with a partial batch response: only the messages whose
keys hit an infrastructure fault are named in ``batchItemFailures`` and come
back after the visibility timeout (then, after ``maxReceiveCount``, go to the
dead-letter queue); the rest are deleted from the queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger("newsroom.queue")


@dataclass(frozen=True)
class Message:
    """One SQS record: its id (for a batch item failure), the decoded keys its
    S3 notification names, and when SQS first got it (epoch ms, for metrics)."""

    message_id: str
    keys: tuple[str, ...]
    sent_ms: int | None = None


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: a malformed
    message must never raise (it would fail every other message of its batch)."""
    return value if isinstance(value, dict) else {}


def s3_keys(notification: dict[str, Any], bucket: str | None = None) -> list[str]:
    """Every object key in an S3 notification, URL-decoded (``+`` is a space),
    deduplicated in order. S3 may put several records in one notification.
    Records of another bucket than ``bucket`` (when given) and folder markers
    (``media/2024/``, which the console's "Create folder" writes) name no key."""
    keys: list[str] = []
    records = notification.get("Records")
    for record in records if isinstance(records, list) else []:
        s3 = _obj(_obj(record).get("s3"))
        raw = _obj(s3.get("object")).get("key")
        if not isinstance(raw, str):
            continue
        name = _obj(s3.get("bucket")).get("name")
        if bucket and isinstance(name, str) and name != bucket:
            log.warning("queue record of bucket %s, not %s; ignored", name, bucket)
            continue
        key = unquote_plus(raw)
        if key and not key.endswith("/") and key not in keys:
            keys.append(key)
    return keys


def _unwrap(body: Any) -> Any:
    """The S3 notification an SNS envelope carries (S3 -> SNS -> SQS without
    raw message delivery), or ``body`` itself."""
    if _obj(body).get("Type") == "Notification" and isinstance(body.get("Message"), str):
        try:
            return json.loads(body["Message"])
        except ValueError:
            return None
    return body


def parse_record(record: dict[str, Any], bucket: str | None = None) -> Message:
    """One SQS record -> ``Message``. A body that is not an S3 notification
    (``s3:TestEvent``, or anything malformed) names no keys: it is logged and
    acknowledged, since redelivering it could never help."""
    message_id = str(record.get("messageId") or "")
    attributes = _obj(record.get("attributes"))
    try:
        sent_ms: int | None = int(attributes.get("SentTimestamp"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        sent_ms = None
    try:
        body = _unwrap(json.loads(record.get("body") or ""))
    except (ValueError, TypeError):
        log.warning("queue message %s is not JSON; ignored", message_id)
        return Message(message_id, (), sent_ms)
    if _obj(body).get("Event") == "s3:TestEvent":
        return Message(message_id, (), sent_ms)
    if not isinstance(_obj(body).get("Records"), list):
        log.warning("queue message %s is not an S3 notification; ignored", message_id)
        return Message(message_id, (), sent_ms)
    return Message(message_id, tuple(s3_keys(body, bucket)), sent_ms)


def parse_batch(event: dict[str, Any], bucket: str | None = None) -> list[Message]:
    """The batch's messages; ``bucket``: the source bucket, whose keys alone count."""
    records = event.get("Records")
    return (
        [parse_record(r, bucket) for r in records if isinstance(r, dict)]
        if isinstance(records, list)
        else []
    )


def batch_keys(messages: Iterable[Message]) -> list[str]:
    """Each key once, in first-seen order: a batch converges each key to its
    current state once, however many events named it."""
    seen: dict[str, None] = {}
    for m in messages:
        for k in m.keys:
            seen.setdefault(k, None)
    return list(seen)


def batch_response(messages: Iterable[Message], failed_keys: Iterable[str]) -> dict[str, Any]:
    """Lambda's partial batch response: the messages naming any failed key."""
    failed = set(failed_keys)
    return {
        "batchItemFailures": [
            {"itemIdentifier": m.message_id} for m in messages if failed.intersection(m.keys)
        ]
    }
