"""The local AWS endpoint (moto's server as the demo, the tests and the benches
run it): two of moto's costs AWS does not have are gone, its answers unchanged."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from support import moto_server


@pytest.fixture
def endpoint() -> Any:
    with moto_server() as url:
        yield url


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_request_does_not_list_motos_package(endpoint: str, monkeypatch: Any) -> None:
    s3 = _client("s3", endpoint)
    s3.create_bucket(Bucket="local-aws")
    listings: list[str] = []
    listdir = os.listdir

    def counting(path: Any = ".") -> list[str]:
        listings.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counting)
    for i in range(5):
        s3.put_object(Bucket="local-aws", Key=f"k{i}", Body=b"x")
        assert s3.get_object(Bucket="local-aws", Key=f"k{i}")["Body"].read() == b"x"
    assert listings == []


def test_a_message_past_the_retention_period_is_not_handed_out(endpoint: str) -> None:
    from moto.sqs.models import sqs_backends

    sqs = _client("sqs", endpoint)
    urls = {
        name: sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        for name in ("local-old", "local-fresh")
    }
    sqs.send_message(QueueUrl=urls["local-old"], MessageBody="old")
    sqs.send_message(QueueUrl=urls["local-fresh"], MessageBody="fresh")
    old = next(
        q
        for backend in sqs_backends.values()
        for regional in backend.values()
        for name, q in regional.queues.items()
        if name == "local-old"
    )
    old._messages[0].sent_timestamp -= 61_000  # sent 61 s ago: past its retention

    def bodies(name: str) -> list[str]:
        got = sqs.receive_message(QueueUrl=urls[name], MaxNumberOfMessages=10)
        return [m["Body"] for m in got.get("Messages", [])]

    assert bodies("local-old") == []
    assert bodies("local-fresh") == ["fresh"]
