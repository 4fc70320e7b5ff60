"""``newsroom rebuild``: start a fanned-out rebuild, show its progress, report it.

The command lists nothing and renders nothing itself: it asks the rebuild
service (``chalicelib/rebuild/``, what the ``render_releases`` function runs)
to start, which queues one message per chunk of releases. The deployed
function consumes them; with ``--workers N`` this machine does instead, in N
worker processes that receive from the same queue and call the same service
the Lambda handler calls (``python -m newsroom.rebuild``). Progress comes from
the queue's counts and the steps recorded (chunks, months, topics and kinds);
a step that ends in the dead-letter queue is reported and the command exits
non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import click

from chalicelib.errors import ConfigurationError, StorageError
from chalicelib.rebuild import Progress, RebuildService, SqsQueue

log = logging.getLogger("newsroom.rebuild")

REGION_DEFAULT = "us-east-1"


def create_rebuild_queue(
    sqs: Any, name: str, *, visibility_timeout: int = 60, max_receives: int = 3
) -> str:
    """The rebuild queue and its dead-letter queue, as infra/newsroom.yaml
    declares them (for the demo's local endpoint, the tests and the bench)."""
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(max_receives),
    }
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]


# Workers -----------------------------------------------------------------------------
def lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """One received SQS message as Lambda's event source mapping hands it over."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def work(
    handler: Callable[[dict[str, Any]], Any],
    sqs: Any,
    queue_name: str,
    *,
    stop: Callable[[], bool],
    wait_seconds: int = 0,
    idle_pause: float = 0.1,
) -> int:
    """Receive one message at a time (the function's batch size), hand it to
    ``handler`` as a Lambda event, delete it when the handler returns. A
    failure leaves it on the queue: it is visible again after the visibility
    timeout and goes to the dead-letter queue after the redrive's receives.
    Returns the messages handled. Short polling by default: a long poll holds
    a local endpoint that serves one request at a time (moto's, as the demo
    runs it) for its whole wait."""
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    region = sqs.meta.region_name or REGION_DEFAULT
    handled = 0
    while not stop():
        resp = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )  # fmt: skip
        if not resp.get("Messages") and idle_pause and not wait_seconds:
            time.sleep(idle_pause)
        for message in resp.get("Messages", []):
            try:
                handler({"Records": [lambda_record(message, arn, region)]})
            except Exception as exc:  # noqa: BLE001 - the message comes back
                log.warning("rebuild step failed, left on the queue: %s: %s",
                            type(exc).__name__, exc)  # fmt: skip
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
    return handled


def add_request_delay(client: Any, seconds: float) -> None:
    """Sleep before every request ``client`` sends (a botocore hook): a local
    endpoint answers in well under a millisecond, AWS in about 20 ms."""
    if seconds > 0:
        client.meta.events.register("before-send", lambda **_kw: time.sleep(seconds))


def worker_main() -> None:
    """One local worker process: the rebuild queue -> ``service.rebuilder().handle``,
    until the parent goes away or sends SIGTERM."""
    from chalicelib import service

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parent = os.getppid()
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    delay = float(os.environ.get("NEWSROOM_REQUEST_DELAY_MS", "0") or 0) / 1000
    rebuilder = service.rebuilder()
    sqs = service.aws_client("sqs")
    add_request_delay(service.s3_client(), delay)
    add_request_delay(sqs, delay)
    work(
        rebuilder.handle,
        sqs,
        service.settings().rebuild_queue,
        stop=lambda: stopping or os.getppid() != parent,
    )


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-m", "newsroom.rebuild"], env=env)
        for _ in range(count)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# Without a rebuild queue ----------------------------------------------------------------
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
LOCAL_ATTEMPTS = 3  # as the rebuild queue's redrive: a step is tried three times


def queue_missing(sqs: Any, name: str) -> bool:
    """True when SQS says no queue ``name`` exists (a local endpoint or a stage
    without the rebuild queue); any other answer is left to the queued path."""
    try:
        sqs.get_queue_url(QueueName=name)
    except Exception as exc:  # noqa: BLE001 - only "no such queue" matters here
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        return code in _NO_QUEUE
    return False


class LocalQueue:
    """The rebuild queue inside this process: what the steps queue runs here,
    in order, through the same service the render_releases function runs."""

    def __init__(self) -> None:
        self.bodies: deque[dict[str, Any]] = deque()

    def send(self, bodies: Iterable[dict[str, Any]]) -> None:
        self.bodies.extend(bodies)


def run_here(
    rebuilder: RebuildService,
    queue: LocalQueue,
    total: int,
    *,
    echo: Callable[[str], None],
) -> Exception | None:
    """Run every queued step, each as its SQS message would arrive; the first
    step that fails ``LOCAL_ATTEMPTS`` times stops the rebuild (nothing committed)."""
    rendered = 0
    while queue.bodies:
        body = queue.bodies.popleft()
        event = {"Records": [{"body": json.dumps(body, ensure_ascii=False)}]}
        for attempt in range(1, LOCAL_ATTEMPTS + 1):
            try:
                rebuilder.handle(event)
                break
            except Exception as exc:  # noqa: BLE001 - tried again, then reported
                log.warning("rebuild step failed (attempt %d): %s: %s",
                            attempt, type(exc).__name__, exc)  # fmt: skip
                if attempt == LOCAL_ATTEMPTS:
                    return exc
        if body.get("action") == "render":
            rendered += 1
            echo(f"chunks {rendered}/{total} rendered")
    return None


# Watching a rebuild --------------------------------------------------------------------
class Watch:
    """Polls a rebuild until it is committed, failed or out of time."""

    def __init__(
        self,
        rebuilder: RebuildService,
        queue: SqsQueue,
        rebuild_id: str,
        *,
        echo: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rebuilder = rebuilder
        self.queue = queue
        self.dlq = queue.dead_letter_queue()
        self.rebuild_id = rebuild_id
        self.echo = echo
        self.sleep = sleep
        self.monotonic = monotonic
        self.dead: list[dict[str, Any]] = []

    def run(self, *, timeout: float, interval: float) -> Progress:
        deadline = self.monotonic() + timeout
        last = ""
        while True:
            progress = self.rebuilder.progress(self.rebuild_id)
            if progress.report is not None:
                return progress
            counts = self.queue.counts()
            dead = self._dead()
            total = progress.manifest.chunks if progress.manifest else 0
            line = f"chunks {progress.done}/{total} rendered"
            if progress.months[1]:
                line += f", months {progress.months[0]}/{progress.months[1]}"
            if progress.groups[1]:
                line += f", topics/kinds/prunes {progress.groups[0]}/{progress.groups[1]}"
            line += (
                f"; queue: {counts['waiting']} waiting, "
                f"{counts['in_flight']} in flight; dead-letter: {len(dead)}"
            )
            if line != last:
                self.echo(line)
                last = line
            if dead:
                self.dead = dead
                return progress
            if self.monotonic() >= deadline:
                return progress
            self.sleep(interval)

    def _dead(self) -> list[dict[str, Any]]:
        """This rebuild's messages in the dead-letter queue."""
        if self.dlq is None or not any(self.dlq.counts().values()):
            return []
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(3):  # SQS returns a sample; a few looks find them all here
            for body in self.dlq.peek(10):
                if isinstance(body, dict) and body.get("rebuild") == self.rebuild_id:
                    seen[json.dumps(body, sort_keys=True)] = body
        return list(seen.values())


# The command -----------------------------------------------------------------------------
@click.command()
@click.option("--source-bucket", default=None, help="Default: NEWSROOM_SOURCE_BUCKET.")
@click.option("--public-bucket", default=None, help="Default: NEWSROOM_PUBLIC_BUCKET.")
@click.option("--site-url", default=None, help="Absolute base URL (default: NEWSROOM_SITE_URL).")
@click.option("--queue", "queue_name", default=None,
              help="The rebuild queue (default: NEWSROOM_REBUILD_QUEUE).")  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(0, 64), default=0, show_default=True,
    help="Local worker processes to consume the queue; 0 = the deployed render_releases "
    "function does.",
)  # fmt: skip
@click.option("--chunk-size", type=click.IntRange(1, 5000), default=None,
              help="Releases per message (default: NEWSROOM_REBUILD_CHUNK_SIZE, 200).")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(1), default=3600, show_default=True,
              help="Seconds to wait for the rebuild to finish.")  # fmt: skip
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True,
              help="Seconds between progress lines.")  # fmt: skip
@click.option(
    "--full", is_flag=True,
    help="Render every release again, even those whose source and theme are unchanged "
    "(to repair objects changed by hand in the bucket).",
)  # fmt: skip
@click.option("--request-delay-ms", type=click.FloatRange(0), default=0, hidden=True,
              help="Workers sleep this long before each AWS request (models AWS latency).")  # fmt: skip
def rebuild(
    source_bucket: str | None,
    public_bucket: str | None,
    site_url: str | None,
    queue_name: str | None,
    workers: int,
    chunk_size: int | None,
    timeout: float,
    interval: float,
    full: bool,
    request_delay_ms: float,
) -> None:
    """Re-render the whole public bucket from the source bucket (after a template
    or settings change), fanned out over the rebuild queue: releases in chunks,
    then the listing pages month by month and topic by topic. Writes only objects
    whose bytes changed, commits the private state once, then sends one CloudFront
    invalidation (when NEWSROOM_DISTRIBUTION_ID is set). Safe while uploads are
    being processed. Where no rebuild queue exists (a local endpoint), the same
    steps run one after another in this process.

    Exit status: 0 done; 1 done, but some source files were rejected; 2 a chunk
    failed (it is in the dead-letter queue) or the rebuild did not finish in time:
    nothing was committed, run the command again.
    """
    from chalicelib import service
    from chalicelib.settings import Settings

    settings = Settings.from_env().with_site_url(site_url)
    settings = replace(
        settings,
        source_bucket=source_bucket or settings.source_bucket,
        public_bucket=public_bucket or settings.public_bucket,
        rebuild_queue=queue_name or settings.rebuild_queue,
    )
    try:
        settings.require_buckets()
    except ConfigurationError as exc:
        raise click.UsageError(f"{exc} (or pass --source-bucket / --public-bucket)") from None
    rebuilder = service.rebuild_service(settings)
    sqs = service.aws_client("sqs")
    if queue_missing(sqs, settings.rebuild_queue):
        sys.exit(_rebuild_here(rebuilder, settings, chunk_size, full))
    queue = SqsQueue(sqs, settings.rebuild_queue)
    env = dict(os.environ)
    env.update(
        NEWSROOM_SOURCE_BUCKET=settings.source_bucket,
        NEWSROOM_PUBLIC_BUCKET=settings.public_bucket,
        NEWSROOM_SITE_URL=settings.site_url,
        NEWSROOM_REBUILD_QUEUE=settings.rebuild_queue,
        NEWSROOM_REQUEST_DELAY_MS=str(request_delay_ms),
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        manifest = rebuilder.start(chunk_size, full=full)
        click.echo(
            f"rebuild {manifest.rebuild_id}: {manifest.releases} releases, "
            f"{manifest.chunks} chunks to render on {settings.rebuild_queue}"
            + (f", {workers} local workers" if workers else "")
        )
        procs = start_workers(workers, env) if workers else []
        watch = Watch(rebuilder, queue, manifest.rebuild_id, echo=click.echo)
        progress = watch.run(timeout=timeout, interval=interval)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        stop_workers(procs)
    sys.exit(_report(progress, watch.dead, settings.distribution_id, manifest.rebuild_id))


def _rebuild_here(
    rebuilder: RebuildService, settings: Any, chunk_size: int | None, full: bool
) -> int:
    """``newsroom rebuild`` where no rebuild queue exists: the same steps, here."""
    queue = LocalQueue()
    here = RebuildService(
        rebuilder.source, rebuilder.public, rebuilder.renderer, queue,
        invalidator=rebuilder.invalidator, chunk_size=rebuilder.chunk_size,
    )  # fmt: skip
    try:
        manifest = here.start(chunk_size, full=full)
        click.echo(
            f"rebuild {manifest.rebuild_id}: {manifest.releases} releases, "
            f"{manifest.chunks} chunks to render in this process (no queue "
            f"{settings.rebuild_queue})"
        )
        failure = run_here(here, queue, manifest.chunks, echo=click.echo)
        progress = here.progress(manifest.rebuild_id)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    if failure is not None:
        click.echo(
            f"rebuild {manifest.rebuild_id} failed: {type(failure).__name__}: {failure}; "
            "nothing was committed; fix the cause and run `newsroom rebuild` again",
            err=True,
        )
        return 2
    return _report(progress, [], settings.distribution_id, manifest.rebuild_id)


def _report(
    progress: Progress, dead: list[dict[str, Any]], distribution_id: str, rebuild_id: str
) -> int:
    report = progress.report
    if report is None:
        if dead:
            for body in sorted(dead, key=lambda b: b.get("chunk", -1)):
                if body.get("action") == "render":
                    keys = body.get("keys") or []
                    n = int(body.get("chunk", -1))
                    reason = progress.failures.get(n, "see the render_releases logs")
                    span = f"{keys[0]} … {keys[-1]}" if keys else "no keys"
                    click.echo(
                        f"chunk {n} ({len(keys)} releases: {span}) failed and is in the "
                        f"dead-letter queue: {reason}",
                        err=True,
                    )
                else:
                    which = f" of {body['month']}" if isinstance(body.get("month"), str) else ""
                    click.echo(
                        f"the {body.get('action')} step{which} failed and is in the "
                        "dead-letter queue",
                        err=True,
                    )
            click.echo(
                f"rebuild {rebuild_id} failed: nothing was committed; fix the cause and run "
                "`newsroom rebuild` again",
                err=True,
            )
        else:
            done = progress.done
            total = progress.manifest.chunks if progress.manifest else 0
            click.echo(
                f"rebuild {rebuild_id} did not finish in time ({done}/{total} chunks rendered); "
                "is render_releases deployed, or pass --workers N to render here",
                err=True,
            )
        return 2
    click.echo(
        f"{report.releases} releases: {report.written} written, {report.unchanged} unchanged, "
        f"{len(report.deleted)} removed"
        + (f" ({report.attempts} commit attempts: uploads were processed meanwhile)"
           if report.attempts > 1 else "")
    )  # fmt: skip
    for s in report.scheduled:
        click.echo(f"{s['source_key']}: scheduled: embargoed until {s['until']}")
    for key in report.kept:
        click.echo(
            f"{key}: kept as published: its source is invalid or under embargo now, so "
            "the live version stays (not re-rendered)"
        )
    if report.invalidated:
        click.echo(f"CloudFront {distribution_id}: invalidated {report.invalidated} paths")
    for p in report.problems:
        click.echo(f"{p['source']}: {p['loc']}: {p['msg']}", err=True)
    if report.problems:
        click.echo(
            f"{len({p['source'] for p in report.problems})} source file(s) rejected", err=True
        )
        return 1
    return 0


if __name__ == "__main__":
    worker_main()
