"""Helpers for the webhook route tests: recorded payloads, signing, bucket reads.

The signing helpers build each CMS's string-to-sign by hand from its published
description, independently of ``chalicelib.hooks.verify``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from chalice.test import Client
from support import SOURCE

PAYLOADS = Path(__file__).resolve().parent / "cms_payloads"


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def payload_obj(name: str) -> Any:
    return json.loads(payload(name))


def client(app_module: Any, tmp_path: Path) -> Client:
    # a project dir without .chalice/config.json: the test client then keeps the
    # environment the test set (the dev stage would point at its real buckets)
    return Client(app_module.app, project_dir=str(tmp_path))


def hook_client(app_module: Any, tmp_path: Path, monkeypatch: Any, **secrets: str) -> Client:
    """The test client with the routes' secret settings set (``NEWSROOM_SANITY_SECRET=…``)."""
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    return client(app_module, tmp_path)


def post_hook(api: Client, cms: str, body: bytes, headers: dict[str, str]) -> Any:
    return api.http.post(f"/hooks/{cms}", headers=headers, body=body)


ORDER_PREFIX = "cms/_order/"


def source_tree(s3: Any, *, orders: bool = False) -> dict[str, bytes]:
    """The source bucket's objects; the order-and-replay records
    (``cms/_order/``) only with ``orders=True``."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SOURCE):
        for item in page.get("Contents", []):
            if item["Key"].startswith(ORDER_PREFIX) and not orders:
                continue
            out[item["Key"]] = s3.get_object(Bucket=SOURCE, Key=item["Key"])["Body"].read()
    return out


def stored_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=SOURCE, Key=key)["Body"].read())


def body_json(response: Any) -> Any:
    return json.loads(response.body)


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def generic_headers(body: bytes, secret: str, t: int | None = None) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    sig = hmac_sha256(secret, f"{t}.".encode() + body).hex()
    return {"Content-Type": "application/json", "X-Newsroom-Signature": f"t={t},v1={sig}"}


def contentful_headers(
    body: bytes,
    secret: str,
    *,
    path: str = "/hooks/contentful",
    topic: str = "ContentManagement.Entry.publish",
    ts_ms: int | None = None,
    signed_topic: bool = True,
) -> dict[str, str]:
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    signed = "x-contentful-signed-headers,x-contentful-timestamp"
    pairs = f"x-contentful-signed-headers:{signed};x-contentful-timestamp:{ts}"
    if signed_topic:
        signed += ",x-contentful-topic"
        pairs = (
            f"x-contentful-signed-headers:{signed};x-contentful-timestamp:{ts};"
            f"x-contentful-topic:{topic}"
        )
    canonical = ("POST\n" + path + "\n" + pairs + "\n").encode() + body
    return {
        "Content-Type": "application/vnd.contentful.management.v1+json",
        "X-Contentful-Topic": topic,
        "X-Contentful-Webhook-Name": "Newsroom",
        "X-Contentful-Signed-Headers": signed,
        "X-Contentful-Timestamp": str(ts),
        "X-Contentful-Signature": hmac_sha256(secret, canonical).hex(),
    }


def sanity_headers(
    body: bytes, secret: str, *, operation: str = "create", ts_ms: int | None = None
) -> dict[str, str]:
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    digest = hmac_sha256(secret, f"{ts}.".encode() + body)
    sig = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return {
        "Content-Type": "application/json",
        "sanity-webhook-signature": f"t={ts},v1={sig}",
        "sanity-operation": operation,
        "sanity-project-id": "abc123xy",
        "sanity-dataset": "production",
        "sanity-document-id": "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "idempotency-key": "msg_2Ks4yYPHqZ",
    }


def strapi_headers(token: str, event: str = "entry.publish") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "X-Strapi-Event": event,
    }


def oversized(body: bytes) -> bytes:
    """A syntactically valid JSON body just over 1 MiB."""
    doc = json.loads(body)
    doc["padding"] = "x" * (1024 * 1024)
    return json.dumps(doc).encode()
