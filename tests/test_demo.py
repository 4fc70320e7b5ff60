"""``newsroom demo``: local S3 (moto server), the real handler, CloudFront-like
serving and the live inbox — over real HTTP, no mocks of our own code."""

from __future__ import annotations

import copy
import http.client
import io
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from support import serving_demo

from newsroom.demo import PUBLIC_BUCKET, PUBLISH_QUEUE, SECURITY_HEADERS, SOURCE_BUCKET, Demo

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_FILES = sorted((SAMPLES / "releases").glob("*.json"))
SCHEDULED_SAMPLE = "releases/ocean-heat-report.json"  # under embargo until 2040
EVENTS = Path(__file__).resolve().parent / "events"


class Running:
    def __init__(self, demo: Demo, receipts: list[dict[str, Any]], inbox: Path) -> None:
        self.demo = demo
        self.receipts = receipts
        self.inbox = inbox
        self.out: io.StringIO = demo.out  # type: ignore[assignment]
        self.err: io.StringIO = demo.err  # type: ignore[assignment]

    def get(self, path: str, method: str = "GET", headers: dict[str, str] | None = None):  # noqa: ANN201
        conn = http.client.HTTPConnection("127.0.0.1", self.demo.port, timeout=10)
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def public(self, key: str) -> dict[str, Any] | None:
        try:
            obj = self.demo.client.get_object(Bucket=PUBLIC_BUCKET, Key=key)
        except self.demo.client.exceptions.NoSuchKey:
            return None
        return {**obj, "Body": obj["Body"].read()}

    def source_receipt(self, source_key: str) -> dict[str, Any]:
        obj = self.demo.client.get_object(Bucket=SOURCE_BUCKET, Key=f"receipts/{source_key}")
        return json.loads(obj["Body"].read())

    def index(self) -> list[dict[str, Any]]:
        return json.loads(self.public("index.json")["Body"])["releases"]  # type: ignore[index]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    inbox = tmp_path_factory.mktemp("inbox")
    with serving_demo(SAMPLES, inbox=inbox, poll_interval=0.05) as (demo, receipts):
        yield Running(demo, receipts, inbox)


# Publishing the samples ----------------------------------------------------------
def test_every_sample_is_published_through_the_handler(running: Running) -> None:
    assert len(SAMPLE_FILES) >= 12
    assert [r["source_key"] for r in running.receipts] == [
        f"releases/{p.name}" for p in SAMPLE_FILES
    ]
    statuses = {r["source_key"]: r["status"] for r in running.receipts}
    assert statuses.pop(SCHEDULED_SAMPLE) == "scheduled"
    assert set(statuses.values()) == {"published"}
    assert all(r["warnings"] == [] for r in running.receipts), "a sample points at missing media"
    # the handler wrote each receipt beside the sources, as in the bucket
    for p in SAMPLE_FILES:
        key = f"releases/{p.name}"
        assert running.source_receipt(key)["status"] == (
            "scheduled" if key == SCHEDULED_SAMPLE else "published"
        )
    slugs = {e["slug"] for e in running.index()}
    assert slugs == {r["slug"] for r in running.receipts if r["status"] == "published"}
    assert all(r["url"].startswith(running.demo.url + "/releases/") for r in running.receipts)
    kinds = {e["kind"] for e in running.index()}
    assert kinds == {"press-release", "report", "statement", "campaign-update", "victory"}


def test_the_scheduled_sample_is_printed_with_its_preview_link(running: Running) -> None:
    receipt = running.source_receipt(SCHEDULED_SAMPLE)
    assert receipt["publish_at"] == "2040-06-08T09:00:00+00:00"
    assert receipt["preview_url"].startswith(running.demo.s3.endpoint + "/")
    printed = running.demo.out.getvalue()  # type: ignore[union-attr]
    assert (
        f"scheduled: {SAMPLES / SCHEDULED_SAMPLE}: {receipt['url']} "
        "(not public until 2040-06-08T09:00:00+00:00) "
        f"preview: {receipt['preview_url']}\n"
    ) in printed


def test_media_follow_the_releases_that_use_them(running: Running) -> None:
    media = sorted(p for p in (SAMPLES / "media").iterdir() if p.is_file())
    assert media
    # the scheduled report's photo and PDF wait for it
    for name in ("ocean-heat-report.jpg", "ocean-heat-report.pdf"):
        assert running.public(f"media/{name}") is None, name
    media = [p for p in media if not p.name.startswith("ocean-heat-report.")]
    for p in media:
        obj = running.public(f"media/{p.name}")
        assert obj is not None, p.name
        assert obj["Body"] == p.read_bytes()
        assert obj["ContentType"] == {".jpg": "image/jpeg", ".pdf": "application/pdf"}[p.suffix]


def test_uploads_reach_the_handler_through_the_publish_queue(running: Running) -> None:
    """The source bucket notifies the queue (with a dead-letter queue), the
    handler consumed every message, and nothing went to the dead-letter queue."""
    queue = running.demo.queue
    assert queue is not None
    config = running.demo.client.get_bucket_notification_configuration(Bucket=SOURCE_BUCKET)
    assert {c["QueueArn"] for c in config["QueueConfigurations"]} == {queue.arn}
    attrs = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] in ("5", 5)
    assert attrs["ApproximateNumberOfMessages"] == "0"
    dlq = queue.sqs.get_queue_url(QueueName=PUBLISH_QUEUE + "-dlq")["QueueUrl"]
    dlq_attrs = queue.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])
    assert dlq_attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


# Serving like CloudFront -------------------------------------------------------
def test_front_page(running: Running) -> None:
    status, headers, body = running.get("/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body == running.public("index.html")["Body"]  # type: ignore[index]
    assert headers["cache-control"] == running.public("index.html")["CacheControl"]  # type: ignore[index]
    newest = running.index()[0]
    assert (
        newest["title"].encode() in body or newest["title"].replace("'", "&#39;").encode() in body
    )


def test_release_page_directory_url_and_redirect(running: Running) -> None:
    slug = running.receipts[0]["slug"]
    status, headers, body = running.get(f"/releases/{slug}/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body == running.public(f"releases/{slug}/index.html")["Body"]  # type: ignore[index]
    status, headers, _ = running.get(f"/releases/{slug}/index.html")
    assert status == 200
    status, headers, body = running.get(f"/releases/{slug}?utm=x")
    assert status == 301
    assert headers["location"] == f"/releases/{slug}/?utm=x"


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/archive",
        "//evil.example/x",
        "/%2F/evil.example/archive",
        "/\\evil.example/archive",
        "///archive",
    ],
)
def test_no_redirect_ever_leaves_the_site(running: Running, path: str) -> None:
    """``//evil.example/x`` is a path to the edge, but a Location of
    ``//evil.example/x/`` would be another site (an open redirect)."""
    from newsroom.demo import PublicSite

    site = PublicSite(running.demo.client, PUBLIC_BUCKET)
    assert site.respond("/archive").status == 301  # the redirect still works for pages
    served = site.respond(path)  # as the request target arrives, before any normalising
    assert served.status == 404, (served.status, served.headers)
    assert "Location" not in served.headers
    # over HTTP, Python's server itself collapses leading slashes first
    status, headers, _ = running.get(path)
    assert not re.match(r"/[/\\]", headers.get("location", "/")), headers


def test_unknown_path_gets_the_404_page(running: Running) -> None:
    not_found = running.public("404.html")["Body"]  # type: ignore[index]
    for path in ("/no/such/page", "/releases/no-such-release/", "/releases/nope", "/media/x.jpg"):
        status, headers, body = running.get(path)
        assert (status, body) == (404, not_found), path
        assert headers["content-type"] == "text/html; charset=utf-8"
    status, _, body = running.get("/no/such/page", method="HEAD")
    assert (status, body) == (404, b"")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feed.xml", "application/atom+xml; charset=utf-8"),
        ("/index.json", "application/json"),
        ("/sitemap.xml", "application/xml"),
        ("/favicon.svg", "image/svg+xml"),
        ("/media/tides-of-displacement.jpg", "image/jpeg"),
        ("/media/clean-water-methodology.pdf", "application/pdf"),
        ("/topics/", "text/html; charset=utf-8"),
    ],
)
def test_content_types_come_from_the_objects(
    running: Running, path: str, content_type: str
) -> None:
    status, headers, body = running.get(path)
    assert status == 200, path
    assert headers["content-type"] == content_type
    key = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
    obj = running.public(key)
    assert obj is not None and body == obj["Body"]
    assert headers["cache-control"] == obj["CacheControl"]


def test_stylesheet_and_security_headers(running: Running) -> None:
    _, _, page = running.get("/")
    css = re.search(rb'<link rel="stylesheet" href="(/assets/[^"]+)"', page)
    assert css
    status, headers, _ = running.get(css.group(1).decode())
    assert status == 200 and headers["content-type"] == "text/css"
    assert "immutable" in headers["cache-control"]
    # the same Content-Security-Policy the CloudFront distribution sends (the
    # policy of a stage without a separate API host: the demo serves
    # /subscriptions itself, which form-action 'self' allows)
    infra = (ROOT / "infra" / "newsroom.yaml").read_text()
    csp = re.search(
        r"ContentSecurityPolicy: !If\n(?:.*\n)*?\s+- >-\n((?:\s+.+\n)+?)\s+Override", infra
    )
    assert csp
    assert " ".join(csp.group(1).split()) == SECURITY_HEADERS["Content-Security-Policy"]
    assert headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_conditional_get(running: Running) -> None:
    status, headers, _ = running.get("/")
    status, _, body = running.get("/", headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    status, _, body = running.get("/", headers={"If-None-Match": '"stale"'})
    assert status == 200 and body


# The inbox ---------------------------------------------------------------------
def _doc(**overrides: Any) -> dict[str, Any]:
    doc = json.loads((SAMPLES / "releases" / "coastal-clinics-reopen.json").read_text())
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def _settle(running: Running) -> None:
    """Two polls: a change is acted on once it has held still for one poll."""
    running.demo.watcher.scan()  # type: ignore[union-attr]
    running.demo.watcher.scan()  # type: ignore[union-attr]


@pytest.fixture
def watcher(running: Running) -> Iterator[Running]:
    """The inbox watcher without its thread, polled by hand (deterministic)."""
    from newsroom.demo import InboxWatcher

    running.demo.watcher = InboxWatcher(running.demo, running.inbox)
    running.out.seek(0), running.out.truncate()
    running.err.seek(0), running.err.truncate()
    yield running
    for p in running.inbox.glob("*.json"):
        p.unlink()
    _settle(running)


def test_inbox_publishes_updates_and_unpublishes(watcher: Running) -> None:
    path = watcher.inbox / "ferry.json"
    path.write_text(json.dumps(_doc(slug="ferry-service", title="Night ferry returns")))
    watcher.demo.watcher.scan()  # type: ignore[union-attr]
    assert watcher.public("releases/ferry-service/index.html") is None  # not settled yet
    watcher.demo.watcher.scan()  # type: ignore[union-attr]
    status, _, body = watcher.get("/releases/ferry-service/")
    assert status == 200 and b"Night ferry returns" in body
    assert (
        f"published: {watcher.demo.watcher.label('ferry.json')}: "  # type: ignore[union-attr]
        f"{watcher.demo.url}/releases/ferry-service/"
    ) in watcher.out.getvalue()
    assert watcher.source_receipt("releases/ferry.json")["status"] == "published"

    path.write_text(json.dumps(_doc(slug="ferry-service", title="Night ferry returns early")))
    _settle(watcher)
    _, _, body = watcher.get("/releases/ferry-service/")
    assert b"Night ferry returns early" in body
    assert "Night ferry returns early" in [e["title"] for e in watcher.index()]

    path.unlink()
    _settle(watcher)
    status, _, _ = watcher.get("/releases/ferry-service/")
    assert status == 404
    assert "ferry-service" not in {e["slug"] for e in watcher.index()}
    assert "unpublished: " in watcher.out.getvalue()
    assert "/releases/ferry-service/ taken down" in watcher.out.getvalue()
    assert watcher.source_receipt("releases/ferry.json")["status"] == "unpublished"


def test_inbox_touch_without_change_is_not_republished(watcher: Running) -> None:
    path = watcher.inbox / "touch.json"
    path.write_text(json.dumps(_doc(slug="touch-test", title="Touch test")))
    _settle(watcher)
    events = watcher.demo.watcher.events  # type: ignore[union-attr]
    path.touch()
    time.sleep(0.01)
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    _settle(watcher)
    assert watcher.demo.watcher.events == events  # type: ignore[union-attr]


def test_inbox_rejected_file_prints_receipt_errors(watcher: Running) -> None:
    bad = _doc(slug="broken-release", titel="typo", image={"url": "/media/x.jpg", "alt": " "})
    (watcher.inbox / "broken.json").write_text(json.dumps(bad))
    _settle(watcher)
    err = watcher.err.getvalue()
    label = str(watcher.inbox / "broken.json")
    receipt = watcher.source_receipt("releases/broken.json")
    assert receipt["status"] == "rejected"
    for e in receipt["errors"]:
        assert f"{label}: {e['loc']}: {e['msg']}" in err
    assert {e["loc"] for e in receipt["errors"]} >= {"titel", "image.alt"}
    assert f"rejected: {label}" in watcher.out.getvalue()
    assert watcher.public("releases/broken-release/index.html") is None
    # fixing the file publishes it
    (watcher.inbox / "broken.json").write_text(json.dumps(_doc(slug="broken-release")))
    _settle(watcher)
    assert watcher.source_receipt("releases/broken.json")["status"] == "published"


def test_inbox_file_name_with_spaces_is_url_encoded_in_the_event(watcher: Running) -> None:
    (watcher.inbox / "My Release (1).json").write_text(json.dumps(_doc(slug="spaced-name")))
    _settle(watcher)
    assert watcher.source_receipt("releases/My Release (1).json")["status"] == "published"
    assert watcher.get("/releases/spaced-name/")[0] == 200


def test_a_photo_named_with_spaces_and_brackets_is_served_encoded(watcher: Running) -> None:
    photo = watcher.inbox / "My Photo (1).jpg"
    jpeg = (SAMPLES / "media" / "coastal-clinics-reopen.jpg").read_bytes()
    image = {"url": "/media/My%20Photo%20(1).jpg", "alt": "Nurses outside a clinic"}
    try:
        photo.write_bytes(jpeg)
        (watcher.inbox / "photo.json").write_text(json.dumps(_doc(slug="photo", image=image)))
        _settle(watcher)
        assert watcher.public("media/My Photo (1).jpg")["Body"] == jpeg  # type: ignore[index]
        status, headers, body = watcher.get("/media/My%20Photo%20(1).jpg")
        assert status == 200 and body == jpeg
        assert headers["content-type"] == "image/jpeg"
        _, _, page = watcher.get("/releases/photo/")
        assert b'src="/media/My%20Photo%20(1).jpg"' in page
    finally:
        photo.unlink()
        (watcher.inbox / "photo.json").unlink()
    _settle(watcher)
    assert watcher.get("/media/My%20Photo%20(1).jpg")[0] == 404


def test_inbox_thread_updates_the_page(running: Running) -> None:
    """The inbox thread publishes a dropped file, its edit and its deletion
    without any other prompt (how fast is a benchmark's business)."""
    running.demo.watch()
    path = running.inbox / "live.json"
    for title in ("Live inbox check", "Live inbox check, edited"):
        started = time.monotonic()
        path.write_text(json.dumps(_doc(slug="live-inbox", title=title)))
        while time.monotonic() - started < 30:
            status, _, body = running.get("/releases/live-inbox/")
            if status == 200 and title.encode() + b"</h1>" in body:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"{title!r} never showed")
    path.unlink()
    started = time.monotonic()
    while running.get("/releases/live-inbox/")[0] != 404:
        assert time.monotonic() - started < 30, "the deleted file's page stayed up"
        time.sleep(0.02)


# The command -------------------------------------------------------------------
def test_busy_port_is_a_clear_error(running: Running) -> None:
    demo = Demo(samples=SAMPLES, port=running.demo.port, out=io.StringIO(), err=io.StringIO())
    with pytest.raises(click.ClickException, match=f"cannot listen on 127.0.0.1:{demo.port}"):
        demo.start()
    demo.stop()


def test_demo_command_no_serve(tmp_path: Path) -> None:
    """The command as users run it, in its own process."""
    samples = tmp_path / "samples"
    (samples / "releases").mkdir(parents=True)
    (samples / "media").mkdir()
    for p in SAMPLE_FILES[:3]:
        (samples / "releases" / p.name).write_bytes(p.read_bytes())
    bad = copy.deepcopy(_doc(slug="bad-one"))
    bad["published_at"] = "2025-01-01T10:00:00"  # no offset
    (samples / "releases" / "zz-bad.json").write_text(json.dumps(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "newsroom.cli", "demo", "--no-serve", "--samples", str(samples)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr  # one sample rejected
    assert proc.stdout.count("published: ") == 3
    assert "http://127.0.0.1:8000" not in proc.stdout  # nothing is served, so no links
    assert f"published: {samples / 'releases' / SAMPLE_FILES[0].name}: /releases/" in proc.stdout
    assert "3 of 4 sample releases published" in proc.stdout
    assert f"{samples / 'releases' / 'zz-bad.json'}: published_at:" in proc.stderr


def test_demo_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    (samples / "releases").mkdir(parents=True)
    sample = SAMPLE_FILES[0]
    (samples / "releases" / sample.name).write_bytes(sample.read_bytes())
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsroom.cli", "demo", "--port", "0", "--samples", str(samples)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Ctrl-C" in line:
                break
        url = re.search(r"newsroom: (http://127\.0\.0\.1:(\d+)/)", "".join(lines))
        assert url, "".join(lines)
        assert f"inbox: {tmp_path / 'inbox'}" in "".join(lines)
        conn = http.client.HTTPConnection("127.0.0.1", int(url.group(2)), timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=20)[0]  # stops promptly, or this raises
        assert proc.returncode == 0, rest
        assert rest.splitlines()[-2:] == ["stopping", "stopped"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_deleting_a_file_that_never_went_live_says_so(watcher: Running) -> None:
    path = watcher.inbox / "never.json"
    path.write_text(json.dumps(_doc(slug="never-live", published_at="2025-01-01T10:00:00")))
    _settle(watcher)
    assert "rejected: " in watcher.out.getvalue()
    path.unlink()
    _settle(watcher)
    out = watcher.out.getvalue()
    assert "unpublished:" not in out
    assert f"removed: {watcher.demo.watcher.label('never.json')} (it was not on the site)" in out  # type: ignore[union-attr]


def test_media_dropped_into_the_inbox_are_handled(watcher: Running) -> None:
    photo = watcher.inbox / "Harbour.JPG"
    photo.write_bytes((SAMPLES / "media" / "coastal-clinics-reopen.jpg").read_bytes())
    try:
        _settle(watcher)
        assert watcher.source_receipt  # the bucket is reachable
        head = watcher.demo.client.head_object(Bucket=SOURCE_BUCKET, Key="media/Harbour.JPG")
        assert head["ContentLength"] == photo.stat().st_size
        assert "media: " in watcher.out.getvalue() and "Harbour.JPG" in watcher.out.getvalue()
    finally:
        photo.unlink()
    _settle(watcher)
    assert "media removed: " in watcher.out.getvalue()


def test_a_cancelled_request_leaves_no_traceback(
    running: Running, capfd: pytest.CaptureFixture[str]
) -> None:
    import socket
    import struct

    host, port = running.demo.host, running.demo.port
    for _ in range(20):
        sock = socket.create_connection((host, port))
        sock.sendall(b"GET /media/coastal-clinics-reopen.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
        # close at once with a reset, as a browser does when a request is cancelled
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(0.5)
    assert running.get("/")[0] == 200
    err = capfd.readouterr().err
    assert (
        "Traceback" not in err
        and "BrokenPipeError" not in err
        and "ConnectionResetError" not in err
    )
