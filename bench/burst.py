"""A burst through the publish queue, as on AWS, on moto.

moto's S3 and SQS run as one server on 127.0.0.1 (each request atomic, as on
AWS). An archive of N releases is seeded directly (``archive.seed_archive``,
the one seeding helper: the publisher's private state, no pages), the source
bucket notifies the publish queue as infra/newsroom.yaml declares it
(``newsroom.lambda_sqs``), and two worker
processes play Lambda at the queue's maximum concurrency of 2: each receives
up to ``batch_size`` messages (waiting at most the batching window for a full
batch), invokes the real ``sync_release`` of its own ``import app`` with the
SQS event JSON, and deletes the messages the handler did not report failed
(``ReportBatchItemFailures``); a failed message comes back after the
visibility timeout and goes to the dead-letter queue after 5 receives.

Measured:
- **single publish**: one upload at a time, the handler's time for its
  one-message batch (the batching window excluded);
- **burst**: ``uploads`` releases put to the source bucket as fast as one
  client can; releases live per second from the first upload to the end of
  the last batch; then how many are not public (lost) and how many messages
  sit in the dead-letter queue.

With ``delay_ms``, every request the handler makes waits that long before it
is sent (botocore's ``request-created`` hook), so a run of sequential requests
costs about what it costs against AWS from a Lambda.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import random
import statistics
import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from . import corpus, publish
from .archive import seed_archive
from .publish import PUBLIC, SOURCE

QUEUE = "bench-publish"
BATCH_SIZE = 100  # app.py's on_sqs_message
WINDOW_S = 2.0  # maximum_batching_window_in_seconds
CONCURRENCY = 2  # maximum_concurrency
VISIBILITY_S = 120  # at least the function timeout (as Lambda requires); infra sets 6x


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip


def _receive(sqs: Any, url: str, stop: Any) -> list[dict[str, Any]]:
    """One batch as Lambda's poller gathers it: up to BATCH_SIZE messages,
    waiting at most the batching window once the first has arrived."""
    batch: list[dict[str, Any]] = []
    deadline = None
    while len(batch) < BATCH_SIZE and not stop.is_set():
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, BATCH_SIZE - len(batch)),  # SQS's most a call
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        batch.extend(got)
        now = time.monotonic()
        if batch and deadline is None:
            deadline = now + WINDOW_S
        if deadline is not None and now >= deadline:
            break
        if not got:
            time.sleep(0.02)
    return batch


def _worker(endpoint: str, url: str, arn: str, delay_ms: float, stop: Any, out: Any) -> None:
    """One Lambda instance: its own ``import app``, its own clients."""
    os.environ.update(publish.ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    import app  # noqa: PLC0415 - the handler module, as Lambda loads it
    from chalicelib import service
    from newsroom.lambda_sqs import sqs_event

    logging.getLogger("newsroom").setLevel(logging.WARNING)  # app sets INFO
    if delay_ms:

        def wait(**_: Any) -> None:
            time.sleep(delay_ms / 1000)

        service.s3_client().meta.events.register("request-created.s3", wait)
    sqs = _client(endpoint, "sqs")
    while not stop.is_set():
        batch = _receive(sqs, url, stop)
        if not batch:
            continue
        started = time.perf_counter()
        answer = app.sync_release(sqs_event(batch, arn), None)
        handler_s = time.perf_counter() - started
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in batch if m["MessageId"] not in failed]
        for n in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[n : n + 10])
                ],
            )
        keys = [
            unquote_plus(r["s3"]["object"]["key"])
            for m in done
            for r in json.loads(m["Body"]).get("Records", [])
        ]
        out.put(
            {"keys": keys, "size": len(batch), "failed": len(failed),
             "handler_s": handler_s, "ended": time.time()}
        )  # fmt: skip


class _Lambda:
    """The worker processes and what they report."""

    def __init__(self, endpoint: str, url: str, arn: str, delay_ms: float) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.out = ctx.Queue()
        self.procs = [
            ctx.Process(target=_worker, args=(endpoint, url, arn, delay_ms, self.stop, self.out))
            for _ in range(CONCURRENCY)
        ]
        self.reports: list[dict[str, Any]] = []
        self.done: set[str] = set()

    def start(self) -> _Lambda:
        for p in self.procs:
            p.start()
        return self

    def wait_for(self, keys: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not keys <= self.done:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                report = self.out.get(timeout=min(left, 1.0))
            except queue_mod.Empty:
                continue
            self.reports.append(report)
            self.done.update(report["keys"])
        return True

    def close(self) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()


def _release(n: int, archive: int, newest: Any, rng: random.Random) -> tuple[str, bytes]:
    doc = corpus.release(archive + n, archive, rng, topics=1)
    doc["slug"] = f"burst-{n:05d}"
    doc["published_at"] = (newest + timedelta(seconds=n)).isoformat()
    return f"releases/{doc['slug']}.json", json.dumps(doc, ensure_ascii=False).encode()


def measure(
    archive: int = 10000,
    uploads: int = 1000,
    delays: tuple[float, ...] = (0.0,),
    singles: int = 5,
    seed: int = 7,
    timeout: float = 1800.0,
) -> list[dict[str, Any]]:
    """One seeded archive, then per request delay: fresh Lambda instances,
    single publishes, one burst. (Each run's uploads stay: the archive grows
    by ``uploads`` + ``singles`` + the warm-up from one delay to the next.)"""
    from newsroom import lambda_sqs
    from newsroom.demo import atomic_moto_server_class

    results = []
    with publish.environment():
        server = atomic_moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            s3, sqs = _client(endpoint, "s3"), _client(endpoint, "sqs")
            s3.create_bucket(Bucket=SOURCE)
            s3.create_bucket(Bucket=PUBLIC)
            seed_started = time.perf_counter()
            newest = seed_archive(s3, SOURCE, archive).newest
            seed_s = time.perf_counter() - seed_started
            url, arn = lambda_sqs.create_queue(sqs, QUEUE, visibility_timeout=VISIBILITY_S)
            dlq = sqs.get_queue_url(QueueName=QUEUE + "-dlq")["QueueUrl"]
            lambda_sqs.notify_queue(s3, SOURCE, arn)
            rng = random.Random(seed)
            n = 0

            def upload() -> str:
                nonlocal n
                n += 1
                key, body = _release(n, archive, newest, rng)
                s3.put_object(Bucket=SOURCE, Key=key, Body=body)
                return key

            for delay_ms in delays:
                size = archive + n
                lam = _Lambda(endpoint, url, arn, delay_ms).start()
                try:
                    figures = _run(lam, upload, uploads, singles, timeout)
                finally:
                    lam.close()
                live = _live(s3, figures.pop("keys"))
                dead, left = _count(sqs, dlq), _count(sqs, url)
                figures.update(
                    archive=size, uploads=uploads, delay_ms=delay_ms, seed_s=round(seed_s, 1),
                    lost=uploads - len(live), dead_letter=dead, left_in_queue=left,
                    releases_per_s=round(len(live) / figures["burst_s"], 1),
                )  # fmt: skip
                results.append(figures)
        finally:
            server.stop()
    return results


def _run(lam: _Lambda, upload: Any, uploads: int, singles: int, timeout: float) -> dict[str, Any]:
    # warm both instances (imports, templates, clients), as warm Lambdas are
    warm = {upload() for _ in range(2 * CONCURRENCY)}
    assert lam.wait_for(warm, timeout), "warm-up publishes did not complete"
    single_s = []
    for _ in range(singles):
        key = upload()
        assert lam.wait_for({key}, timeout), f"{key} was not published"
        single_s.append(next(r for r in lam.reports if key in r["keys"])["handler_s"])
    before = len(lam.reports)
    burst: set[str] = set()
    started = time.time()
    for _ in range(uploads):
        burst.add(upload())
    uploaded_s = time.time() - started
    completed = lam.wait_for(burst, timeout)
    reports = lam.reports[before:]
    ended = max((r["ended"] for r in reports), default=time.time())
    sizes = [r["size"] for r in reports]
    return {
        "keys": burst,
        "single_handler_ms_median": statistics.median(single_s) * 1000,
        "single_handler_ms_max": max(single_s) * 1000,
        "upload_s": round(uploaded_s, 2),
        "burst_s": round(max(ended - started, 1e-3), 2),
        "completed": completed,
        "batches": len(reports),
        "batch_size_mean": round(statistics.mean(sizes), 1) if sizes else 0,
        "batch_handler_ms_median": (
            statistics.median(r["handler_s"] for r in reports) * 1000 if reports else 0
        ),
        "messages_failed": sum(r["failed"] for r in reports),
    }


TITLE = "## The publish queue: a burst, and one publish, at 10,000 releases"
GOAL_RATE = 50.0  # releases live per second in a burst
GOAL_SINGLE_MS = 1000.0  # handler time of one publish


def section(results: list[dict[str, Any]]) -> str:
    """The performance.md section of ``measure`` runs (one per request delay)."""
    rows = []
    for r in results:
        rate_ok = r["releases_per_s"] >= GOAL_RATE and r["lost"] == 0 and r["dead_letter"] == 0
        rows.append(
            f"| {r['delay_ms']:g} ms | {r['archive']:,} | {r['uploads']:,} "
            f"| {r['releases_per_s']:g}/s ({r['burst_s']:g} s) | {r['lost']} | {r['dead_letter']} "
            f"| {r['messages_failed']} "
            f"| {r['batches']} × {r['batch_size_mean']:g} "
            f"| {r['batch_handler_ms_median']:.0f} ms "
            f"| {r['single_handler_ms_median']:.0f} ms (max {r['single_handler_ms_max']:.0f}) "
            f"| {'met' if rate_ok else '**missed**'} / "
            f"{'met' if r['single_handler_ms_median'] < GOAL_SINGLE_MS else '**missed**'} |"
        )
    return "\n".join(
        [
            TITLE,
            "",
            "```",
            "python -m bench --only burst   # --burst-archive, --burst-uploads, --burst-delays",
            "```",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            f"Goals: at least {GOAL_RATE:g} releases live per second in the burst, none lost, "
            f"none in the dead-letter queue; one publish under {GOAL_SINGLE_MS:g} ms of handler "
            "time (the batching window excluded).",
            "",
            "| request delay | archive | uploads | burst: live per second | lost | in DLQ "
            "| messages failed (delivered again) | batches × mean size "
            "| handler per batch (median) | one publish: handler (median) | goals (burst / one) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def _live(s3: Any, keys: set[str]) -> set[str]:
    """The uploads whose page is public and whose receipt says published."""
    pages = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=PUBLIC, Prefix="releases/"):
        pages.update(o["Key"] for o in page.get("Contents", []))
    live = set()
    for key in keys:
        slug = key.removeprefix("releases/").removesuffix(".json")
        if f"releases/{slug}/index.html" not in pages:
            continue
        from chalicelib.keys import receipt_key

        receipt = json.loads(s3.get_object(Bucket=SOURCE, Key=receipt_key(key))["Body"].read())
        if receipt["status"] == "published":
            live.add(key)
    return live


def _count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


if __name__ == "__main__":  # python -m bench.burst ARCHIVE UPLOADS [DELAY_MS…]
    import sys

    archive, uploads, *delays = (float(a) for a in sys.argv[1:] or ["1000", "100"])
    runs = measure(int(archive), int(uploads), tuple(delays) or (0.0,))
    print(json.dumps(runs, indent=2))
    print(section(runs))
