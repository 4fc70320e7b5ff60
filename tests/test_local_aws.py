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


def test_connections_send_without_waiting_for_acks() -> None:
    """werkzeug writes a response's head and body in two sends; with Nagle's
    algorithm the body waited for the client's delayed ACK of the head (up to
    40 ms a response, a stall S3 does not have)."""
    import socket

    from newsroom.demo import atomic_moto_server_class

    server = atomic_moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    seen: list[int] = []
    handler = server._server.RequestHandlerClass
    setup = handler.setup

    def recording(self: Any) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    handler.setup = recording
    try:
        host, port = server.get_host_and_port()
        with socket.create_connection((host, port)) as conn:
            conn.sendall(b"GET /moto-api/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            conn.recv(100)
    finally:
        handler.setup = setup
        server.stop()
    assert seen and all(seen)
