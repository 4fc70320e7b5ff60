"""A burst through the publish queue, as on AWS, on moto.

moto's S3 and SQS run as one server on 127.0.0.1, in a process of its own
(each request atomic, as on AWS: moto answers one at a time). An archive of N releases is seeded directly (``archive.seed_archive``,
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
- **burst**: ``uploads`` releases put to the source bucket by eight client
  threads at once (as a CMS burst arrives; until 2026-11-30 one client put
  them one after the other, and the server shared its process with it);
  releases live per second from the first upload to the end of the last
  batch, as before; then how many are not public (lost) and how many
  messages sit in the dead-letter queue.

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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from . import corpus, publish
from .archive import seed_archive
from .publish import PUBLIC, SOURCE

QUEUE = "bench-publish"
BATCH_SIZE = 500  # app.py's on_sqs_message
WINDOW_S = 2.0  # maximum_batching_window_in_seconds
CONCURRENCY = 2  # maximum_concurrency
UPLOADERS = 8  # client threads putting the burst
POLL_S = 0.25  # pause after an empty receive
VISIBILITY_S = 120  # at least the function timeout (as Lambda requires); infra sets 6x


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip


def _receive(sqs: Any, url: str, stop: Any, batch_size: int) -> list[dict[str, Any]]:
    """One batch as Lambda's poller gathers it: up to ``batch_size`` messages,
    waiting at most the batching window once the first has arrived."""
    batch: list[dict[str, Any]] = []
    deadline = None
    while len(batch) < batch_size and not stop.is_set():
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, batch_size - len(batch)),  # SQS's most a call
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
            # Lambda's poller long-polls, which costs SQS nothing; the atomic
            # local server cannot long-poll (a waiting receive would hold its
            # lock), and a receive costs it about 12 ms of CPU: a tight loop
            # of empty receives by two instances starved it (until 2026-11-30
            # every 20 ms, more than its whole core)
            time.sleep(POLL_S)
    return batch


def _serve(ready: Any, stop: Any) -> None:
    """The local AWS endpoint in a process of its own: moto answers one
    request at a time (a lock makes each atomic, as on AWS), so its Python
    interpreter is the ceiling; here it shares that interpreter with no
    uploader and no worker."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _fast_sqs_clock()
    from newsroom.endpoint import atomic_moto_server_class

    server = atomic_moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    ready.put(f"http://{host}:{port}")
    stop.wait()
    server.stop()


def _fast_sqs_clock() -> None:
    """moto's SQS asks the time through ``datetime`` twice per waiting message
    for every message it hands out: with 1,000 messages waiting, one receive
    of ten cost the server about a second of CPU (measured), so the harness,
    not the product, set the pace of a large burst. In the server process
    only, the same clock reads ``time.time()`` (the same value, 20 µs cheaper)."""
    import moto.core.utils as utils
    import moto.sqs.models as sqs_models

    slow = utils.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else slow(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    for module in (utils, sqs_models):
        module.unix_time = unix_time  # type: ignore[assignment]
        module.unix_time_millis = unix_time_millis  # type: ignore[assignment]


class _Endpoint:
    """``_serve`` in a spawned process, for the length of a ``with``."""

    def __enter__(self) -> _Endpoint:
        ctx = mp.get_context("spawn")
        self.stop, ready = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(ready, self.stop))
        self.proc.start()
        self.url = str(ready.get(timeout=120))
        return self

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.terminate()


def _worker(
    endpoint: str, url: str, arn: str, delay_ms: float, batch_size: int, stop: Any, out: Any
) -> None:
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
    requests = [0]

    def count(**_: Any) -> None:
        requests[0] += 1

    service.s3_client().meta.events.register("before-call.s3", count)
    sqs = _client(endpoint, "sqs")
    while not stop.is_set():
        batch = _receive(sqs, url, stop, batch_size)
        if not batch:
            continue
        conflicts = service.publisher().conflicts
        event = sqs_event(batch, arn)
        event_bytes = len(json.dumps(event).encode())  # Lambda's payload limit: 6 MB
        started, cpu, requests[0] = time.perf_counter(), time.process_time(), 0
        answer = app.sync_release(event, None)
        handler_s = time.perf_counter() - started
        cpu = time.process_time() - cpu
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
             "handler_s": handler_s, "cpu_s": cpu, "requests": requests[0],
             "lost_races": service.publisher().conflicts - conflicts,
             "event_bytes": event_bytes, "ended": time.time()}
        )  # fmt: skip


class _Lambda:
    """The worker processes and what they report."""

    def __init__(
        self, endpoint: str, url: str, arn: str, delay_ms: float, batch_size: int = BATCH_SIZE
    ) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.out = ctx.Queue()
        args = (endpoint, url, arn, delay_ms, batch_size, self.stop, self.out)
        self.procs = [ctx.Process(target=_worker, args=args) for _ in range(CONCURRENCY)]
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
    batch_sizes: tuple[int, ...] = (BATCH_SIZE,),
) -> list[dict[str, Any]]:
    """One seeded archive, then per request delay and batch size: fresh
    Lambda instances, single publishes, one burst. (Each run's uploads stay:
    the archive grows by ``uploads`` + ``singles`` + the warm-up from one run
    to the next.)"""
    from newsroom import lambda_sqs

    results = []
    with publish.environment(), _Endpoint() as server:
        endpoint = server.url
        s3, sqs = _client(endpoint, "s3"), _client(endpoint, "sqs")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        costs = _request_costs(server, s3)
        seed_started = time.perf_counter()
        newest = seed_archive(s3, SOURCE, archive).newest
        seed_s = time.perf_counter() - seed_started
        url, arn = lambda_sqs.create_queue(sqs, QUEUE, visibility_timeout=VISIBILITY_S)
        dlq = sqs.get_queue_url(QueueName=QUEUE + "-dlq")["QueueUrl"]
        lambda_sqs.notify_queue(s3, SOURCE, arn)
        rng = random.Random(seed)
        n = 0

        def make() -> tuple[str, bytes]:
            nonlocal n
            n += 1
            return _release(n, archive, newest, rng)

        def put(item: tuple[str, bytes]) -> str:
            s3.put_object(Bucket=SOURCE, Key=item[0], Body=item[1])
            return item[0]

        def upload(count: int = 1, items: list[tuple[str, bytes]] | None = None) -> list[str]:
            """``count`` new releases (or ``items`` made before), put by
            UPLOADERS clients at once, as a CMS burst arrives."""
            items = items or [make() for _ in range(count)]
            with ThreadPoolExecutor(UPLOADERS) as pool:
                return list(pool.map(put, items))

        upload.make = make  # type: ignore[attr-defined]

        for delay_ms, batch_size in [(d, b) for d in delays for b in batch_sizes]:
            size = archive + n
            load_before = round(os.getloadavg()[0], 1)
            lam = _Lambda(endpoint, url, arn, delay_ms, batch_size).start()
            try:
                figures = _run(lam, upload, uploads, singles, timeout, server)
            finally:
                lam.close()
            live = _live(s3, figures.pop("keys"))
            dead, left = _count(sqs, dlq), _count(sqs, url)
            figures.update(
                server_ms=costs,
                load_before=load_before,
                load_after=round(os.getloadavg()[0], 1),
                archive=size, uploads=uploads, delay_ms=delay_ms, seed_s=round(seed_s, 1),
                batch_size=batch_size,
                lost=uploads - len(live), dead_letter=dead, left_in_queue=left,
                releases_per_s=round(len(live) / figures["burst_s"], 1),
            )  # fmt: skip
            results.append(figures)
    return results


def _request_costs(server: _Endpoint, s3: Any, n: int = 300) -> dict[str, float]:
    """What one request costs the local server: its CPU milliseconds per
    request (a 3 KB PUT, a GET, a GET of an absent key), one client after
    the other."""

    def missing(i: int) -> None:
        try:
            s3.get_object(Bucket=PUBLIC, Key=f"cost/absent-{i}")
        except s3.exceptions.NoSuchKey:
            pass

    body = b"x" * 3000
    calls = {
        "put": lambda i: s3.put_object(Bucket=PUBLIC, Key=f"cost/{i % 20}", Body=body),
        "get": lambda i: s3.get_object(Bucket=PUBLIC, Key=f"cost/{i % 20}")["Body"].read(),
        "get_absent": missing,
    }
    out = {}
    for name, call in calls.items():
        before = server.cpu_s()
        for i in range(n):
            call(i)
        out[name] = round((server.cpu_s() - before) * 1000 / n, 2)
    s3.delete_objects(Bucket=PUBLIC, Delete={"Objects": [{"Key": f"cost/{i}"} for i in range(20)]})
    return out


def _run(
    lam: _Lambda, upload: Any, uploads: int, singles: int, timeout: float, server: _Endpoint
) -> dict[str, Any]:
    # warm both instances (imports, templates, clients), as warm Lambdas are
    warm = set(upload(2 * CONCURRENCY))
    assert lam.wait_for(warm, timeout), "warm-up publishes did not complete"
    single_s, single_cpu_s = [], []
    for _ in range(singles):
        (key,) = upload()
        assert lam.wait_for({key}, timeout), f"{key} was not published"
        report = next(r for r in lam.reports if key in r["keys"])
        single_s.append(report["handler_s"])
        single_cpu_s.append(report["cpu_s"])
    before = len(lam.reports)
    items = [upload.make() for _ in range(uploads)]
    cpu_before = server.cpu_s()
    started = time.time()
    burst = set(upload(items=items))
    uploaded_s = time.time() - started
    upload_cpu_s = server.cpu_s() - cpu_before
    completed = lam.wait_for(burst, timeout)
    reports = lam.reports[before:]
    ended = max((r["ended"] for r in reports), default=time.time())
    sizes = [r["size"] for r in reports]
    return {
        "keys": burst,
        "single_handler_ms_median": statistics.median(single_s) * 1000,
        "single_handler_ms_max": max(single_s) * 1000,
        # its own CPU (the handler's process, threads included): what the
        # machine's load does not change, unlike the wall time
        "single_cpu_ms_median": statistics.median(single_cpu_s) * 1000,
        "upload_s": round(uploaded_s, 2),
        "burst_s": round(max(ended - started, 1e-3), 2),
        "completed": completed,
        # the server's CPU seconds: while the uploads went on, and for the whole burst
        "server_cpu_upload_s": round(upload_cpu_s, 1),
        "server_cpu_burst_s": round(server.cpu_s() - cpu_before, 1),
        "batches": len(reports),
        "batch_size_mean": round(statistics.mean(sizes), 1) if sizes else 0,
        "batch_handler_ms_median": (
            statistics.median(r["handler_s"] for r in reports) * 1000 if reports else 0
        ),
        "messages_failed": sum(r["failed"] for r in reports),
        # the handlers' S3 requests and CPU seconds (their own process, threads included)
        "handler_requests": sum(r["requests"] for r in reports),
        "handler_cpu_s": round(sum(r["cpu_s"] for r in reports), 1),
        "lost_races": sum(r["lost_races"] for r in reports),
        "event_bytes_max": max((r.get("event_bytes", 0) for r in reports), default=0),
    }


TITLE = "## The publish queue: a burst, and one publish, at 10,000 releases"
GOAL_RATE = 50.0  # releases live per second in a burst
GOAL_SINGLE_MS = 1000.0  # handler time of one publish


def section(results: list[dict[str, Any]]) -> str:
    """The performance.md section of ``measure`` runs (one per request delay)."""
    rows, costs = [], []
    for r in results:
        rate_ok = r["releases_per_s"] >= GOAL_RATE and r["lost"] == 0 and r["dead_letter"] == 0
        rows.append(
            f"| {r['delay_ms']:g} ms | {r['archive']:,} | {r['uploads']:,} "
            f"| {r['releases_per_s']:g}/s ({r['burst_s']:g} s; uploads {r['upload_s']:g} s) "
            f"| {r['lost']} | {r['dead_letter']} "
            f"| {r['messages_failed']} "
            f"| {r.get('batch_size', BATCH_SIZE)} "
            f"| {r['batches']} × {r['batch_size_mean']:g} | {r['lost_races']} "
            f"| {r['batch_handler_ms_median']:.0f} ms "
            f"| {r['single_handler_ms_median']:.0f} ms (max {r['single_handler_ms_max']:.0f}; "
            f"CPU {r.get('single_cpu_ms_median', 0):.0f} ms) "
            f"| {'met' if rate_ok else '**missed**'} / "
            f"{'met' if r['single_handler_ms_median'] < GOAL_SINGLE_MS else '**missed**'} |"
        )
        n = r["uploads"]
        costs.append(
            f"| {r['delay_ms']:g} ms, {r.get('batch_size', BATCH_SIZE)} "
            f"| {r['handler_requests'] / n:.1f} "
            f"| {r['handler_cpu_s'] * 1000 / n:.0f} ms "
            f"| {r['server_cpu_upload_s']:g} s | {r['server_cpu_burst_s']:g} s "
            f"({r['server_cpu_burst_s'] * 1000 / n:.0f} ms a release) "
            f"| {r.get('event_bytes_max', 0) / 1e6:.2f} MB "
            f"| {r['server_ms']['put']:g} / {r['server_ms']['get']:g} / "
            f"{r['server_ms']['get_absent']:g} ms "
            f"| {r.get('load_before', '?')} → {r.get('load_after', '?')} |"
        )
    return "\n".join(
        [
            TITLE,
            "",
            "```",
            "python -m bench --only burst   # --burst-archive, --burst-uploads, --burst-delays, "
            "--burst-batches",
            "```",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            f"Goals: at least {GOAL_RATE:g} releases live per second in the burst, none lost, "
            f"none in the dead-letter queue; one publish under {GOAL_SINGLE_MS:g} ms of handler "
            "time (the batching window excluded).",
            "",
            "| request delay | archive | uploads | burst: live per second | lost | in DLQ "
            "| messages failed (delivered again) | batch size (most) | batches × mean size "
            "| lost races | handler per batch (median) | one publish: handler (median; its CPU) "
            "| goals (burst / one) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "What the burst cost (handler requests and CPU per release, both instances; "
            "the local server's CPU while the uploads went on (they, the instances' "
            "receives and their requests) and for the whole burst; its CPU per "
            "request, one client at a time, for a 3 KB PUT, a GET and a GET of an absent key; "
            "the largest SQS event a handler got, against Lambda's 6 MB payload limit; "
            "the machine's 1-minute load average before and after the run):",
            "",
            "| request delay, batch size | handler requests a release | handler CPU a release "
            "| server CPU: while uploading | server CPU: burst | largest event "
            "| server CPU a request (PUT / GET / absent) | load average |",
            "|---|---|---|---|---|---|---|---|",
            *costs,
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
