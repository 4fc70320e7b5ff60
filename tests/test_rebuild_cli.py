"""``newsroom rebuild --workers N`` on moto's server: real worker processes
receive from the rebuild queue and run the service the Lambda handler runs; a
worker killed in the middle of a chunk loses nothing; a step that keeps
failing ends in the dead-letter queue and the command exits non-zero."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from support import PUBLIC, SOURCE, dumps, make_release, moto_server, public_tree

from chalicelib.core.render import Renderer
from chalicelib.keys import rebuild_key
from chalicelib.rebuild import SqsQueue
from chalicelib.settings import Settings
from newsroom.build import build_site
from newsroom.cli import main
from newsroom.rebuild import create_rebuild_queue, start_workers, stop_workers


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def local(endpoint: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Fresh buckets and a fresh rebuild queue (3 s visibility, 3 receives) on the server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    queue = f"rebuild-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NEWSROOM_REBUILD_QUEUE", queue)
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    for bucket in (SOURCE, PUBLIC):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for key in public_tree(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
    create_rebuild_queue(sqs, queue, visibility_timeout=3, max_receives=3)
    return {"s3": s3, "sqs": sqs, "queue": queue}


def seed(s3: Any, count: int) -> None:
    for i in range(count):
        doc = make_release(
            title=f"Release {i}", topics=[["Harbour"], ["Schools"], []][i % 3],
            published_at=f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}T10:00:00+00:00",
        )  # fmt: skip
        s3.put_object(Bucket=SOURCE, Key=f"releases/r{i:03d}.json", Body=dumps(doc))


def full_build(s3: Any) -> dict[str, bytes]:
    sources = sorted((k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/"))
    return build_site(sources, Renderer(Settings.from_env()), now=datetime.now(UTC)).files


def test_worker_processes_render_and_commit_the_whole_site(local: dict[str, Any]) -> None:
    s3 = local["s3"]
    seed(s3, 10)  # a chunk for each worker
    result = CliRunner().invoke(
        main, ["rebuild", "--workers", "2", "--chunk-size", "5", "--interval", "0.2",
               "--timeout", "300"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "10 releases, 2 chunks to render" in result.stdout
    assert "chunks 2/2 rendered" in result.stdout or "10 releases: " in result.stdout
    assert "10 releases: " in result.stdout and " 0 removed" in result.stdout
    assert public_tree(s3) == full_build(s3)


def test_without_a_rebuild_queue_the_command_renders_in_its_own_process(
    local: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # only the two buckets, as a local endpoint or a first try holds them
    monkeypatch.setenv("NEWSROOM_REBUILD_QUEUE", f"absent-{uuid.uuid4().hex[:8]}")
    s3 = local["s3"]
    seed(s3, 7)
    result = CliRunner().invoke(main, ["rebuild", "--chunk-size", "3", "--interval", "0.2"])
    assert result.exit_code == 0, result.output
    assert "in this process" in result.stdout
    assert "chunks 3/3 rendered" in result.stdout
    assert "7 releases: " in result.stdout
    assert public_tree(s3) == full_build(s3)


def test_a_worker_killed_mid_chunk_loses_nothing(local: dict[str, Any]) -> None:
    """The first worker is slow (50 ms before each AWS request) and is killed
    with SIGKILL while it holds a chunk; its message becomes visible again
    after the visibility timeout and a second worker finishes everything."""
    from chalicelib import service

    s3, sqs = local["s3"], local["sqs"]
    seed(s3, 12)
    rebuilder = service.rebuild_service(Settings.from_env())
    manifest = rebuilder.start(4)
    queue = SqsQueue(sqs, local["queue"])
    env = {**os.environ, "NEWSROOM_REQUEST_DELAY_MS": "50"}
    [slow] = start_workers(1, env)
    try:
        deadline = time.monotonic() + 60
        while queue.counts()["in_flight"] == 0:  # it received a chunk
            assert time.monotonic() < deadline, "the worker never took a message"
            time.sleep(0.05)
        # mid-chunk: its first page is up, and its other releases (a few
        # requests each, 50 ms apart) and the chunk's record are still to come
        while not s3.list_objects_v2(Bucket=PUBLIC, Prefix="releases/").get("KeyCount"):
            assert time.monotonic() < deadline, "the worker never wrote a page"
            time.sleep(0.02)
        done_before = rebuilder.progress(manifest.rebuild_id).done
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
    finally:
        stop_workers([slow])
    assert done_before == 0, "killed before it recorded its chunk"
    [other] = start_workers(1, dict(os.environ))
    try:
        report_key = rebuild_key(manifest.rebuild_id, "report.json")
        deadline = time.monotonic() + 120
        while rebuilder.source.head(report_key) is None:
            assert time.monotonic() < deadline, rebuilder.progress(manifest.rebuild_id)
            time.sleep(0.2)
    finally:
        stop_workers([other])
    assert public_tree(s3) == full_build(s3)
    dlq = queue.dead_letter_queue()
    assert dlq is not None and dlq.counts() == {"waiting": 0, "in_flight": 0, "delayed": 0}


def test_a_step_that_keeps_failing_is_dead_lettered_and_reported(local: dict[str, Any]) -> None:
    s3 = local["s3"]
    seed(s3, 6)
    result = CliRunner().invoke(
        main, ["rebuild", "--workers", "1", "--chunk-size", "3", "--interval", "0.3",
               "--timeout", "120", "--public-bucket", "no-such-bucket"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "dead-letter queue" in result.stderr
    assert ("releases/r000.json … releases/r002.json" in result.stderr
            or "releases/r003.json … releases/r005.json" in result.stderr)
    assert "NoSuchBucket" in result.stderr or "no-such-bucket" in result.stderr
    assert "nothing was committed" in result.stderr
    assert not any(k.endswith("report.json") for k in public_tree(s3, SOURCE))
