"""One structured JSON line per processed key, and failures logged with context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from support import PUBLIC, log_docs, make_release, public_tree, publish, sqs_event, upload

from chalicelib.logs import JsonLineFormatter, configure_logging


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture, app_module: Any) -> Iterator[list[dict]]:
    """JSON documents the ``newsroom`` loggers emit (its propagation is off, as
    in Lambda, so caplog's handler is attached to it directly)."""
    log = logging.getLogger("newsroom")
    log.addHandler(caplog.handler)
    out: list[dict] = []
    try:
        yield out
    finally:
        log.removeHandler(caplog.handler)


def _docs(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    return log_docs(caplog.records, event)


def test_one_line_per_processed_key_with_its_figures(
    aws: Any, app_module: Any, records: list, caplog: pytest.LogCaptureFixture
) -> None:
    publish(
        app_module,
        aws,
        "releases/first one.json",
        make_release(slug="first-one"),
        encoded="releases/first+one.json",
    )

    [doc] = _docs(caplog, "release_processed")
    assert doc["source_key"] == "releases/first one.json"
    assert doc["slug"] == "first-one"
    assert doc["outcome"] == "published"
    assert doc["errors"] == []
    assert 0 < doc["duration_ms"] < 60_000
    # the first publish on an empty bucket writes the whole tree and deletes nothing
    tree = public_tree(aws)
    assert doc["objects_written"] == len(tree)
    # every byte PUT to the public bucket (an object rewritten in the run counts twice)
    assert doc["bytes_written"] >= sum(len(b) for b in tree.values())
    # at least: read the source, read index.json, one PUT per object, the receipt
    assert doc["s3_requests"] >= len(tree) + 3


def test_rejected_release_logs_its_errors(
    aws: Any, app_module: Any, records: list, caplog: pytest.LogCaptureFixture
) -> None:
    out = publish(app_module, aws, "releases/bad.json", make_release(kind="opinion"))
    assert out == {"batchItemFailures": []}

    [doc] = _docs(caplog, "release_processed")
    assert doc["outcome"] == "rejected"
    assert doc["slug"] is None
    assert [e["loc"] for e in doc["errors"]] == ["kind"]
    assert doc["bytes_written"] == 0
    assert doc["objects_written"] == 0


def test_infrastructure_failure_is_logged_with_context_and_its_message_comes_back(
    aws: Any, app_module: Any, records: list, caplog: pytest.LogCaptureFixture
) -> None:
    upload(aws, "releases/clinic.json", make_release())
    aws.delete_bucket(Bucket=PUBLIC)  # every public-bucket request now fails

    event = sqs_event("releases/clinic.json")
    out = app_module.sync_release(event, None)
    assert out == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}

    assert _docs(caplog, "release_processed") == []
    [doc] = _docs(caplog, "release_failed")
    assert doc["source_key"] == "releases/clinic.json"
    # the release page is the first public write (the commit point is private state now)
    assert doc["failing_key"] == "releases/clinic/index.html"
    assert doc["error_type"] in ("StorageError", "TransientStorageError")
    assert "NoSuchBucket" in doc["error"] and PUBLIC in doc["error"]
    assert doc["s3_requests"] >= 1
    [record] = [r for r in caplog.records if "release_failed" in r.getMessage()]
    assert record.levelno == logging.ERROR


def test_lines_reach_stdout_as_bare_json(aws: Any, app_module: Any) -> None:
    """What Lambda sends to CloudWatch: the handler's stdout, one JSON object a line."""
    log = logging.getLogger("newsroom")
    assert log.propagate is False  # no second copy through the runtime's root handler
    [handler] = [h for h in log.handlers if type(h) is logging.StreamHandler]
    assert isinstance(handler.formatter, JsonLineFormatter)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        publish(app_module, aws, "releases/clinic.json", make_release())
        logging.getLogger("newsroom.publisher").warning("plain text, not JSON")
    finally:
        handler.setStream(previous)

    lines = buffer.getvalue().splitlines()
    docs = [json.loads(line) for line in lines]  # every line parses on its own
    assert [d.get("event") for d in docs[:-2]] == ["release_processed"]
    assert docs[0]["outcome"] == "published"
    # the batch's metrics, in CloudWatch Embedded Metric Format
    metrics = docs[-2]
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Newsroom"
    assert {m["Name"] for m in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]} >= {
        "Published", "Rejected", "BatchSize", "OldestMessageAge"
    }  # fmt: skip
    assert (metrics["Published"], metrics["Rejected"], metrics["BatchSize"]) == (1, 0, 1)
    assert docs[-1] == {
        "level": "WARNING",
        "logger": "newsroom.publisher",
        "message": "plain text, not JSON",
    }


def test_configure_logging_is_idempotent() -> None:
    stream = io.StringIO()
    name = "newsroom"
    log = logging.getLogger(name)
    saved = (list(log.handlers), log.level, log.propagate)
    try:
        log.handlers = []
        configure_logging(logging.INFO, stream=stream)
        configure_logging(logging.INFO, stream=stream)
        assert len(log.handlers) == 1
        logging.getLogger("newsroom.x").info('{"event": "x"}')
        logging.getLogger("newsroom.x").debug('{"event": "hidden"}')
        assert stream.getvalue() == '{"event": "x"}\n'
    finally:
        log.handlers, log.level, log.propagate = saved


def test_fields_passed_with_extra_become_the_line() -> None:
    """A call site names its event and passes its figures with ``extra=``; the
    formatter writes them as one JSON object, no JSON built by hand."""
    stream = io.StringIO()
    log = logging.getLogger("newsroom")
    saved = (list(log.handlers), log.level, log.propagate)
    try:
        log.handlers = []
        configure_logging(logging.INFO, stream=stream)
        logging.getLogger("newsroom.media").warning(
            "media_processed", extra={"source_key": "media/a b.jpg", "changed": ["media/a b.jpg"]}
        )
        [line] = stream.getvalue().splitlines()
        assert json.loads(line) == {
            "event": "media_processed",
            "source_key": "media/a b.jpg",
            "changed": ["media/a b.jpg"],
            "level": "WARNING",
        }
    finally:
        log.handlers, log.level, log.propagate = saved


def test_media_sync_logs_one_structured_line(
    aws: Any, app_module: Any, records: list, caplog: pytest.LogCaptureFixture
) -> None:
    upload(aws, "media/photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    app_module.sync_release(sqs_event("media/photo.png"), None)

    [doc] = _docs(caplog, "media_processed")
    assert doc["source_key"] == "media/photo.png"
    assert doc["outcome"] == "held"  # media follow releases: no public release uses it yet
    assert doc["errors"] == [] and doc["level"] == "INFO"
    assert doc["duration_ms"] >= 0
