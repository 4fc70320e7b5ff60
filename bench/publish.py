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
from datetime import timedelta
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
def environment(extra: dict[str, str] | None = None) -> Iterator[None]:
    """The bench's environment (``ENV`` plus ``extra``) while inside; the caller's after."""
    env = {**ENV, **(extra or {})}
    saved = {k: os.environ.get(k) for k in env}
    cleared = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("AWS_ENDPOINT_URL") or (k.startswith("NEWSROOM_") and k not in env)
    }
    os.environ.update(env)
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
    """Counts S3 requests by operation on one boto3 client (botocore event hooks),
    the bytes of its PutObject bodies and of its GetObject responses; with
    ``delay`` every request first sleeps that long (a network round trip)."""

    def __init__(self, client: Any) -> None:
        self.ops: Counter[str] = Counter()
        self.bytes_written = 0
        self.bytes_read = 0
        self.put_keys: list[str] = []
        self.delay = 0.0
        client.meta.events.register("before-call.s3", self._on_call)
        client.meta.events.register("before-parameter-build.s3.PutObject", self._on_put)
        client.meta.events.register("after-call.s3.GetObject", self._on_get)
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_call(self, model: Any = None, **_: Any) -> None:
        self.ops[model.name] += 1

    def _on_put(self, params: dict[str, Any], **_: Any) -> None:
        body = params.get("Body", b"")
        self.bytes_written += len(body) if isinstance(body, bytes | bytearray) else 0
        self.put_keys.append(params["Key"])

    def _on_get(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        self.bytes_read += int((parsed or {}).get("ContentLength") or 0)

    def _on_send(self, **_: Any) -> None:
        if self.delay:
            time.sleep(self.delay)

    def reset(self) -> None:
        self.ops.clear()
        self.bytes_written = 0
        self.bytes_read = 0
        self.put_keys.clear()


DELAY = 0.020  # seconds per request: about one S3 round trip from Lambda


def seeded_app(s3: Any, archive: int) -> tuple[Any, Any, Any]:
    """Both buckets, the private state of ``archive`` releases seeded into the
    source, and the handler module as Lambda loads it, its clients fresh:
    ``(seeded, app, service)``."""
    from .archive import seed_archive

    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=PUBLIC)
    seeded = seed_archive(s3, SOURCE, archive)
    import app  # noqa: PLC0415 - the handler module, as Lambda loads it
    from chalicelib import service

    logging.getLogger("newsroom").setLevel(logging.WARNING)  # app sets INFO
    service.reset()
    return seeded, app, service


def measure(archive: int, runs: int = 5, seed: int = 7) -> dict[str, Any]:
    """Per-publish figures for one archive size: a publish into a small topic
    and into the topic holding half the archive, each the median of ``runs``
    publishes, timed without and with a 20 ms delay per request."""
    import boto3
    from moto import mock_aws

    from .archive import BIG_TOPIC, DENSITY, SMALL_TOPIC

    with environment(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        seeded, app, service = seeded_app(s3, archive)
        counter = RequestCounter(service.s3_client())
        rng = random.Random(seed)
        n = 0

        def publish(topic: str, delay: float = 0.0) -> dict[str, Any]:
            nonlocal n
            n += 1
            doc = corpus.release(n, 1, rng, topics=0)
            doc["slug"] = f"bench-new-{n:04d}"
            # the same month as the newest release: the common case
            doc["published_at"] = (seeded.newest + timedelta(minutes=n)).isoformat()
            doc["topics"] = [topic]
            key = f"releases/{doc['slug']}.json"
            s3.put_object(Bucket=SOURCE, Key=key, Body=json.dumps(doc).encode())
            counter.reset()
            counter.delay = delay
            started = time.perf_counter()
            result = app.sync_release(sqs_event(key), None)
            elapsed = time.perf_counter() - started
            counter.delay = 0.0
            assert result == {"batchItemFailures": []}, result
            return {
                "ms": elapsed * 1000,
                "requests": sum(counter.ops.values()),
                "ops": dict(sorted(counter.ops.items())),
                "bytes_written": counter.bytes_written,
                "bytes_read": counter.bytes_read,
                "put_keys": list(counter.put_keys),
            }

        publish(SMALL_TOPIC)  # warm: templates compiled, client built (a warm Lambda)
        cases: dict[str, Any] = {}
        for name, topic in (("small topic", SMALL_TOPIC), ("half the archive", BIG_TOPIC)):
            plain = [publish(topic) for _ in range(runs)]
            delayed = [publish(topic, DELAY) for _ in range(runs)]
            last = plain[-1]
            cases[name] = {
                "topic": topic,
                "requests": int(statistics.median(r["requests"] for r in plain)),
                "ops": last["ops"],
                "bytes_written": int(statistics.median(r["bytes_written"] for r in plain)),
                "bytes_read": int(statistics.median(r["bytes_read"] for r in plain)),
                "handler_ms": min(r["ms"] for r in plain),
                "handler_ms_median": statistics.median(r["ms"] for r in plain),
                "handler_ms_delayed": min(r["ms"] for r in delayed),
                "put_keys": last["put_keys"],
            }
        service.reset()
    return {
        "archive": archive,
        "load": round(os.getloadavg()[0], 2),
        "months": seeded.months,
        "density": DENSITY,
        "runs": runs,
        "cases": cases,
    }


TITLE = "## Cost of one publish"
MEASURES = (
    ("bytes_written", "bytes written"),
    ("bytes_read", "bytes read"),
    ("requests", "S3 requests"),
    ("handler_ms", "handler ms"),
    ("handler_ms_delayed", "handler ms, 20 ms per request"),
)
GOAL = 1.5


def ratios(results: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(case, measure) -> the largest archive's figure over the smallest's."""
    first, last = results[0], results[-1]
    return {
        (case, m): last["cases"][case][m] / max(first["cases"][case][m], 1e-9)
        for case in first["cases"]
        for m, _label in MEASURES
    }


def section(results: list[dict[str, Any]], command: str = "make bench") -> str:
    """The "Cost of one publish" section of docs/performance.md."""
    from .report import _table

    if not results:
        return TITLE + "\n\nNot measured in this run.\n"
    base = results[0]
    rows = []
    for r in results:
        for case, c in r["cases"].items():
            b = base["cases"][case]
            rows.append(
                [f"{r['archive']:,}", case]
                + [
                    f"{c[m]:,.0f} ({c[m] / max(b[m], 1e-9):.2f}×)"
                    if m.startswith("bytes") or m == "requests"
                    else f"{c[m]:.1f} ({c[m] / max(b[m], 1e-9):.2f}×)"
                    for m, _label in MEASURES
                ]
            )
    goal_rows = []
    if len(results) > 1:
        for (case, m), ratio in ratios(results).items():
            if m == "handler_ms_delayed":
                continue
            label = dict(MEASURES)[m]
            goal_rows.append(
                [
                    f"{label}, {case}: {results[-1]['archive']:,} vs {base['archive']:,}",
                    f"{ratio:.2f}×",
                    "met" if ratio <= GOAL else "**missed**",
                ]
            )
    big = results[-1]["cases"]["half the archive"]
    parts = [
        TITLE,
        "",
        f"Command: `{command}` (this section alone: `python -m bench --only publish`).",
        "",
        f"An archive of N releases at a constant {base['density']} releases a month "
        "(about five a working day: a large ministry or international NGO; 100,000 "
        f"releases then span {results[-1]['months']:,} months) is written straight into "
        "moto's S3 as the private state `newsroom rebuild` commits (`bench/archive.py`; "
        "nothing is rendered, and no public page of the archive is written: a publish "
        "never reads one). Then a new release of the newest month is uploaded and the "
        "real `sync_release` handler is invoked with an SQS event carrying the S3 "
        "notification, as Lambda does: one release into a small topic (3 releases at "
        "every size) and one into a topic holding half the archive. Requests are counted "
        "per operation and bytes from the PutObject bodies and GetObject responses, with "
        "botocore event hooks on the handler's client (the release, its receipt, the "
        "state and the public pages; the source file itself is read too). Each figure "
        f"is the median of {base['runs']} publishes, but handler times are the fastest of "
        f"{base['runs']}: the machine is shared, and the fastest run is the one least "
        "slowed by other processes (load average at the end of each size: "
        + ", ".join(f"{r.get('load', 0):.1f}" for r in results)
        + f", on {os.cpu_count()} cores); the last column adds a 20 ms "
        "sleep to every request (a `before-send` hook), so sequential requests cost "
        "about what they do from Lambda.",
        "",
        _table(["archive", "publish into"] + [label for _m, label in MEASURES], rows),
        "",
    ]
    if goal_rows:
        parts += [
            f"Goal: each figure at {results[-1]['archive']:,} releases at most {GOAL}× "
            f"the figure at {base['archive']:,}.",
            "",
            _table(["figure", "ratio", ""], goal_rows),
            "",
        ]
    parts += [
        "Requests by operation (half the archive, largest size): "
        + ", ".join(f"{k} {v}" for k, v in big["ops"].items())
        + ".",
        "",
        "Objects written: " + ", ".join(f"`{k}`" for k in big["put_keys"]) + ".",
        "",
        "What still grows: lists of months and years (`index.json`'s month list, the "
        "head's month pointers, the year pages) grow with the time the archive spans, "
        "not with the releases in it; a month's objects grow with the releases of that "
        "month. So the cost of a publish depends on how many releases a month holds "
        "(the density), not on the size of the archive.",
    ]
    return "\n".join(parts)
