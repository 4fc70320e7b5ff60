"""Cost of one publish against archives of growing size, in-process moto.

An archive of N generated releases is built and written to the public bucket;
then new releases are uploaded one at a time and the real ``sync_release``
handler is invoked as Lambda invokes it (an S3 event dict). Every S3 request
the handler makes is counted by operation with botocore's ``before-call`` event
hook on the handler's own client; bytes are the bodies of its PutObject calls.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from . import corpus

SOURCE, PUBLIC = "bench-source", "bench-public"
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NEWSROOM_SOURCE_BUCKET": SOURCE,
    "NEWSROOM_PUBLIC_BUCKET": PUBLIC,
    "NEWSROOM_SITE_URL": corpus.SITE_URL,
}


@contextmanager
def environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ENV}
    cleared = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("AWS_ENDPOINT_URL") or (k.startswith("NEWSROOM_") and k not in ENV)
    }
    os.environ.update(ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.environ.update(cleared)


def sqs_event(key: str) -> dict[str, Any]:
    """The publish queue's delivery of one S3 notification for ``key``."""
    notification = s3_event(key)
    return {
        "Records": [
            {
                "messageId": "bench-0001",
                "receiptHandle": "bench",
                "body": json.dumps(notification),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
        ]
    }


def s3_event(key: str) -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2025-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": SOURCE, "arn": f"arn:aws:s3:::{SOURCE}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": 1, "sequencer": "0A"},
                },
            }
        ]
    }


class RequestCounter:
    """Counts S3 requests by operation on one boto3 client (botocore event hook)."""

    def __init__(self, client: Any) -> None:
        self.ops: Counter[str] = Counter()
        self.bytes_written = 0
        self.put_keys: list[str] = []
        client.meta.events.register("before-call.s3", self._on_call)
        client.meta.events.register("before-parameter-build.s3.PutObject", self._on_put)

    def _on_call(self, model: Any = None, **_: Any) -> None:
        self.ops[model.name] += 1

    def _on_put(self, params: dict[str, Any], **_: Any) -> None:
        body = params.get("Body", b"")
        self.bytes_written += len(body) if isinstance(body, bytes | bytearray) else 0
        self.put_keys.append(params["Key"])

    def reset(self) -> None:
        self.ops.clear()
        self.bytes_written = 0
        self.put_keys.clear()


def _seed(s3: Any, archive: int, seed: int) -> tuple[list[dict[str, Any]], datetime]:
    """Build an archive of ``archive`` releases and write it to the public bucket
    (and the private index to the source bucket)."""
    from chalicelib.core.render import Renderer
    from chalicelib.keys import cache_control, content_type
    from chalicelib.settings import Settings
    from newsroom.build import build_site

    docs = corpus.generate(archive, seed=seed)
    sources = [
        (f"releases/{d['slug']}.json", json.dumps(d, ensure_ascii=False).encode()) for d in docs
    ]
    result = build_site(sources, Renderer(Settings.from_env()), now=datetime.now(UTC))
    for key, body in result.files.items():
        s3.put_object(
            Bucket=PUBLIC,
            Key=key,
            Body=body,
            ContentType=content_type(key),
            CacheControl=cache_control(key),
        )
    # the publisher's private index (its commit point) in the source bucket
    from chalicelib.keys import STATE_KEY

    s3.put_object(Bucket=SOURCE, Key=STATE_KEY, Body=result.index.to_bytes())
    newest = max(datetime.fromisoformat(d["published_at"]) for d in docs)
    return docs, newest


def measure(
    archive: int, runs: int = 20, topic_counts: tuple[int, ...] = (0, 1, 2), seed: int = 7
) -> dict[str, Any]:
    """Per-publish figures for one archive size."""
    import boto3
    from moto import mock_aws

    with environment(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        docs, newest = _seed(s3, archive, seed)
        existing_topics = sorted({t for d in docs for t in d["topics"]})
        import app  # noqa: PLC0415 - the handler module, as Lambda loads it
        from chalicelib import service

        logging.getLogger("newsroom").setLevel(logging.WARNING)  # app sets INFO

        service._publisher.cache_clear()
        service._client.cache_clear()
        counter = RequestCounter(service.s3_client())
        rng = random.Random(seed)
        n = 0

        def publish(topics: int) -> tuple[float, Counter[str], int, list[str]]:
            nonlocal n
            n += 1
            doc = corpus.release(archive + n, archive, rng, topics=0)
            doc["slug"] = f"bench-new-{n:04d}"
            # the same day as the newest release: the common case (a new month or
            # year also rewrites the archive index and the sitemap index)
            doc["published_at"] = (newest + timedelta(minutes=n)).isoformat()
            doc["topics"] = rng.sample(existing_topics, topics)
            key = f"releases/{doc['slug']}.json"
            s3.put_object(Bucket=SOURCE, Key=key, Body=json.dumps(doc).encode())
            counter.reset()
            started = time.perf_counter()
            result = app.sync_release(sqs_event(key), None)
            elapsed = time.perf_counter() - started
            assert result == {"batchItemFailures": []}, result
            return elapsed, Counter(counter.ops), counter.bytes_written, list(counter.put_keys)

        publish(1)  # warm: templates compiled, client built (a warm Lambda)
        by_topics: dict[int, dict[str, Any]] = {}
        for k in topic_counts:
            _t, ops, written, keys = publish(k)
            by_topics[k] = {
                "requests": sum(ops.values()),
                "ops": dict(sorted(ops.items())),
                "bytes_written": written,
                "put_keys": keys,
            }
        times, sizes = [], []
        for _ in range(runs):
            elapsed, _ops, written, _keys = publish(1)
            times.append(elapsed)
            sizes.append(written)
        service._publisher.cache_clear()
        service._client.cache_clear()
    return {
        "archive": archive,
        "runs": runs,
        "by_topics": by_topics,
        "handler_ms_median": statistics.median(times) * 1000,
        "handler_ms_min": min(times) * 1000,
        "bytes_written_median": int(statistics.median(sizes)),
    }
