"""Order and replay of webhook requests (``chalicelib/hooks/order.py``), and that
only signed data decides the action: through the routes, with each CMS's own
signing written independently in ``hooks_support``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hooks_support import (
    body_json,
    contentful_headers,
    generic_headers,
    hook_client,
    payload,
    payload_obj,
    post_hook,
    sanity_headers,
    source_tree,
    strapi_headers,
)
from support import SOURCE

from chalicelib.hooks import HookService, order
from chalicelib.hooks.verify import Signed
from chalicelib.settings import Settings
from chalicelib.storage import LocalStorage, S3Storage

SECRET = "order-test-secret-1f0c"
CF_SECRET = "c" * 64
TOKEN = "strapi-order-token"
GENERIC_KEY = "releases/clinics-reopen-after-storm.json"
CF_KEY = "releases/water-points-restored-bayline.json"
CF_MAP = "cms/contentful/5KsDBWseXY6QegucYAoacS.json"
PUBLISH = "ContentManagement.Entry.publish"
UNPUBLISH = "ContentManagement.Entry.unpublish"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(
        app_module, tmp_path, monkeypatch,
        NEWSROOM_WEBHOOK_SECRET=SECRET, NEWSROOM_CONTENTFUL_SECRET=CF_SECRET,
        NEWSROOM_SANITY_SECRET=SECRET, NEWSROOM_STRAPI_TOKEN=TOKEN,
        NEWSROOM_CMS_FIELD_MAP=json.dumps({"sanity": {"project_id": "p1", "dataset": "d1"}}),
    )  # fmt: skip


post = post_hook


# ----------------------------------------------------------------- generic
def test_replayed_generic_request_is_409_and_writes_nothing(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    headers = generic_headers(body, SECRET)
    assert post(api, "generic", body, headers).status_code == 202
    unpublish = payload("generic_unpublish.json")
    assert post(api, "generic", unpublish, generic_headers(unpublish, SECRET)).status_code == 202
    assert source_tree(aws) == {}
    # the captured publish, sent again inside its 5-minute window
    resp = post(api, "generic", body, headers)
    assert resp.status_code == 409, resp.body
    assert "replay" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_late_generic_request_is_409(api: Any, aws: Any) -> None:
    now = int(time.time())
    body = payload("generic_publish.json")
    unpublish = payload("generic_unpublish.json")
    assert post(api, "generic", body, generic_headers(body, SECRET, t=now)).status_code == 202
    # an unpublish signed 10 s earlier arrives after the publish: it is older
    resp = post(api, "generic", unpublish, generic_headers(unpublish, SECRET, t=now - 10))
    assert resp.status_code == 409
    assert set(source_tree(aws)) == {GENERIC_KEY}
    # a newer one is accepted
    resp = post(api, "generic", unpublish, generic_headers(unpublish, SECRET, t=now + 1))
    assert resp.status_code == 202
    assert source_tree(aws) == {}


def test_two_requests_in_the_same_second_are_both_accepted(api: Any, aws: Any) -> None:
    now = int(time.time())
    body = payload("generic_publish.json")
    doc = json.loads(body) | {"title": "Coastal clinics reopen (corrected)"}
    fixed = json.dumps(doc).encode()
    assert post(api, "generic", body, generic_headers(body, SECRET, t=now)).status_code == 202
    assert post(api, "generic", fixed, generic_headers(fixed, SECRET, t=now)).status_code == 202
    assert json.loads(source_tree(aws)[GENERIC_KEY])["title"].endswith("(corrected)")


@pytest.mark.parametrize(
    "header",
    ["t=\u00b2,v1=00", "t=" + "9" * 5000 + ",v1=00", "t=-5,v1=00", "t=1e9,v1=00"],
    ids=["superscript-digit", "5000-digits", "negative", "exponent"],
)
def test_malformed_generic_timestamp_is_401(api: Any, aws: Any, header: str) -> None:
    body = payload("generic_publish.json")
    headers = {"Content-Type": "application/json", "X-Newsroom-Signature": header}
    resp = post(api, "generic", body, headers)
    assert resp.status_code == 401, resp.body
    assert source_tree(aws) == {}


def test_generic_timestamp_in_milliseconds_is_401_saying_so(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    resp = post(api, "generic", body, generic_headers(body, SECRET, t=int(time.time() * 1000)))
    assert resp.status_code == 401
    assert body_json(resp)["error"] == (
        "X-Newsroom-Signature t must be in seconds; this one is in milliseconds"
    )
    assert source_tree(aws) == {}


# -------------------------------------------------------------- contentful
def test_replayed_contentful_unpublish_cannot_take_down_a_republish(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    gone = payload("contentful_entry_unpublish.json")
    t = int(time.time() * 1000)
    assert (
        post(api, "contentful", body, contentful_headers(body, CF_SECRET, ts_ms=t)).status_code
        == 202
    )
    captured = contentful_headers(gone, CF_SECRET, topic=UNPUBLISH, ts_ms=t + 1000)
    assert post(api, "contentful", gone, captured).status_code == 202
    republish = contentful_headers(body, CF_SECRET, ts_ms=t + 2000)
    assert post(api, "contentful", body, republish).status_code == 202
    # the unpublish, replayed: refused, the release stays
    resp = post(api, "contentful", gone, captured)
    assert resp.status_code == 409
    assert CF_KEY in source_tree(aws)


def test_contentful_topic_must_be_signed(api: Any, aws: Any) -> None:
    """An auto-save signed without its topic, sent with a publish topic header."""
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, CF_SECRET, signed_topic=False)
    headers["X-Contentful-Topic"] = "ContentManagement.Entry.publish"
    resp = post(api, "contentful", body, headers)
    assert resp.status_code == 401
    assert "x-contentful-topic" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_contentful_topic_changed_after_signing_is_401(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, CF_SECRET, topic="ContentManagement.Entry.auto_save")
    assert post(api, "contentful", body, headers).status_code == 202  # ignored
    headers["X-Contentful-Topic"] = "ContentManagement.Entry.publish"
    assert post(api, "contentful", body, headers).status_code == 401
    assert source_tree(aws) == {}


@pytest.mark.parametrize(
    "stamp", ["\uff11\uff12", "1" * 40, "12.5"], ids=["fullwidth", "40", "dot"]
)
def test_malformed_contentful_timestamp_is_401(api: Any, aws: Any, stamp: str) -> None:
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, CF_SECRET)
    headers["X-Contentful-Timestamp"] = stamp
    assert post(api, "contentful", body, headers).status_code == 401
    assert source_tree(aws) == {}


def test_contentful_timestamp_in_seconds_is_401_saying_so(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    resp = post(
        api, "contentful", body, contentful_headers(body, CF_SECRET, ts_ms=int(time.time()))
    )
    assert resp.status_code == 401
    assert "x-contentful-timestamp" in body_json(resp)["error"]
    assert "must be in milliseconds" in body_json(resp)["error"]
    assert source_tree(aws) == {}


# ------------------------------------------------------------------ sanity
def test_unsigned_sanity_operation_header_never_deletes(api: Any, aws: Any) -> None:
    """The default projection (the whole document) carries no operation: a
    delete header on a signed update is not trusted."""
    body = payload("sanity_document.json")
    assert post(api, "sanity", body, sanity_headers(body, SECRET)).status_code == 202
    before = source_tree(aws)
    doc = payload_obj("sanity_document.json") | {"title": "Mobile clinic reaches the islands!"}
    update = json.dumps(doc).encode()
    resp = post(api, "sanity", update, sanity_headers(update, SECRET, operation="delete"))
    assert resp.status_code == 422
    assert "delta::operation()" in body_json(resp)["errors"][0]["msg"]
    assert source_tree(aws) == before


def test_replayed_sanity_delete_is_409(api: Any, aws: Any) -> None:
    body = payload("sanity_document.json")
    gone = payload("sanity_delete.json")
    t = int(time.time() * 1000)
    assert post(api, "sanity", body, sanity_headers(body, SECRET, ts_ms=t)).status_code == 202
    captured = sanity_headers(gone, SECRET, operation="delete", ts_ms=t + 1)
    assert post(api, "sanity", gone, captured).status_code == 202
    assert post(api, "sanity", body, sanity_headers(body, SECRET, ts_ms=t + 2)).status_code == 202
    before = source_tree(aws)
    assert post(api, "sanity", gone, captured).status_code == 409
    assert source_tree(aws) == before


@pytest.mark.parametrize("stamp", ["\u00b2" * 13, "9" * 30], ids=["superscript", "30-digits"])
def test_malformed_sanity_timestamp_is_401(api: Any, aws: Any, stamp: str) -> None:
    body = payload("sanity_document.json")
    headers = sanity_headers(body, SECRET)
    headers["sanity-webhook-signature"] = f"t={stamp},v1=abc"
    assert post(api, "sanity", body, headers).status_code == 401
    assert source_tree(aws) == {}


# ------------------------------------------------------------------ strapi
def test_replayed_strapi_event_is_409(api: Any, aws: Any) -> None:
    body = payload("strapi_entry_publish.json")
    assert post(api, "strapi", body, strapi_headers(TOKEN)).status_code == 202
    gone = payload("strapi_entry_unpublish.json")
    doc = json.loads(gone)
    doc["createdAt"] = "2018-12-19T15:05:00.000Z"
    gone = json.dumps(doc).encode()
    assert post(api, "strapi", gone, strapi_headers(TOKEN, "entry.unpublish")).status_code == 202
    assert post(api, "strapi", body, strapi_headers(TOKEN)).status_code == 409
    assert source_tree(aws) == {}


def test_strapi_event_from_the_future_is_401_and_blocks_nothing(api: Any, aws: Any) -> None:
    """An event whose createdAt is ahead of our clock (a Strapi server whose clock
    runs fast) would, once accepted, make every real event for the entry "older"
    and refused until that time: it is refused instead, and the entry goes on."""
    ahead = json.loads(payload("strapi_entry_publish.json"))
    ahead["createdAt"] = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    body = json.dumps(ahead).encode()
    resp = post(api, "strapi", body, strapi_headers(TOKEN))
    assert resp.status_code == 401
    assert "createdAt" in body_json(resp)["error"]
    assert source_tree(aws) == {}
    body = payload("strapi_entry_publish.json")
    assert post(api, "strapi", body, strapi_headers(TOKEN)).status_code == 202


def test_strapi_event_header_never_decides(api: Any, aws: Any) -> None:
    body = payload("strapi_entry_publish.json")
    resp = post(api, "strapi", body, strapi_headers(TOKEN, event="entry.delete"))
    assert resp.status_code == 202 and body_json(resp)["action"] == "publish"


# --------------------------------------------------------------- primitive
def test_claim_and_finish(tmp_path: Any) -> None:
    store = LocalStorage(tmp_path)
    a, b = Signed(1000, "a"), Signed(2000, "b")
    order.claim(store, "x/1", a)
    order.claim(store, "x/1", a)  # claimed, not finished: a retry may run again
    order.finish(store, "x/1", a)
    with pytest.raises(order.Stale):
        order.claim(store, "x/1", a)
    order.claim(store, "x/1", b)
    order.finish(store, "x/1", b)
    with pytest.raises(order.Stale):
        order.claim(store, "x/1", Signed(1500, "c"))
    order.claim(store, "x/1", Signed(2000, "d"))  # same instant, another request
    order.claim(store, "x/2", a)  # another subject has its own order


# ------------------------------------------- concurrent requests for one entry
class Interrupted(S3Storage):
    """Source storage of a request that is paused at its first write (or
    delete) of ``key`` while ``meanwhile`` runs another request whole: as two
    Lambdas handling two deliveries of one entry at once."""

    def __init__(self, s3: Any, key: str, meanwhile: Any, *, after: bool = False) -> None:
        super().__init__(s3, SOURCE)
        self.key, self.meanwhile, self.after, self.ran = key, meanwhile, after, False

    def _between(self, key: str, write: Any) -> Any:
        if key != self.key or self.ran:
            return write()
        self.ran = True
        if self.after:
            result = write()
            self.meanwhile()
            return result
        self.meanwhile()
        return write()

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        return self._between(key, lambda: super(Interrupted, self).put(key, body, **kw))

    def delete(self, key: str, **kw: Any) -> None:
        return self._between(key, lambda: super(Interrupted, self).delete(key, **kw))


def cf_entry(title: str, slug: str | None = None) -> bytes:
    doc = payload_obj("contentful_entry_publish.json")
    doc["fields"]["title"] = {"en-US": title}
    if slug:
        doc["fields"]["slug"] = {"en-US": slug}
    return json.dumps(doc).encode()


def cf_handle(storage: Any, body: bytes, ts: int, topic: str = PUBLISH) -> tuple[int, Any]:
    service = HookService(storage, Settings(contentful_secret=CF_SECRET))
    headers = contentful_headers(body, CF_SECRET, ts_ms=ts, topic=topic)
    return service.handle("contentful", headers, body)


def live_title(aws: Any, key: str = CF_KEY) -> str:
    return json.loads(source_tree(aws)[key])["title"]


def test_older_publish_overtaken_before_its_write_changes_nothing(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    newer: list[Any] = []

    def run_newer() -> None:
        newer.append(cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000))

    slow = Interrupted(aws, CF_KEY, run_newer)
    status, body = cf_handle(slow, cf_entry("Version 2"), t + 1000)
    assert newer[0][0] == 202
    assert status == 409, body
    assert "newer request" in body["error"]
    assert live_title(aws) == "Version 3"


def test_older_publish_overtaken_after_its_write_leaves_the_newer_live(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    slow = Interrupted(aws, CF_KEY, run_newer, after=True)
    cf_handle(slow, cf_entry("Version 2"), t + 1000)
    assert live_title(aws) == "Version 3"


def test_older_unpublish_overtaken_before_its_delete_leaves_the_republish(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    slow = Interrupted(aws, CF_KEY, run_newer)
    gone = payload("contentful_entry_unpublish.json")
    status, _ = cf_handle(slow, gone, t + 1000, topic=UNPUBLISH)
    assert status == 409
    assert live_title(aws) == "Version 3"
    # the entry can still be taken down: its map was kept
    assert cf_handle(S3Storage(aws, SOURCE), gone, t + 3000, topic=UNPUBLISH)[0] == 202
    assert source_tree(aws) == {}


def test_older_publish_under_another_slug_overtaken_writes_no_second_file(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    renamed = "releases/water-points-renamed.json"
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    slow = Interrupted(aws, renamed, run_newer)
    status, _ = cf_handle(slow, cf_entry("Version 2", "water-points-renamed"), t + 1000)
    assert status == 409
    assert set(source_tree(aws)) == {CF_KEY, CF_MAP}
    assert live_title(aws) == "Version 3"


def test_older_publish_under_another_slug_overtaken_after_its_write_leaves_one_file(
    aws: Any,
) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    renamed = "releases/water-points-renamed.json"
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    slow = Interrupted(aws, renamed, run_newer, after=True)
    status, _ = cf_handle(slow, cf_entry("Version 2", "water-points-renamed"), t + 1000)
    assert status == 409
    assert set(source_tree(aws)) == {CF_KEY, CF_MAP}
    assert live_title(aws) == "Version 3"


def test_older_generic_publish_overtaken_by_an_unpublish_stays_down(aws: Any) -> None:
    now = int(time.time())
    service = HookService(S3Storage(aws, SOURCE), Settings(webhook_secret=SECRET))
    body, gone = payload("generic_publish.json"), payload("generic_unpublish.json")

    def run_newer() -> None:
        assert service.handle("generic", generic_headers(gone, SECRET, t=now + 1), gone)[0] == 202

    slow = HookService(Interrupted(aws, GENERIC_KEY, run_newer), Settings(webhook_secret=SECRET))
    status, _ = slow.handle("generic", generic_headers(body, SECRET, t=now), body)
    assert status == 409
    assert source_tree(aws) == {}


def test_older_publish_overtaken_by_the_same_bytes_puts_them_back(aws: Any) -> None:
    """A newer request that rewrites the very bytes the file holds leaves its
    version (ETag) unchanged, so the older request's conditional write still
    goes through; seeing the newer claim afterwards, it puts the bytes back."""
    now = int(time.time())
    service = HookService(S3Storage(aws, SOURCE), Settings(webhook_secret=SECRET))
    body = payload("generic_publish.json")
    older = json.dumps(json.loads(body) | {"title": "Coastal clinics reopen (draft)"}).encode()
    assert service.handle("generic", generic_headers(body, SECRET, t=now), body)[0] == 202

    def run_newer() -> None:
        assert service.handle("generic", generic_headers(body, SECRET, t=now + 2), body)[0] == 202

    slow = HookService(Interrupted(aws, GENERIC_KEY, run_newer), Settings(webhook_secret=SECRET))
    status, _ = slow.handle("generic", generic_headers(older, SECRET, t=now + 1), older)
    assert status == 409
    assert source_tree(aws)[GENERIC_KEY] == body_file(body)


def body_file(body: bytes) -> bytes:
    """What the generic route writes for a request body: the release without its action."""
    doc = {k: v for k, v in json.loads(body).items() if k != "action"}
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def test_older_unpublish_overtaken_by_the_same_bytes_puts_them_back(aws: Any) -> None:
    now = int(time.time())
    service = HookService(S3Storage(aws, SOURCE), Settings(webhook_secret=SECRET))
    body, gone = payload("generic_publish.json"), payload("generic_unpublish.json")
    assert service.handle("generic", generic_headers(body, SECRET, t=now), body)[0] == 202

    def run_newer() -> None:
        assert service.handle("generic", generic_headers(body, SECRET, t=now + 2), body)[0] == 202

    slow = HookService(Interrupted(aws, GENERIC_KEY, run_newer), Settings(webhook_secret=SECRET))
    status, _ = slow.handle("generic", generic_headers(gone, SECRET, t=now + 1), gone)
    assert status == 409
    assert source_tree(aws)[GENERIC_KEY] == body_file(body)


def test_older_slug_change_overtaken_by_a_change_back_keeps_the_newer(aws: Any) -> None:
    """The older request moves the entry to a new slug; before it deletes the old
    file, a newer request moves it back and finishes: the old file (now the
    newer's) stays and the new one is gone."""
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    slow = Interrupted(aws, CF_KEY, run_newer)
    status, _ = cf_handle(slow, cf_entry("Version 2", "water-points-renamed"), t + 1000)
    assert status == 409
    assert set(source_tree(aws)) == {CF_KEY, CF_MAP}
    assert live_title(aws) == "Version 3"
    assert json.loads(source_tree(aws)[CF_MAP])["source_key"] == CF_KEY


def test_older_two_language_publish_overtaken_between_its_versions(aws: Any) -> None:
    """Each language version's file gives way: the older request wrote English,
    the newer one then ran whole, the older's French write is refused."""
    t = int(time.time() * 1000)
    gb_key, fr_key = (
        "releases/flood-shelters-open-riverside.json",
        "releases/flood-shelters-open-riverside-fr-fr.json",
    )

    def two(version: str) -> bytes:
        doc = payload_obj("contentful_two_locales_publish.json")
        doc["fields"]["title"] = {"en-GB": f"Shelters {version}", "fr-FR": f"Abris {version}"}
        return json.dumps(doc).encode()

    assert cf_handle(S3Storage(aws, SOURCE), two("1"), t)[0] == 202
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), two("3"), t + 2000)  # noqa: E731
    status, _ = cf_handle(Interrupted(aws, fr_key, run_newer), two("2"), t + 1000)
    assert status == 409
    assert (live_title(aws, gb_key), live_title(aws, fr_key)) == ("Shelters 3", "Abris 3")


def test_one_service_serving_both_requests_keeps_each_requests_claim(aws: Any) -> None:
    """The service is shared (cached per settings) by whatever serves the
    requests: the newer request running inside the older one must not lend the
    older its claim."""
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    settings = Settings(contentful_secret=CF_SECRET)
    newer, older = cf_entry("Version 3"), cf_entry("Version 2", "water-points-renamed")

    def run_newer() -> None:
        headers = contentful_headers(newer, CF_SECRET, ts_ms=t + 2000)
        assert service.handle("contentful", headers, newer)[0] == 202

    # paused at its entry map write, after its release file's
    service = HookService(Interrupted(aws, CF_MAP, run_newer), settings)
    headers = contentful_headers(older, CF_SECRET, ts_ms=t + 1000)
    assert service.handle("contentful", headers, older)[0] == 409
    assert {k for k in source_tree(aws) if k.startswith("releases/")} == {CF_KEY}
    assert live_title(aws) == "Version 3"


def test_older_unpublish_overtaken_before_its_map_delete_keeps_the_republish(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 3"), t + 2000)  # noqa: E731
    gone = payload("contentful_entry_unpublish.json")
    status, _ = cf_handle(Interrupted(aws, CF_MAP, run_newer), gone, t + 1000, topic=UNPUBLISH)
    assert status == 409
    assert live_title(aws) == "Version 3"
    # the map stays, so the entry can still be taken down
    assert cf_handle(S3Storage(aws, SOURCE), gone, t + 3000, topic=UNPUBLISH)[0] == 202
    assert source_tree(aws) == {}


def test_newer_unpublish_after_an_older_publishs_write_takes_the_entry_down(aws: Any) -> None:
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202
    gone = payload("contentful_entry_unpublish.json")
    run_newer = lambda: cf_handle(S3Storage(aws, SOURCE), gone, t + 2000, topic=UNPUBLISH)  # noqa: E731
    slow = Interrupted(aws, CF_KEY, run_newer, after=True)
    assert cf_handle(slow, cf_entry("Version 2"), t + 1000)[0] == 409
    assert source_tree(aws) == {}


def test_a_file_that_keeps_changing_under_the_request_answers_503(aws: Any) -> None:
    """Writes that keep colliding (another writer changing the file between
    each read and write, without a newer claim) are retried a few times, then
    answered 503 so the CMS retries later."""
    t = int(time.time() * 1000)
    assert cf_handle(S3Storage(aws, SOURCE), cf_entry("Version 1"), t)[0] == 202

    class Contended(S3Storage):
        writes = 0

        def put(self, key: str, body: bytes, **kw: Any) -> str:
            if key == CF_KEY:  # another writer, each time with other bytes
                Contended.writes += 1
                other = body + b" " * Contended.writes
                S3Storage(aws, SOURCE).put(
                    key, other, content_type="application/json", cache_control="no-cache"
                )
            return super().put(key, body, **kw)

    status, body = cf_handle(Contended(aws, SOURCE), cf_entry("Version 2"), t + 1000)
    assert status == 503, body
    assert "retry" in body["error"]
