"""``newsroom demo``: the whole newsroom on one machine.

A local AWS endpoint (moto's server mode on 127.0.0.1) holds the source and
public buckets and the publish queue. The source bucket notifies the queue of
every ``releases/`` and ``media/`` change, as deployed; the demo plays the part
of Lambda's event source mapping: it receives batches from the queue, hands
each to the real ``sync_release`` handler as Lambda would, and deletes the
messages the handler did not send back. The public bucket
is then served over HTTP with CloudFront's semantics, and an inbox folder is
watched so that a release dropped into it, changed or deleted flows through the
same handler within a second or two.

Nothing here is a second implementation of publishing: the demo only plays the
parts AWS plays (S3, SQS and the event source mapping, CloudFront).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote

import click

from chalicelib.keys import MEDIA_PREFIX, RELEASES_PREFIX, cache_control, content_type

from . import lambda_sqs
from .alerts_local import DemoAlerts, LocalApi, alert_settings
from .demo_cms import publish_from_cms
from .endpoint import REGION, LocalS3

SOURCE_BUCKET = "newsroom-demo-source"
PUBLIC_BUCKET = "newsroom-demo-public"
PUBLISH_QUEUE = "newsroom-demo-publish"
DEFAULT_SAMPLES = Path(__file__).resolve().parent.parent / "samples"
POLL_INTERVAL = 0.5
SEARCH_SETTLE = 2.0  # seconds without a change before the demo re-indexes

# The headers CloudFront adds to every response (infra/newsroom.yaml,
# SecurityHeadersPolicy), minus HSTS, which means nothing over plain http.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' https:; style-src 'self'; "
        "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}

# What EventBridge delivers to a scheduled handler (``update_search``).
SCHEDULED_EVENT = {
    "version": "0",
    "id": "00000000-0000-0000-0000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "1970-01-01T00:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-demo-update_search"],
    "detail": {},
}

# The demo's own settings; a setting already in the environment wins for the
# cosmetic ones (title, intro, organisation, press office).
DEMO_DEFAULTS = {
    "NEWSROOM_SITE_TITLE": "Harbor Light Alliance Newsroom",
    "NEWSROOM_ORGANISATION": "Harbor Light Alliance",
    "NEWSROOM_INTRO": (
        "Press releases, reports and statements from Harbor Light Alliance, "
        "a fictional coastal rights organisation."
    ),
    "NEWSROOM_PRESS_EMAIL": "press@harborlight.example",
    "NEWSROOM_PRESS_PHONE": "+1 305 555 0100",
}


# Serving the public bucket like CloudFront ----------------------------------------
@dataclass
class Served:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class PublicSite:
    """Maps a request path to a public-bucket object the way the CloudFront
    distribution does: ``/`` and ``/x/`` serve ``x/index.html``, a missing key
    serves ``404.html`` with status 404. ``/releases/x`` redirects (301) to
    ``/releases/x/`` so relative links resolve as they do on the live site."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _get(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        if not key or len(key.encode()) > 1024:
            return None
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return {
            "body": resp["Body"].read(),
            "Content-Type": resp.get("ContentType") or content_type(key),
            "Cache-Control": resp.get("CacheControl") or cache_control(key),
            "ETag": resp.get("ETag", ""),
        }

    def respond(self, raw_path: str, if_none_match: str | None = None) -> Served:
        # split by hand: urlsplit reads "//evil.example/x" as a host and a path
        raw, _, query = raw_path.split("#", 1)[0].partition("?")
        path = unquote(raw) or "/"
        if not path.startswith("/"):
            return Served(400, b"bad request\n", {"Content-Type": "text/plain; charset=utf-8"})
        # as the CloudFront function: no page starts with two slashes or holds
        # a backslash, and a redirect to //evil.example/x/ would leave the site
        foreign = "\\" in path or any(re.match(r"/[/\\]", p) for p in (raw, path))
        key = path[1:] + "index.html" if path.endswith("/") else path[1:]
        obj = None if foreign else self._get(key)
        if (
            obj is None
            and not foreign
            and not path.endswith("/")
            and self._get(key + "/index.html")
        ):
            location = raw + "/" + (f"?{query}" if query else "")
            return Served(301, b"", {"Location": location, "Cache-Control": "no-cache"})
        status = 200
        if obj is None:
            status = 404
            obj = self._get("404.html")
            if obj is None:
                return Served(404, b"not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        headers = {
            "Content-Type": obj["Content-Type"],
            "Cache-Control": obj["Cache-Control"],
            **SECURITY_HEADERS,
        }
        if status == 200 and obj["ETag"]:
            headers["ETag"] = obj["ETag"]
            if if_none_match and obj["ETag"] in [t.strip() for t in if_none_match.split(",")]:
                return Served(304, b"", headers)
        return Served(status, obj["body"], headers)


class _SiteRequestHandler(BaseHTTPRequestHandler):
    server_version = "newsroom-demo"
    site: PublicSite  # set on the subclass made per server
    api: LocalApi | None = None  # the subscription routes (API Gateway's part)

    def _serve(self, with_body: bool) -> None:
        if self.api is not None and LocalApi.handles(self.path):
            self._call_api()
            return
        try:
            served = self.site.respond(self.path, self.headers.get("If-None-Match"))
        except Exception as exc:  # the local S3 went away (shutdown) or failed
            served = Served(502, f"{exc}\n".encode(), {"Content-Type": "text/plain"})
        try:
            self.send_response(served.status)
            for name, value in served.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            if with_body and served.body:
                self.wfile.write(served.body)
        except CLIENT_GONE:
            self.close_connection = True  # the browser cancelled: nothing to say

    def do_GET(self) -> None:  # noqa: N802
        self._serve(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(False)

    def do_POST(self) -> None:  # noqa: N802
        if self.api is not None and LocalApi.handles(self.path):
            self._call_api()
        else:
            self.send_error(405)

    def _call_api(self) -> None:
        assert self.api is not None
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        resp = self.api.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # the terminal is for publishing news, not access logs


MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".pdf")
# a browser that cancels a request (a new click, a closed tab) is not an error
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return
        super().handle_error(request, client_address)


def make_http_server(site: PublicSite, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("SiteRequestHandler", (_SiteRequestHandler,), {"site": site})
    server = _QuietServer((host, port), handler)
    server.daemon_threads = True
    return server


# The publish queue and Lambda's part in it ----------------------------------------
class PublishQueue:
    """The publish queue on the local endpoint (moto's SQS, with a dead-letter
    queue, as in infra/newsroom.yaml), the source bucket's notification to it,
    and Lambda's event source mapping: ``drain`` hands batches to the handler
    until the queue is empty or the handler reports a failure."""

    def __init__(self, sqs: Any, url: str, arn: str) -> None:
        self.sqs = sqs
        self.url = url
        self.arn = arn
        self.handler: Callable[[dict[str, Any]], Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def create(cls, sqs: Any, s3: Any, name: str) -> PublishQueue:
        url, arn = lambda_sqs.create_queue(sqs, name)
        lambda_sqs.notify_queue(s3, SOURCE_BUCKET, arn)
        return cls(sqs, url, arn)

    def drain(self) -> int:
        """Deliver batches until the queue is empty; return the messages handled."""
        handler = self.handler
        assert handler is not None
        mapping = lambda_sqs.EventSourceMapping(
            self.sqs, self.url, self.arn, lambda event, _context: handler(event)
        )
        handled = 0
        with self._lock:
            while True:
                received, failed = mapping.poll()
                handled += received - failed
                if not received or failed:
                    return handled  # a failure comes back after the visibility timeout


# The demo ------------------------------------------------------------------------
def _files(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith("~")
    )


class Demo:
    """The local stack: S3 endpoint, handler invocations, HTTP server, inbox.

    ``start()`` binds the web port (so a busy port fails before anything else
    happens), starts the local S3 and points the environment at it;
    ``publish_samples()`` uploads media and releases through the handlers;
    ``serve()`` starts the web server and ``watch()`` the inbox, each in a
    thread; ``stop()`` undoes all of it, environment included.
    """

    def __init__(
        self,
        *,
        samples: Path = DEFAULT_SAMPLES,
        inbox: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        poll_interval: float = POLL_INTERVAL,
        bind: bool = True,
        verbose: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        outbox: Path = Path("outbox"),
    ) -> None:
        self.samples = Path(samples)
        self.inbox = Path(inbox) if inbox is not None else None
        self.host = host
        self.port = port
        self.poll_interval = poll_interval
        self.bind = bind
        self.verbose = verbose
        self._log_level: int | None = None
        self.out = out
        self.err = err
        self.s3 = LocalS3(host="127.0.0.1")
        self.client: Any = None
        self.http: ThreadingHTTPServer | None = None
        self.watcher: InboxWatcher | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.search_due = threading.Event()  # a change the search index has not seen
        self._saved_env: dict[str, str | None] = {}
        self._app: Any = None
        self.queue: PublishQueue | None = None
        self.alerts = DemoAlerts(Path(outbox), self.say, self.warn)

    # output
    def say(self, line: str) -> None:
        click.echo(line, file=self.out or sys.stdout)
        (self.out or sys.stdout).flush()

    def warn(self, line: str) -> None:
        click.echo(line, file=self.err or sys.stderr)
        (self.err or sys.stderr).flush()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # lifecycle
    def start(self) -> Demo:
        if self.bind:
            try:
                self.http = make_http_server(PublicSite(None, PUBLIC_BUCKET), self.host, self.port)
            except OSError as exc:
                raise click.ClickException(
                    f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; "
                    "stop whatever uses it or pick another port with --port"
                ) from exc
            self.port = self.http.server_address[1]
        self.s3.start()
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.s3.endpoint,
                "AWS_ENDPOINT_URL_S3": self.s3.endpoint,
                "AWS_ACCESS_KEY_ID": "demo",
                "AWS_SECRET_ACCESS_KEY": "demo",
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "NEWSROOM_SOURCE_BUCKET": SOURCE_BUCKET,
                "NEWSROOM_PUBLIC_BUCKET": PUBLIC_BUCKET,
                "NEWSROOM_QUEUE": PUBLISH_QUEUE,
                "NEWSROOM_SITE_URL": self.url,
                "NEWSROOM_DISTRIBUTION_ID": None,
                **{k: os.environ.get(k) or v for k, v in DEMO_DEFAULTS.items()},
                # e-mail alerts: DynamoDB, SQS and SES on the same local endpoint,
                # the subscription routes served by this demo's own host
                **alert_settings(self.url),
            }
        )
        self.client = self.s3.client()
        self.client.create_bucket(Bucket=SOURCE_BUCKET)
        self.client.create_bucket(Bucket=PUBLIC_BUCKET)
        self.queue = PublishQueue.create(self.s3.client("sqs"), self.client, PUBLISH_QUEUE)
        if self.http is not None:
            self.http.RequestHandlerClass.site = PublicSite(self.client, PUBLIC_BUCKET)  # type: ignore[attr-defined]
        import app  # the Chalice application, as deployed

        self._app = app
        self.queue.handler = lambda event: app.sync_release(event, None)
        self.queue.drain()  # S3's test event, sent when the notification was configured
        self.alerts.start(self.s3.endpoint, app)
        if self.http is not None:
            self.http.RequestHandlerClass.api = self.alerts.api  # type: ignore[attr-defined]
        if not self.verbose:
            # the handler's structured log lines go to CloudWatch in Lambda;
            # here the receipts printed below say the same in plain words
            logger = logging.getLogger("newsroom")
            self._log_level = logger.level
            logger.setLevel(logging.WARNING)
        return self

    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            if any(t.name == "newsroom-http" for t in self._threads):
                self.http.shutdown()
            self.http.server_close()
            self.http = None
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.alerts.stop()
        self.s3.stop()
        if self._log_level is not None:
            logging.getLogger("newsroom").setLevel(self._log_level)
            self._log_level = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # publishing through the queue
    def put_source(self, key: str, body: bytes) -> None:
        self.client.put_object(
            Bucket=SOURCE_BUCKET, Key=key, Body=body, ContentType=content_type(key)
        )

    def delete_source(self, key: str) -> None:
        self.client.delete_object(Bucket=SOURCE_BUCKET, Key=key)

    def receipt(self, key: str) -> dict[str, Any] | None:
        """The receipt the handler wrote for ``key`` (``None`` if it wrote none)."""
        name = f"receipts/{key}.json" if key.startswith("media/") else f"receipts/{key}"
        try:
            obj = self.client.get_object(Bucket=SOURCE_BUCKET, Key=name)
        except self.client.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())

    def publish(self, changes: list[Callable[[], None]], keys: list[str]) -> list[dict[str, Any]]:
        """Make the ``changes`` in the source bucket, let S3 notify the queue,
        deliver the queue to the handler until it is empty, and return the
        receipts of ``keys``."""
        for change in changes:
            change()
        assert self.queue is not None, "start() first"
        self.queue.drain()
        return [r for r in (self.receipt(k) for k in keys) if r is not None]

    def report_media(self, receipt: dict[str, Any], label: str, key: str) -> None:
        """One line per media file from the inbox: where it went, or why not."""
        if receipt.get("status") == "rejected":
            self.report(receipt, label)
        elif receipt.get("status") in ("removed", "unpublished", "deleted"):
            self.say(f"media removed: {label}: /{key}")
        else:
            self.say(f"media: {label}: /{key} ({receipt.get('message') or receipt.get('status')})")

    def update_search(self) -> dict[str, Any]:
        """The scheduled ``update_search`` handler, run at once after each change
        (in AWS it runs every 5 minutes), so the demo's search finds it. The
        publisher has kept the search corpus at each commit."""
        return self._app.update_search(SCHEDULED_EVENT, None)

    def _search_loop(self) -> None:
        """The demo's schedule for ``update_search``: soon after each change,
        in its own thread so the inbox is never held up by indexing."""
        while not self._stop.is_set():
            if self.search_due.wait(0.2):
                self.search_due.clear()
                # let a burst of edits settle first: indexing shares the local S3
                if self._stop.wait(SEARCH_SETTLE) or self.search_due.is_set():
                    continue
                try:
                    self.update_search()
                except Exception as exc:  # an infrastructure fault: say so, keep going
                    self.warn(f"search: error: {exc}")

    def publish_media(self) -> int:
        """Upload ``samples/media/*`` to the source bucket's ``media/``."""
        files = _files(self.samples / "media", "**/*")
        keys = [MEDIA_PREFIX + p.relative_to(self.samples / "media").as_posix() for p in files]
        changes = [
            lambda k=k, p=p: self.put_source(k, p.read_bytes())
            for k, p in zip(keys, files, strict=True)
        ]
        for receipt in self.publish(changes, keys):
            if receipt.get("status") == "rejected":
                self.report(receipt, receipt["source_key"])
        return len(keys)

    def publish_samples(self) -> list[dict[str, Any]]:
        """Media first (so no release points at a missing image), then every
        sample release, all through the publish queue. Returns the receipts."""
        media = self.publish_media()
        self.say(f"media: {media} files uploaded to media/")
        files = _files(self.samples / "releases", "*.json")
        keys = [RELEASES_PREFIX + p.name for p in files]
        changes = [
            lambda k=k, p=p: self.put_source(k, p.read_bytes())
            for k, p in zip(keys, files, strict=True)
        ]
        receipts = self.publish(changes, keys)
        for receipt, path in zip(receipts, files, strict=True):
            self.report(receipt, str(path))
        found = self.update_search()
        where = f"{self.url}/search/" if self.http is not None else "/search/"
        self.say(f"search: {found['records']} releases indexed ({where})")
        return receipts

    def report(self, receipt: dict[str, Any], label: str) -> None:
        """One line per receipt, each naming the file: ``published: FILE: URL``.
        The URL is a link only while the server runs (``--no-serve``: its path)."""
        status = receipt.get("status")
        url = receipt.get("url") or ""
        if url and self.http is None:
            url = url.removeprefix(self.url)
        if status == "published":
            self.say(f"published: {label}: {url}")
        elif status == "scheduled":
            instant = receipt.get("publish_at") or receipt.get("embargo_until")
            line = f"scheduled: {label}: {url} (not public until {instant})"
            if receipt.get("preview_url"):
                line += f" preview: {receipt['preview_url']}"
            self.say(line)
        elif status == "unpublished":
            if receipt.get("slug"):
                self.say(f"unpublished: {label}: /releases/{receipt['slug']}/ taken down")
            else:
                self.say(f"removed: {label} (it was not on the site)")
        else:
            for e in receipt.get("errors", []):
                self.warn(f"{label}: {e['loc']}: {e['msg']}")
            self.say(f"rejected: {label} ({receipt.get('message') or 'not published'})")
        for w in receipt.get("warnings", []):
            self.warn(f"{label}: warning: {w['loc']}: {w['msg']}")

    # serving and watching
    def _thread(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def serve(self) -> str:
        assert self.http is not None, "start() binds the server first"
        self._thread("newsroom-http", self.http.serve_forever)
        self._thread("newsroom-alerts", lambda: self.alerts.run(self._stop, self.poll_interval))
        return self.url + "/"

    def watch(self) -> InboxWatcher:
        assert self.inbox is not None, "no inbox folder given"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.watcher = InboxWatcher(self, self.inbox)
        self.watcher.scan(settle=False)  # files already there are published now
        self._thread("newsroom-inbox", lambda: self.watcher.run(self._stop, self.poll_interval))  # type: ignore[union-attr]
        self._thread("newsroom-search", self._search_loop)
        return self.watcher

    def wait(self) -> None:
        """Block until Ctrl-C (SIGINT) or SIGTERM. Both are handled here even
        when the shell that started the demo in the background ignores SIGINT."""
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.getsignal(s) for s in signals}
        for s in signals:
            signal.signal(s, lambda *_: self._stop.set())
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


# The inbox -----------------------------------------------------------------------
@dataclass
class Seen:
    signature: tuple[int, int]  # (mtime_ns, size)
    digest: str = ""


class InboxWatcher:
    """Polls a folder of release JSON and mirrors it into ``releases/`` of the
    source bucket, one handler call per change.

    A file counts as changed when its mtime or size changes; it is read once
    the pair has held still for one poll (so a half-saved file is not
    published), and uploaded only if its bytes differ from the last upload.
    A file that disappears is deleted from the bucket.
    """

    def __init__(self, demo: Demo, folder: Path) -> None:
        self.demo = demo
        self.folder = folder
        self._candidates: dict[str, tuple[int, int]] = {}
        self._done: dict[str, Seen] = {}
        self.events = 0

    def label(self, name: str) -> str:
        return _short(self.folder / name)

    @staticmethod
    def key(name: str) -> str | None:
        """Where a dropped file goes: release JSON (any case) to ``releases/``,
        photos and PDFs to ``media/``; anything else is left alone."""
        suffix = Path(name).suffix.lower()
        if suffix == ".json":
            return RELEASES_PREFIX + name
        if suffix in MEDIA_SUFFIXES:
            return MEDIA_PREFIX + name
        return None

    def _stat(self) -> dict[str, tuple[int, int]]:
        out = {}
        for p in _files(self.folder, "*"):
            if self.key(p.name) is None:
                continue
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out[p.name] = (st.st_mtime_ns, st.st_size)
        return out

    def scan(self, settle: bool = True) -> None:
        current = self._stat()
        for name, signature in current.items():
            done = self._done.get(name)
            if done is not None and done.signature == signature:
                continue
            if settle and self._candidates.get(name) != signature:
                self._candidates[name] = signature  # changed since last poll: wait
                continue
            self._candidates.pop(name, None)
            try:
                body = (self.folder / name).read_bytes()
            except OSError as exc:
                self.demo.warn(f"{self.label(name)}: (file): cannot be read ({exc.strerror})")
                continue
            digest = hashlib.sha256(body).hexdigest()
            self._done[name] = Seen(signature, digest)
            if done is not None and done.digest == digest:
                continue  # touched, not changed
            self._handle(name, lambda n=name, b=body: self.demo.put_source(self.key(n), b))  # type: ignore[arg-type]
        for name in [n for n in self._done if n not in current]:
            del self._done[name]
            self._handle(name, lambda n=name: self.demo.delete_source(self.key(n)))  # type: ignore[arg-type]
        for name in [n for n in self._candidates if n not in current]:
            del self._candidates[name]

    def _handle(self, name: str, change: Callable[[], None]) -> None:
        try:
            key = self.key(name) or ""
            for receipt in self.demo.publish([change], [key]):
                if key.startswith(MEDIA_PREFIX):
                    self.demo.report_media(receipt, self.label(name), key)
                else:
                    self.demo.report(receipt, self.label(name))
            self.demo.search_due.set()
        except Exception as exc:  # an infrastructure fault: say so, keep watching
            self.demo.warn(f"{self.label(name)}: error: {exc}")
        self.events += 1

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            self.scan()


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# The command ---------------------------------------------------------------------
@click.command("demo")
@click.option("--port", default=8000, show_default=True, help="Port for the newsroom web server.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--inbox",
    default="inbox",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder watched for release JSON to publish, change or take down.",
)
@click.option(
    "--samples",
    default=str(DEFAULT_SAMPLES),
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with releases/ and media/ to publish first.",
)
@click.option(
    "--no-serve",
    is_flag=True,
    help="Publish the samples and what the inbox holds, print the receipts, and exit "
    "(nothing is served).",
)
@click.option("--verbose", is_flag=True, help="Also show the handler's structured log lines.")
@click.option(
    "--outbox",
    default="outbox",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives every e-mail sent, as <time>-<to-hash>.eml.",
)
def command(
    port: int, host: str, inbox: Path, samples: Path, no_serve: bool, verbose: bool, outbox: Path
) -> None:
    """Run the newsroom locally: local S3, the real handler, the site on HTTP."""
    if not (samples / "releases").is_dir():
        raise click.ClickException(f"no sample releases in {samples / 'releases'}")
    started = time.perf_counter()
    demo = Demo(
        samples=samples,
        inbox=inbox,
        host=host,
        port=port,
        bind=not no_serve,
        verbose=verbose,
        outbox=outbox,
    )
    try:
        demo.start()
        demo.say(
            f"local S3 (moto) at {demo.s3.endpoint}: s3://{SOURCE_BUCKET}, s3://{PUBLIC_BUCKET}"
        )
        receipts = demo.publish_samples()
        published = sum(r["status"] == "published" for r in receipts)
        demo.say(
            f"{published} of {len(receipts)} sample releases published "
            f"in {time.perf_counter() - started:.1f}s"
        )
        cms = publish_from_cms(demo)  # samples/cms: a two-locale entry via /hooks/strapi
        if cms:
            demo.say(
                f"{sum(r['status'] == 'published' for r in cms)} of {len(cms)} CMS language "
                "versions published, linked by their translation_key"
            )
        receipts += cms
        published = sum(r["status"] == "published" for r in receipts)
        if no_serve:
            # the inbox once, then exit: nothing is served, so no links are printed
            if inbox.is_dir():
                demo.say(f"inbox: {_short(inbox)} (read once)")
                watcher = InboxWatcher(demo, inbox)
                watcher.scan(settle=False)
            demo.say(
                "not serving (--no-serve): the site was published to the local S3 and is gone on exit"
            )
            if published != len(receipts):
                sys.exit(1)
            return
        demo.say(
            f"inbox: {inbox.resolve()}  (drop, edit or delete release JSON, photos or PDFs here)"
        )
        demo.say(f"outbox: {outbox.resolve()}  (every e-mail sent, as .eml; sign up on any page)")
        demo.watch()
        url = demo.serve()
        demo.say(f"newsroom: {url}  (Ctrl-C to stop)")
        demo.wait()
        demo.say("stopping")
    finally:
        demo.stop()
    demo.say("stopped")
