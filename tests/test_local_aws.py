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

    from newsroom.endpoint import atomic_moto_server_class

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


# Connections are kept open, as S3 keeps them -----------------------------------------
@pytest.fixture
def address() -> Any:
    with moto_server() as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _responses(conn: Any, count: int) -> list[bytes]:
    """``count`` whole responses read from a raw socket (each with a length)."""
    data, out = b"", []
    while len(out) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1")
            length = next(
                (int(line.split(":", 1)[1]) for line in head.split("\r\n")
                 if line.lower().startswith("content-length:")),
                0,
            )  # fmt: skip
            end = head_end + 4 + length
            if len(data) >= end:
                out.append(data[:end])
                data = data[end:]
                continue
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after {len(out)} of {count} responses"
        data += chunk
    return out


def test_one_connection_carries_every_kind_of_request(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """werkzeug's server closed the connection after every response: each S3
    call cost a new connection and a new server thread, which AWS does not."""
    import logging

    s3 = _client("s3", endpoint)
    s3.create_bucket(Bucket="local-keepalive")
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    s3.put_object(Bucket="local-keepalive", Key="a.txt", Body=b"first body")
    got = s3.get_object(Bucket="local-keepalive", Key="a.txt")["Body"].read()
    assert s3.head_object(Bucket="local-keepalive", Key="a.txt")["ContentLength"] == 10
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="local-keepalive", Key="absent.txt")
    s3.delete_object(Bucket="local-keepalive", Key="a.txt")
    assert s3.list_objects_v2(Bucket="local-keepalive")["KeyCount"] == 0
    assert got == b"first body"
    opened = [r.getMessage() for r in caplog.records if "connection" in r.getMessage().lower()]
    assert opened == []  # no new connection, no "Resetting dropped connection"


def test_a_body_nobody_reads_is_never_taken_for_the_next_request(
    address: tuple[str, int],
) -> None:
    """The whole body is read before the next request line: a body that holds
    a request of its own (here one that would delete a bucket) stays a body."""
    import socket

    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(b"PUT /local-smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        _responses(conn, 1)
        hidden = b"DELETE /local-smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        conn.sendall(
            b"GET /local-smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
            + str(len(hidden)).encode() + b"\r\n\r\n" + hidden
            + b"HEAD /local-smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        )  # fmt: skip
        listing, head = _responses(conn, 2)
    assert listing.startswith(b"HTTP/1.1 200")
    assert head.startswith(b"HTTP/1.1 200")  # the bucket is still there


def test_a_chunked_body_is_read_to_its_end(address: tuple[str, int]) -> None:
    import socket

    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(b"PUT /local-chunked HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        _responses(conn, 1)
        conn.sendall(
            b"PUT /local-chunked/c.txt HTTP/1.1\r\nHost: localhost\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            b"HEAD /local-chunked HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        )
        put, head = _responses(conn, 2)
    assert put.startswith(b"HTTP/1.1 200")
    assert head.startswith(b"HTTP/1.1 200")
    host, port = address
    s3 = _client("s3", f"http://{host}:{port}")
    assert s3.get_object(Bucket="local-chunked", Key="c.txt")["Body"].read() == b"hello world"


def test_a_client_that_expects_100_continue_gets_it_before_sending_the_body(
    address: tuple[str, int],
) -> None:
    """botocore sends ``Expect: 100-continue`` with every PutObject and waits for
    the interim answer before the body: a buffered answer left it waiting."""
    import socket

    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(b"PUT /local-expect HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        _responses(conn, 1)
        conn.sendall(
            b"PUT /local-expect/e.txt HTTP/1.1\r\nHost: localhost\r\n"
            b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        interim = conn.recv(1024)  # the socket's timeout, not a measure: a hang fails here
        assert interim.startswith(b"HTTP/1.1 100")
        conn.sendall(b"body")
        (put,) = _responses(conn, 1)
        assert put.startswith(b"HTTP/1.1 200")
