"""Test helpers: builders, S3 event records, bucket reads, one ``publish()``
and the storage wrappers that inject faults or interleavings. Fixtures live in
``conftest.py``; tests import these helpers from here."""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.render import Renderer
from chalicelib.errors import TransientStorageError
from chalicelib.keys import receipt_key
from chalicelib.logs import JsonLineFormatter
from chalicelib.publisher import Publisher
from chalicelib.settings import Settings
from chalicelib.storage import Counters, ObjectInfo, S3Storage, Storage, StoredObject

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"
SAMPLES = ROOT / "samples" / "releases"
SOURCE = "newsroom-source"
PUBLIC = "newsroom-public"
SITE_URL = "https://news.example.org"

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NEWSROOM_SOURCE_BUCKET": SOURCE,
    "NEWSROOM_PUBLIC_BUCKET": PUBLIC,
    "NEWSROOM_SITE_URL": SITE_URL,
    "NEWSROOM_SITE_TITLE": "Test Newsroom",
}


def make_release(**overrides: Any) -> dict[str, Any]:
    """A valid release document; ``None`` values remove a field."""
    doc: dict[str, Any] = {
        "title": "Coastal clinics reopen after the storm",
        "kind": "press-release",
        "published_at": "2018-12-19T10:00:00-05:00",
        "summary": "Three clinics reopen in Bayline.",
        "body": "## What happened\n\nThe clinics **reopened** today.\n\n- one\n- two\n",
        "image": {
            "url": "/media/clinic.jpg",
            "alt": "Nurses outside a clinic",
            "caption": "The Bayline clinic on its first day back.",
            "credit": "Mara Quint/Harbor Light Alliance",
        },
        "topics": ["Clean Water", "Côte d'Ivoire"],
        "contacts": [
            {"name": "Ada Ode", "email": "press@harborlight.example", "phone": "+1 555 0100"}
        ],
    }
    for key, value in overrides.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


@functools.lru_cache(maxsize=4)
def _renderer(settings: Settings) -> Renderer:
    return Renderer(settings)


def renderer() -> Renderer:
    """One renderer per settings: templates compile once per test session."""
    return _renderer(Settings.from_env())


def make_publisher(
    s3: Any,
    now: datetime | Callable[[], datetime] | None = None,
    *,
    wrap: Callable[[Storage], Storage] = lambda storage: storage,
    **options: Any,
) -> Publisher:
    """A Publisher over the test buckets (each through ``wrap``: a fault or an
    interleaving), the test renderer (or ``renderer=``), a fixed clock (``now``) and
    no backoff sleeps; other ``options`` as Publisher takes them."""
    if isinstance(now, datetime):
        options["clock"] = lambda: now
    elif now is not None:
        options["clock"] = now
    options.setdefault("sleep", lambda _s: None)
    r = options.pop("renderer", None) or renderer()
    return Publisher(wrap(S3Storage(s3, SOURCE)), wrap(S3Storage(s3, PUBLIC)), r, **options)


def public_samples(now: datetime) -> list[Path]:
    """The sample release files that are public at ``now`` (a scheduled sample is not)."""
    from chalicelib.core.model import parse_release

    return [
        p
        for p in sorted(SAMPLES.glob("*.json"))
        if not parse_release(p.read_bytes(), name=f"releases/{p.name}").is_scheduled(now)
    ]


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def s3_event(key_encoded: str, event_name: str = "ObjectCreated:Put", bucket: str = SOURCE) -> dict:
    """A real S3 notification record (from tests/events) with ``key_encoded``
    placed as S3 sends it: URL-encoded."""
    template = "s3_delete.json" if event_name.startswith("ObjectRemoved") else "s3_put.json"
    event = copy.deepcopy(json.loads((EVENTS / template).read_text()))
    record = event["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = key_encoded
    return event


_SQS_RECORD = json.loads((EVENTS / "sqs_put_encoded_key.json").read_text())["Records"][0]


def queue_event(*notifications: dict) -> dict:
    """An SQS event as Lambda delivers it from the publish queue: one message
    per S3 notification (each body the notification's JSON text)."""
    records = []
    for n, notification in enumerate(notifications):
        record = copy.deepcopy(_SQS_RECORD)
        record["messageId"] = f"{record['messageId'][:-6]}{n:06d}"
        record["body"] = json.dumps(notification)
        records.append(record)
    return {"Records": records}


def sqs_event(
    key_encoded: str, event_name: str = "ObjectCreated:Put", bucket: str = SOURCE
) -> dict:
    """The publish queue's delivery of one S3 notification for ``key_encoded``."""
    return queue_event(s3_event(key_encoded, event_name, bucket))


class Published(NamedTuple):
    tree: dict[str, bytes]
    types: dict[str, str]


def publish_once(sources: dict[str, dict], extra_env: dict[str, str]) -> Published:
    """Publish ``sources`` through the real handler on a private moto, once per
    module, and keep what readers get (bytes and Content-Type) after it stops."""
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in list(os.environ):
            if name.startswith(("NEWSROOM_", "AWS_ENDPOINT_URL")):
                mp.delenv(name)
        for name, value in {**BASE_ENV, **extra_env}.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        import app

        for key, doc in sources.items():
            publish(app, s3, key, doc)
        tree = public_tree(s3)
        types = {k: s3.head_object(Bucket=PUBLIC, Key=k)["ContentType"] for k in tree}
    return Published(tree, types)


def cloudfront_distribution(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A CloudFront distribution (moto) in front of the public bucket, set as
    NEWSROOM_DISTRIBUTION_ID; the client and its id."""
    cf = boto3.client("cloudfront", region_name="us-east-1")
    dist = cf.create_distribution(
        DistributionConfig={
            "CallerReference": "newsroom-test",
            "Comment": "newsroom",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "public",
                        "DomainName": f"{PUBLIC}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "public",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    dist_id = dist["Distribution"]["Id"]
    monkeypatch.setenv("NEWSROOM_DISTRIBUTION_ID", dist_id)
    return cf, dist_id


def public_tree(s3: Any, bucket: str = PUBLIC) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


def empty_buckets(s3: Any) -> None:
    """Both buckets emptied (a property test's next example starts from nothing)."""
    for bucket in (SOURCE, PUBLIC):
        for key in list(public_tree(s3, bucket)):
            s3.delete_object(Bucket=bucket, Key=key)


def receipt(s3: Any, source_key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=SOURCE, Key=receipt_key(source_key))["Body"].read()
    return json.loads(body)


def upload(s3: Any, key: str, doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else dumps(doc)
    s3.put_object(Bucket=SOURCE, Key=key, Body=body)


def publish(app_module: Any, s3: Any, key: str, doc: Any, encoded: str | None = None) -> Any:
    """Upload ``doc`` (a dict or bytes) as ``key`` and run ``sync_release`` on the
    publish queue's delivery of the notification S3 sends for it (``encoded``:
    the key as it appears URL-encoded in the event, when it differs); the
    handler's result."""
    upload(s3, key, doc)
    return app_module.sync_release(sqs_event(encoded or key), None)


def log_docs(records: Iterable[logging.LogRecord], event: str | None = None) -> list[dict]:
    """The JSON documents ``newsroom`` log records become on stdout (fields
    passed with ``extra=`` included), optionally only those of ``event``."""
    formatter = JsonLineFormatter()
    docs = [json.loads(formatter.format(r)) for r in records if r.name.startswith("newsroom")]
    return [d for d in docs if event is None or d.get("event") == event]


def log_text(records: Iterable[logging.LogRecord]) -> str:
    """Every log record as the line it becomes on stdout (``extra=`` fields
    included), one per line: what a privacy check must search."""
    formatter = JsonLineFormatter()
    return "\n".join(formatter.format(r) for r in records)


@contextmanager
def serving_demo(
    samples: Path, *, watch: bool = False, **options: Any
) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """``newsroom demo``'s stack on a free port, its samples published and its
    site served (and its inbox watched, with ``watch``), output kept in
    ``demo.out`` and ``demo.err`` instead of printed; the demo and the
    samples' receipts. Stopped on exit."""
    from newsroom.demo import Demo

    demo = Demo(samples=samples, port=0, out=io.StringIO(), err=io.StringIO(), **options)
    try:
        demo.start()
        receipts = demo.publish_samples()
        demo.serve()
        if watch:
            demo.watch()
        yield demo, receipts
    finally:
        demo.stop()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's threaded server on a free port, one request at a time (S3's
    per-request atomicity), as the demo runs it; its endpoint URL."""
    from newsroom.endpoint import atomic_moto_server_class

    server = atomic_moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# Storage wrappers --------------------------------------------------------------------
# Test doubles of the infrastructure (S3 failing a request, a parallel Lambda
# acting at a chosen instant), never of our own code.


class StorageWrapper:
    """The Storage port over ``inner``, forwarding every verb. Subclasses
    override ``_write`` (put, delete) or ``_read`` (get, head) to inject a
    fault or run something at a chosen request."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    @property
    def counters(self) -> Counters:
        return self.inner.counters

    def _read(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        return do()

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        return do()

    def get(self, key: str, **kwargs: Any) -> StoredObject | None:
        return self._read("get", key, lambda: self.inner.get(key, **kwargs))

    def head(self, key: str) -> ObjectInfo | None:
        return self._read("head", key, lambda: self.inner.head(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    def put(self, key: str, body: bytes, **kwargs: Any) -> str:
        return self._write("put", key, lambda: self.inner.put(key, body, **kwargs))

    def delete(self, key: str, **kwargs: Any) -> None:
        self._write("delete", key, lambda: self.inner.delete(key, **kwargs))

    def delete_many(self, keys: list[str]) -> None:
        # one by one, so a fault or an interleaving can pick any key of them
        for key in keys:
            self.delete(key)

    def __getattr__(self, name: str) -> Any:  # the adapter's extras: presign, list_etags
        return getattr(self.inner, name)


@dataclass
class Fault:
    """A write counter (shared by the wrappers of one run); the ``fail_at``-th
    write raises ``TransientStorageError``, before S3 applies it or (``after``)
    once it has: a Lambda that dies, or loses the answer, between two requests."""

    fail_at: int | None = None
    after: bool = False
    writes: int = 0
    failed: bool = False
    keys: list[str] = field(default_factory=list)  # what was written, in order

    def around(self, key: str, do: Callable[[], Any]) -> Any:
        self.writes += 1
        self.keys.append(key)
        if self.writes != self.fail_at:
            return do()
        self.failed = True
        if self.after:
            do()
        raise TransientStorageError(f"injected fault on write {self.writes} ({key})", key)


class FlakyStorage(StorageWrapper):
    """Storage whose writes count against ``fault`` (or a fault of its own,
    ``fail_at`` / ``after``)."""

    def __init__(
        self,
        inner: Storage,
        fault: Fault | None = None,
        *,
        fail_at: int | None = None,
        after: bool = False,
    ) -> None:
        super().__init__(inner)
        self.fault = fault if fault is not None else Fault(fail_at, after)

    @property
    def failed(self) -> bool:
        return self.fault.failed

    @property
    def writes(self) -> int:
        return self.fault.writes

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        return self.fault.around(key, do)


class Interleave(StorageWrapper):
    """The first time ``when(op, key)`` holds for a write, run ``then()`` before it."""

    def __init__(
        self, inner: Storage, when: Callable[[str, str], bool], then: Callable[[], Any]
    ) -> None:
        super().__init__(inner)
        self.when, self.then = when, then
        self.fired = False

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if not self.fired and self.when(op, key):
            self.fired = True
            self.then()
        return do()
