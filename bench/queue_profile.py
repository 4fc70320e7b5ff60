"""Where one queue batch's requests go: ``python -m bench.queue_profile [ARCHIVE] [BATCH]``.

An archive of ARCHIVE releases is seeded into in-process moto (``archive.seed_archive``),
BATCH new releases are uploaded, and the real ``sync_release`` handler gets one
SQS event carrying all their S3 notifications (after a warm-up batch of four,
as a warm Lambda). Every S3 request of the handler is counted by operation,
bucket and key prefix (botocore's ``before-parameter-build`` hook); the
handler's time is printed beside them. Requests counts do not depend on the
machine's load; the time does.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from . import corpus
from .publish import SOURCE, environment, s3_event, seeded_app


def _prefix(key: str) -> str:
    parts = key.split("/")
    return "/".join(parts[:2]) if parts[0] in ("state", "receipts") else parts[0]


def profile(archive: int = 10000, size: int = 100) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    with environment(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        seeded, app, service = seeded_app(s3, archive)
        ops: Counter[str] = Counter()

        def count(params: dict[str, Any], event_name: str = "", **_: Any) -> None:
            bucket = "source" if params.get("Bucket") == SOURCE else "public"
            where = _prefix(params.get("Key", params.get("Prefix", "")))
            ops[f"{event_name.rsplit('.', 1)[-1]} {bucket} {where}"] += 1

        service.s3_client().meta.events.register("before-parameter-build.s3", count)
        rng = random.Random(7)

        def batch(start: int, n: int) -> dict[str, Any]:
            records = []
            for i in range(start, start + n):
                doc = corpus.release(archive + i, archive, rng, topics=1)
                doc["slug"] = f"burst-{i:05d}"
                doc["published_at"] = (seeded.newest + timedelta(seconds=i)).isoformat()
                key = f"releases/{doc['slug']}.json"
                s3.put_object(Bucket=SOURCE, Key=key, Body=json.dumps(doc).encode())
                records.append(
                    {"messageId": f"m{i}", "receiptHandle": "r", "body": json.dumps(s3_event(key)),
                     "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs"}
                )  # fmt: skip
            return {"Records": records}

        app.sync_release(batch(0, 4), None)  # warm
        ops.clear()
        event = batch(100, size)
        started = time.perf_counter()
        answer = app.sync_release(event, None)
        handler_s = time.perf_counter() - started
        assert answer == {"batchItemFailures": []}, answer
        return {
            "archive": archive,
            "batch": size,
            "handler_s": round(handler_s, 2),
            "requests": sum(ops.values()),
            "ops": dict(ops.most_common()),
        }


if __name__ == "__main__":
    archive, size = (int(a) for a in (sys.argv[1:] or ["10000", "100"]))
    print(json.dumps(profile(archive, size), indent=1))
