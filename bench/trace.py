"""The critical path of one publish: ``python -m bench.trace [ARCHIVE] [DELAY_MS]``.

Every S3 request of the handler is recorded with botocore event hooks on its
client (``before-parameter-build``: operation and key; ``after-call``: the
end), each delayed by ``DELAY_MS`` before it is sent, as a round trip from a
Lambda. Requests whose times overlap form one *round* (the pool runs the
independent requests of a step at once); the rounds follow one another, so
their number is the publish's critical path in round trips, and the gaps
between them are the handler's own work (parsing, rendering).

``rounds`` is what the tests count too (tests/test_publish_rounds.py):
request counts and rounds do not depend on the machine's load; times do.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

_KEY = "newsroom_trace"


@dataclass
class Request:
    op: str
    key: str
    start: float
    end: float = 0.0
    thread: str = ""


@dataclass
class RequestTrace:
    """Records each request of one boto3 client: operation, key, start, end."""

    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> RequestTrace:
        events = client.meta.events
        events.register("before-parameter-build.s3", self._begin, "newsroom-trace-begin")
        events.register("request-created.s3", self._send, "newsroom-trace-send")
        events.register("after-call.s3", self._end, "newsroom-trace-end")
        events.register("after-call-error.s3", self._end, "newsroom-trace-error")
        return self

    def detach(self, client: Any) -> None:
        events = client.meta.events
        events.unregister("before-parameter-build.s3", unique_id="newsroom-trace-begin")
        events.unregister("request-created.s3", unique_id="newsroom-trace-send")
        events.unregister("after-call.s3", unique_id="newsroom-trace-end")
        events.unregister("after-call-error.s3", unique_id="newsroom-trace-error")

    def _begin(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or params.get("Prefix") or ""
        if model.name == "DeleteObjects":
            objects = params.get("Delete", {}).get("Objects", [])
            key = f"{len(objects)} keys, {objects[0]['Key'] if objects else ''}…"
        elif model.name.startswith("List"):
            key = f"{key}* (listing)"
        req = Request(model.name, key, time.perf_counter(), thread=threading.current_thread().name)
        context[_KEY] = req
        with self._lock:
            self.requests.append(req)

    def _send(self, **_: Any) -> None:
        if self.delay:
            time.sleep(self.delay)

    def _end(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        req = (context or {}).get(_KEY)
        if req is not None:
            req.end = time.perf_counter()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def rounds(self) -> list[list[Request]]:
        """The requests in rounds: each round a maximal run of requests whose
        times overlap (one step of the pool, or one request alone)."""
        out: list[list[Request]] = []
        end = None
        for req in sorted(self.requests, key=lambda r: r.start):
            if end is not None and req.start < end:
                out[-1].append(req)
                end = max(end, req.end)
            else:
                out.append([req])
                end = req.end
        return out


def describe(trace: RequestTrace, started: float, ended: float) -> str:
    """One line per round: when it started (ms after the handler began),
    how long it took, the handler's own time before it, its requests."""
    lines = []
    last = started
    for n, rnd in enumerate(trace.rounds(), 1):
        begin = min(r.start for r in rnd)
        end = max(r.end for r in rnd)
        what = ", ".join(f"{r.op} {r.key}" for r in sorted(rnd, key=lambda r: (r.op, r.key)))
        lines.append(
            f"{n:3d} {1000 * (begin - started):7.1f} ms  +{1000 * (begin - last):6.1f} own"
            f"  {1000 * (end - begin):6.1f} wait  [{len(rnd)}] {what}"
        )
        last = end
    lines.append(f"    {1000 * (ended - started):7.1f} ms  +{1000 * (ended - last):6.1f} own  end")
    return "\n".join(lines)


def trace_publish(
    archive: int = 10000,
    delay_ms: float = 20.0,
    runs: int = 3,
    *,
    server: bool = False,
    fill: int = 0,
) -> str:
    """One new release into the newest month of a seeded archive, through the
    real ``sync_release``, traced; the last of ``runs`` publishes after a
    warm-up. ``server``: against moto's server in a process of its own (as
    ``bench.burst``), else in-process moto. ``fill``: first publish that many
    releases into the same month (batches of 100, no delay), as the burst
    bench's one publish at 20 ms follows the burst at 0 ms."""
    from contextlib import ExitStack

    import boto3

    from . import corpus
    from .publish import SOURCE, environment, seeded_app, sqs_event

    with ExitStack() as stack:
        stack.enter_context(environment())
        if server:
            import os

            from .burst import _client, _Endpoint

            endpoint = stack.enter_context(_Endpoint()).url
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            s3 = _client(endpoint, "s3")
        else:
            from moto import mock_aws

            stack.enter_context(mock_aws())
            s3 = boto3.client("s3", region_name="us-east-1")
        seeded, app, service = seeded_app(s3, archive)
        trace = RequestTrace().attach(service.s3_client())
        rng = random.Random(7)
        n = 0

        def upload() -> str:
            nonlocal n
            n += 1
            doc = corpus.release(archive + n, archive, rng, topics=1)
            doc["slug"] = f"trace-{n:05d}"
            doc["published_at"] = (seeded.newest + timedelta(seconds=n)).isoformat()
            key = f"releases/{doc['slug']}.json"
            s3.put_object(Bucket=SOURCE, Key=key, Body=json.dumps(doc).encode())
            return key

        def batch(keys: list[str]) -> dict[str, Any]:
            records = [sqs_event(k)["Records"][0] for k in keys]
            for i, r in enumerate(records):
                r["messageId"] = f"m{i}"
            return {"Records": records}

        while n < fill:
            keys = [upload() for _ in range(min(100, fill - n))]
            assert app.sync_release(batch(keys), None) == {"batchItemFailures": []}
        out = []
        for run in range(runs + 1):
            key = upload()
            trace.clear()
            trace.delay = delay_ms / 1000 if run else 0.0
            started = time.perf_counter()
            answer = app.sync_release(sqs_event(key), None)
            ended = time.perf_counter()
            assert answer == {"batchItemFailures": []}, answer
            if run:
                out.append(
                    f"publish {run}: {1000 * (ended - started):.0f} ms, "
                    f"{len(trace.requests)} requests in {len(trace.rounds())} rounds"
                )
        out.append(describe(trace, started, ended))
        service.reset()
    return "\n".join(out)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.trace")
    p.add_argument("archive", type=int, nargs="?", default=10000)
    p.add_argument("delay_ms", type=float, nargs="?", default=20.0)
    p.add_argument("--server", action="store_true", help="moto's server in its own process")
    p.add_argument("--fill", type=int, default=0, help="releases first published into the month")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    print(trace_publish(a.archive, a.delay_ms, a.runs, server=a.server, fill=a.fill))
