"""Shared fixtures: moto-backed buckets, the Lambda handlers, release builders."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.render import Renderer
from chalicelib.settings import Settings
from newsroom.demo import atomic_moto_requests

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


def sqs_event(key_encoded: str, event_name: str = "ObjectCreated:Put", bucket: str = SOURCE) -> dict:
    """The publish queue's delivery of one S3 notification for ``key_encoded``."""
    return queue_event(s3_event(key_encoded, event_name, bucket))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("NEWSROOM_") or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(BASE_ENV)


@pytest.fixture
def aws(env: dict[str, str]) -> Iterator[Any]:
    """moto S3 with the two buckets; each moto request made atomic (as real S3 is)."""
    with atomic_moto_requests(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        yield s3


@pytest.fixture
def app_module(aws: Any) -> Any:
    import app

    return app


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
            upload(s3, key, doc)
            app.sync_release(sqs_event(key), None)
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


def receipt(s3: Any, source_key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=SOURCE, Key=f"receipts/{source_key}")["Body"].read()
    return json.loads(body)


def upload(s3: Any, key: str, doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else dumps(doc)
    s3.put_object(Bucket=SOURCE, Key=key, Body=body)


@pytest.fixture
def alerts(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """aws plus the alert resources (table, queue, verified sender) and settings;
    the alert queue's URL."""
    from alerts_support import ALERT_ENV, create_alert_resources

    for name, value in ALERT_ENV.items():
        monkeypatch.setenv(name, value)
    return create_alert_resources()


@pytest.fixture
def outbox() -> Iterator[Any]:
    """Every SES SendEmail request the handlers make, as sent (moto keeps only
    the HTML part and no headers)."""
    from alerts_support import Outbox

    from chalicelib import service

    box = Outbox()
    client = service.aws_client("sesv2")
    hooks = [
        ("before-parameter-build.sesv2.SendEmail", box.note),
        ("after-call.sesv2.SendEmail", box.record),
    ]
    for event, handler in hooks:
        client.meta.events.register(event, handler, unique_id=f"test-outbox-{event}")
    try:
        yield box
    finally:
        for event, _ in hooks:
            client.meta.events.unregister(event, unique_id=f"test-outbox-{event}")
