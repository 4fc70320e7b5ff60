"""The local AWS endpoint: moto's server mode on 127.0.0.1, as the demo,
the tests and the benches run it.

It answers one request at a time (each atomic, as on AWS), without two of
moto's costs that AWS does not have, and keeps connections open as S3 does.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
IDLE_TIMEOUT_S = 120

@contextmanager
def atomic_moto_requests() -> Iterator[None]:
    """moto's in-process backend with each request made atomic, as it is on real
    S3 (its objects are not safe to overwrite while another thread reads them);
    threads still interleave between requests. For tests and benchmarks."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


def _lighten_moto_server() -> None:
    """Two of moto's costs that AWS does not have, removed from the local server
    (the demo's, the tests' and the benches'), its answers unchanged:

    - its dispatch lists moto's package folder (``os.listdir`` and an ``isdir``
      for each of its ~180 entries) on every request, to see whether the Host
      header names a service: about a third of the server's CPU for an S3 GET
      or PUT (yappi). The folder does not change while the server runs, so it
      is listed once;
    - its SQS reads the queue's retention period through every attribute of the
      queue, message counts included (three scans of every message), for each
      message it hands out, so a receive from a queue of n messages cost O(n)
      per message: the local server's largest cost in a burst. The period is
      read from the queue itself.
    """
    import moto.backends as moto_backends
    import moto.sqs.models as sqs_models

    if getattr(moto_backends.list_of_moto_modules, "lightened", False):
        return
    modules = tuple(moto_backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return period + message.sent_timestamp / 1000 > sqs_models.unix_time()

    list_of_moto_modules.lightened = True  # type: ignore[attr-defined]
    moto_backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def atomic_moto_server_class() -> type:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    _lighten_moto_server()

    class AtomicMotoServer(ThreadedMotoServer):
        """moto's threaded server with each request made atomic, as it is on
        real S3: moto's in-memory objects are not safe to overwrite while
        another thread reads them."""

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()

            def atomic(environ: dict[str, Any], start_response: Any) -> Any:
                with lock:
                    # materialise the body under the lock
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, atomic, True, request_handler=_handler_class()
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return AtomicMotoServer


def _handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        """werkzeug's request handler, keeping the connection open as S3 does.

        werkzeug's development server closes every connection after one
        response (its handler cannot tell where a request's body ends), so each
        request cost a new connection, a new server thread and a 10 ms
        selector wait for a body that never came: about a third of the local
        server's CPU for an S3 PUT, and a reconnection in every client. Here the
        whole request body is read first (by its length, or to the end of its
        chunks), the atomic application answers with its whole body, and the
        response leaves with a length, in one send."""

        protocol_version = "HTTP/1.1"
        # a response's head and body leave in one send (no wait for the
        # client's delayed ACK of the head, as Nagle's algorithm made it)
        disable_nagle_algorithm = True
        wbufsize = 64 * 1024
        timeout = IDLE_TIMEOUT_S  # an idle client's connection, and its thread, end

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return  # one access-log line per S3 call would drown the demo's output

        def handle_expect_100(self) -> bool:
            super().handle_expect_100()
            self.wfile.flush()  # the client waits for it before it sends the body
            return True

        def run_wsgi(self) -> None:
            environ = self.environ = self.make_environ()
            body = _request_body(environ, self.rfile)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            answer: list[Any] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                answer[:] = [status, list(headers)]
                return lambda data: None  # moto never writes outside its answer

            try:
                payload = b"".join(self.server.app(environ, start_response))
            except Exception as e:  # what werkzeug answers too, then closes
                self.server.log("error", f"Error on request: {e!r}")
                answer[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
                payload, self.close_connection = b"Internal Server Error", True
            status, headers = answer
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            sized = False
            for name, value in headers:
                if name.lower() == "connection":
                    continue
                sized = sized or name.lower() == "content-length"
                self.send_header(name, value)
            if not sized and int(code) >= 200 and int(code) not in (204, 304):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()

    return KeepAliveHandler


def _request_body(environ: dict[str, Any], rfile: Any) -> bytes:
    """The whole body of a request, so that the next request on the
    connection starts where this one ends."""
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's reader ends it
        return bytes(environ["wsgi.input"].read())
    length = environ.get("CONTENT_LENGTH") or "0"
    return bytes(rfile.read(int(length))) if length.isdigit() else b""


class LocalS3:
    """moto's S3 on 127.0.0.1 (a free port), with fresh, empty demo buckets."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> LocalS3:
        self._server = atomic_moto_server_class()(
            ip_address=self.host, port=self.port, verbose=False
        )
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto's state is per process: start from nothing (a second demo in one
        # process, or the test suite, must not see an earlier run's objects)
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST"), timeout=10
        ).read()
        return self

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
