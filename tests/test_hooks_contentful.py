"""POST /hooks/contentful: Contentful request verification, entry mapping, unpublish.

Also the entry maps every CMS route keeps (``cms/<cms>/<entry id>.json``): slug
changes, unpublish by entry id, slug conflicts, and convergence after a failure
between any two writes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hooks_support import (
    body_json,
    client,
    contentful_headers,
    hook_client,
    oversized,
    payload,
    payload_obj,
    post_hook,
    source_tree,
    stored_json,
)
from support import (
    PUBLIC,
    SOURCE,
    FlakyStorage,
    dumps,
    make_release,
    public_tree,
    sqs_event,
    upload,
)

from chalicelib.core.model import parse_release
from chalicelib.errors import TransientStorageError
from chalicelib.hooks import HookService
from chalicelib.hooks.cms import contentful
from chalicelib.settings import Settings
from chalicelib.storage import LocalStorage, S3Storage

SECRET = "c" * 64  # Contentful signing secrets are 64 characters
ENTRY = "5KsDBWseXY6QegucYAoacS"
SLUG = "water-points-restored-bayline"
KEY = f"releases/{SLUG}.json"
MAP = f"cms/contentful/{ENTRY}.json"
UNPUBLISH = "ContentManagement.Entry.unpublish"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(app_module, tmp_path, monkeypatch, NEWSROOM_CONTENTFUL_SECRET=SECRET)


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return post_hook(api, "contentful", body, headers)


def publish(api: Any, body: bytes | None = None) -> Any:
    body = payload("contentful_entry_publish.json") if body is None else body
    return post(api, body, contentful_headers(body, SECRET))


def entry_body(entry_id: str = ENTRY, slug: str = SLUG, title: str | None = None) -> bytes:
    doc = payload_obj("contentful_entry_publish.json")
    doc["sys"]["id"] = entry_id
    doc["fields"]["slug"] = {"en-US": slug}
    if title is not None:
        doc["fields"]["title"] = {"en-US": title}
    return json.dumps(doc).encode()


def unpublish_body(entry_id: str = ENTRY) -> bytes:
    doc = payload_obj("contentful_entry_unpublish.json")
    doc["sys"]["id"] = entry_id
    return json.dumps(doc).encode()


def unpublish(api: Any, entry_id: str = ENTRY) -> Any:
    body = unpublish_body(entry_id)
    return post(api, body, contentful_headers(body, SECRET, topic=UNPUBLISH))


def test_published_entry_becomes_a_release(api: Any, aws: Any) -> None:
    resp = publish(api)
    assert resp.status_code == 202, resp.body
    assert body_json(resp) == {"status": "accepted", "action": "publish", "key": KEY, "slug": SLUG}
    tree = source_tree(aws)
    assert set(tree) == {KEY, MAP}
    assert json.loads(tree[MAP]) == {
        "cms": "contentful",
        "entry": ENTRY,
        "slug": SLUG,
        "source_key": KEY,
        "published_at": "2018-12-19T15:00:00.000Z",  # kept across re-publishes
    }
    doc = json.loads(tree[KEY])
    release = parse_release(tree[KEY], name=KEY)
    assert release.slug == doc["slug"] == "water-points-restored-bayline"
    assert release.title == "Water points restored in Bayline"  # the en-US value
    assert release.kind == "press-release"  # from the label "Press Release"
    # no publishedAt field on the entry: the first publication instant
    assert doc["published_at"] == "2018-12-19T15:00:00.000Z"
    assert release.language == "en-US"
    assert release.body_format == "html"
    assert release.body == (
        "<h2>What happened</h2><p>Crews repaired <strong>twelve</strong> water points. "
        '<a href="https://harborlight.example/water" rel="noopener noreferrer">Read the '
        "report</a></p><ul><li><p>Bayline North</p></li></ul>"
    )
    assert release.image is not None and release.image.credit == "Joe Raedle/Getty Images"
    assert list(release.topics) == ["Clean Water", "Bayline"]
    assert release.contacts[0].email == "press@harborlight.example"


def test_unpublish_deletes_the_release(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    body = payload("contentful_entry_unpublish.json")
    resp = post(api, body, contentful_headers(body, SECRET, topic=UNPUBLISH))
    assert resp.status_code == 202
    assert body_json(resp) == {
        "status": "accepted",
        "action": "unpublish",
        "key": KEY,
        "slug": SLUG,
    }
    assert source_tree(aws) == {}


def test_delete_topic_deletes_too(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    body = payload("contentful_entry_unpublish.json")
    topic = "ContentManagement.Entry.delete"
    assert post(api, body, contentful_headers(body, SECRET, topic=topic)).status_code == 202
    assert source_tree(aws) == {}


def test_other_topics_are_ignored(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    for topic in ("ContentManagement.Entry.save", "ContentManagement.Asset.publish"):
        resp = post(api, body, contentful_headers(body, SECRET, topic=topic))
        assert resp.status_code == 202
        assert body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


def test_topic_must_match_the_signed_body(api: Any, aws: Any) -> None:
    # a published Entry body sent with an unpublish topic (or the reverse) is refused
    body = payload("contentful_entry_publish.json")
    resp = post(api, body, contentful_headers(body, SECRET, topic=UNPUBLISH))
    assert resp.status_code == 422
    assert body_json(resp)["errors"][0]["loc"] == "sys.type"
    assert source_tree(aws) == {}


def test_tampered_body_is_refused(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, SECRET)
    resp = post(api, body.replace(b"Bayline North", b"Bayline South"), headers)
    assert resp.status_code == 401
    assert source_tree(aws) == {}


def test_tampered_signed_header_is_refused(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_unpublish.json")
    headers = contentful_headers(body, SECRET, topic=UNPUBLISH)
    headers["X-Contentful-Topic"] = "ContentManagement.Entry.delete"
    assert post(api, body, headers).status_code == 401
    assert source_tree(aws) == {}


def test_wrong_secret_is_refused(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    assert post(api, body, contentful_headers(body, "d" * 64)).status_code == 401
    assert source_tree(aws) == {}


def test_stale_timestamp_is_refused(api: Any, aws: Any) -> None:
    body = payload("contentful_entry_publish.json")
    stale = int((time.time() - 301) * 1000)
    resp = post(api, body, contentful_headers(body, SECRET, ts_ms=stale))
    assert resp.status_code == 401
    assert "timestamp" in body_json(resp)["error"]
    assert source_tree(aws) == {}


@pytest.mark.parametrize(
    "drop", ["X-Contentful-Signature", "X-Contentful-Signed-Headers", "X-Contentful-Timestamp"]
)
def test_missing_headers_are_refused(api: Any, aws: Any, drop: str) -> None:
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, SECRET)
    del headers[drop]
    assert post(api, body, headers).status_code == 401
    assert source_tree(aws) == {}


def test_no_secret_configured_refuses(api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSROOM_CONTENTFUL_SECRET")
    resp = publish(api)
    assert resp.status_code == 401
    assert "NEWSROOM_CONTENTFUL_SECRET" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_oversized_body_is_413(api: Any, aws: Any) -> None:
    body = oversized(payload("contentful_entry_publish.json"))
    assert post(api, body, contentful_headers(body, SECRET)).status_code == 413
    assert source_tree(aws) == {}


def test_invalid_entry_is_422_naming_the_cms_fields(api: Any, aws: Any) -> None:
    entry = payload_obj("contentful_entry_publish.json")
    del entry["fields"]["title"]
    entry["fields"]["kind"] = {"en-US": "Opinion"}
    entry["fields"]["publishedAt"] = {"en-US": "19/12/2018"}  # not ISO 8601
    resp = publish(api, json.dumps(entry).encode())
    assert resp.status_code == 422
    errors = {e["loc"]: e["msg"] for e in body_json(resp)["errors"]}
    assert set(errors) == {"title", "kind", "published_at"}
    assert "CMS field 'publishedAt'" in errors["published_at"]
    assert source_tree(aws) == {}


def test_lone_surrogate_in_rich_text_is_422_naming_the_body(api: Any, aws: Any) -> None:
    """A JSON escape ``\\ud800`` alone is half a character: the release is refused
    naming the body, as for an upload, instead of failing the HTML sanitizer (500)."""
    entry = payload_obj("contentful_entry_publish.json")
    paragraph = entry["fields"]["body"]["en-US"]["content"][1]
    paragraph["content"][0]["value"] = "Crews \ud800repaired "
    resp = publish(api, json.dumps(entry).encode())
    assert resp.status_code == 422, resp.body
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "body" and "lone surrogate (\\ud800)" in error["msg"]
    assert source_tree(aws) == {}


def test_asset_link_image_is_explained(api: Any, aws: Any) -> None:
    entry = payload_obj("contentful_entry_publish.json")
    entry["fields"]["image"] = {
        "en-US": {"sys": {"type": "Link", "linkType": "Asset", "id": "3wtvPBbBjiMKqKKga8I2Cu"}}
    }
    resp = publish(api, json.dumps(entry).encode())
    assert resp.status_code == 422
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "image" and "asset" in error["msg"]
    assert source_tree(aws) == {}


def test_field_map_and_locale_are_configurable(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP",
        json.dumps({"contentful": {"locale": "fr-FR", "title": "headline", "summary": None}}),
    )
    entry = payload_obj("contentful_entry_publish.json")
    entry["fields"]["headline"] = {"en-US": "English headline", "fr-FR": "Titre en français"}
    assert publish(api, json.dumps(entry).encode()).status_code == 202
    doc = json.loads(source_tree(aws)[KEY])
    assert doc["title"] == "Titre en français"
    assert doc["language"] == "fr-FR"
    assert "summary" not in doc
    # single-locale fields (slug) are read whatever the configured locale
    assert doc["slug"] == "water-points-restored-bayline"


def test_content_type_filter_ignores_other_types(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP", json.dumps({"contentful": {"content_types": ["newsItem"]}})
    )
    resp = publish(api)
    assert resp.status_code == 202 and body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


def test_stage_prefixed_path_verifies(tmp_path: Any) -> None:
    """Behind API Gateway the signed path carries the stage (/api/hooks/contentful)."""
    storage = LocalStorage(tmp_path)
    service = HookService(storage, Settings(contentful_secret=SECRET))
    body = payload("contentful_entry_publish.json")
    headers = contentful_headers(body, SECRET, path="/api/hooks/contentful")
    status, _ = service.handle(
        "contentful", headers, body, paths=["/api/hooks/contentful", "/hooks/contentful"]
    )
    assert status == 202
    assert [k for k in storage.list() if not k.startswith("cms/_order/")] == [MAP, KEY]
    status, _ = service.handle("contentful", headers, body, paths=["/hooks/contentful"])
    assert status == 401


def test_canonical_request_form() -> None:
    """The string to sign, as Contentful documents it: method, path, headers, body."""
    canonical = contentful.canonical(
        "post",
        "/api/hooks/contentful",
        [("x-contentful-timestamp", "1"), ("x-contentful-signed-headers", "a,b")],
        b"{}",
    )
    assert canonical == (
        b"POST\n/api/hooks/contentful\nx-contentful-signed-headers:a,b;x-contentful-timestamp:1\n{}"
    )


# ------------------------------------------------------------ entry maps
def test_the_publisher_serves_the_webhook_release_at_its_slug(
    api: Any, aws: Any, app_module: Any
) -> None:
    assert publish(api).status_code == 202
    assert app_module.sync_release(sqs_event(KEY), None) == {"batchItemFailures": []}
    assert f"releases/{SLUG}/index.html" in public_tree(aws, PUBLIC)
    assert not any(k.startswith("cms/") for k in public_tree(aws, PUBLIC))


def test_republish_overwrites_its_own_file(api: Any, aws: Any) -> None:
    assert publish(api, entry_body(title="First title")).status_code == 202
    resp = publish(api, entry_body(title="Second title"))
    assert resp.status_code == 202 and "removed" not in body_json(resp)
    tree = source_tree(aws)
    assert set(tree) == {KEY, MAP}
    assert json.loads(tree[KEY])["title"] == "Second title"


def test_slug_change_deletes_the_old_file(api: Any, aws: Any, app_module: Any) -> None:
    assert publish(api).status_code == 202
    resp = publish(api, entry_body(slug="water-points-back-in-bayline"))
    assert resp.status_code == 202
    new_key = "releases/water-points-back-in-bayline.json"
    assert body_json(resp)["key"] == new_key
    assert body_json(resp)["removed"] == [KEY]
    tree = source_tree(aws)
    assert set(tree) == {new_key, MAP}
    assert json.loads(tree[MAP]) == {
        "cms": "contentful",
        "entry": ENTRY,
        "slug": "water-points-back-in-bayline",
        "source_key": new_key,
        "published_at": "2018-12-19T15:00:00.000Z",
    }
    # unpublishing now takes down the new file
    assert unpublish(api).status_code == 202
    assert source_tree(aws) == {}


def test_unpublish_by_id_deletes_only_that_entrys_file(api: Any, aws: Any) -> None:
    hand = make_release(slug="hand-written")
    upload(aws, "releases/hand-written.json", hand)
    assert publish(api).status_code == 202
    assert publish(api, entry_body("6LtEC", "second-entry")).status_code == 202
    resp = unpublish(api, "6LtEC")
    assert resp.status_code == 202
    assert body_json(resp)["key"] == "releases/second-entry.json"
    tree = source_tree(aws)
    assert set(tree) == {"releases/hand-written.json", KEY, MAP}
    assert tree["releases/hand-written.json"] == dumps(hand)


def test_unpublish_of_an_unknown_entry_is_a_no_op(api: Any, aws: Any) -> None:
    upload(aws, KEY, make_release(slug=SLUG))  # same slug, written by hand
    before = source_tree(aws)
    resp = unpublish(api)
    assert resp.status_code == 202
    assert body_json(resp)["status"] == "ignored"
    assert ENTRY in body_json(resp)["reason"]
    assert source_tree(aws) == before
    # and again: still a no-op (a CMS retry)
    assert unpublish(api).status_code == 202
    assert source_tree(aws) == before


def test_slug_held_by_a_hand_written_file_is_409(api: Any, aws: Any) -> None:
    upload(aws, KEY, make_release(slug=SLUG, title="Written by hand"))
    before = source_tree(aws)
    resp = publish(api)
    assert resp.status_code == 409
    body = body_json(resp)
    assert SLUG in body["error"] and body["slug"] == SLUG
    assert body["errors"][0]["loc"] == "slug"
    assert source_tree(aws) == before  # no map, the file untouched


def test_slug_held_by_another_entry_is_409(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    before = source_tree(aws)
    resp = publish(api, entry_body("6LtEC", SLUG, title="Another entry"))
    assert resp.status_code == 409
    assert source_tree(aws) == before
    # the other entry moving to a free slug works, and does not touch the first
    assert publish(api, entry_body("6LtEC", "another-entry")).status_code == 202
    tree = source_tree(aws)
    assert tree[KEY] == before[KEY] and tree[MAP] == before[MAP]
    assert "releases/another-entry.json" in tree


def test_moving_to_a_taken_slug_keeps_the_old_page(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    upload(aws, "releases/taken.json", make_release(slug="taken"))
    before = source_tree(aws)
    assert publish(api, entry_body(slug="taken")).status_code == 409
    assert source_tree(aws) == before


def test_broken_map_is_a_server_error_and_deletes_nothing(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    upload(aws, MAP, {"slug": "../../receipts/x", "source_key": "receipts/x.json"})
    before = source_tree(aws)
    for resp in (publish(api, entry_body(slug="elsewhere")), unpublish(api)):
        assert resp.status_code == 500
        assert MAP in body_json(resp)["error"]
    assert source_tree(aws) == before


@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
def test_a_failure_between_any_two_writes_converges_on_retry(aws: Any, after: bool) -> None:
    """First publish, a slug change, then unpublish; the Nth write fails (the Lambda
    dies), the CMS retries the same request: the bucket ends as a clean run does."""
    settings = Settings(contentful_secret=SECRET)
    steps = [
        ("ContentManagement.Entry.publish", entry_body()),
        ("ContentManagement.Entry.publish", entry_body(slug="water-points-back-in-bayline")),
        (UNPUBLISH, unpublish_body()),
    ]
    clean = HookService(S3Storage(aws, SOURCE), settings)
    expected = []
    for topic, body in steps:
        status, _ = clean.handle("contentful", contentful_headers(body, SECRET, topic=topic), body)
        assert status == 202
        expected.append(source_tree(aws))
    assert expected[-1] == {}

    for index, (topic, body) in enumerate(steps):
        n = 1
        while True:
            for key in source_tree(aws, orders=True):  # the state before this step
                aws.delete_object(Bucket=SOURCE, Key=key)
            for key, value in (expected[index - 1] if index else {}).items():
                aws.put_object(Bucket=SOURCE, Key=key, Body=value)
            headers = contentful_headers(body, SECRET, topic=topic)
            flaky = FlakyStorage(S3Storage(aws, SOURCE), fail_at=n, after=after)
            try:
                HookService(flaky, settings).handle("contentful", headers, body)
            except TransientStorageError:
                pass
            if not flaky.failed:
                break  # n is past the last write of this step
            status, resp = HookService(S3Storage(aws, SOURCE), settings).handle(
                "contentful", headers, body
            )
            # a retry after the last write (the request recorded as done) is a
            # replay: 409, and the bucket is already where it should be
            replay = after and status == 409 and "replay" in resp["error"]
            assert status == 202 or replay, (index, n, resp)
            assert source_tree(aws) == expected[index], (index, n)
            n += 1
        assert n > 1


def test_concurrent_change_of_the_same_entry_is_503(aws: Any) -> None:
    """Two deliveries for one entry: the map write is conditional on the version
    read, so the slower one answers 503 (the CMS retries) instead of losing the
    other's file from the map."""

    class Racing(S3Storage):
        def get(self, key: str) -> Any:
            found = super().get(key)
            if key == MAP:  # another request rewrites the map right after our read
                aws.put_object(Bucket=SOURCE, Key=MAP, Body=stored_map())
            return found

    def stored_map() -> bytes:
        return aws.get_object(Bucket=SOURCE, Key=MAP)["Body"].read() + b" "

    settings = Settings(contentful_secret=SECRET)
    body = entry_body()
    HookService(S3Storage(aws, SOURCE), settings).handle(
        "contentful", contentful_headers(body, SECRET), body
    )
    body = entry_body(slug="water-points-back-in-bayline")
    status, resp = HookService(Racing(aws, SOURCE), settings).handle(
        "contentful", contentful_headers(body, SECRET), body
    )
    assert status == 503 and "retry" in resp["error"]
    # the old file is still mapped, so the retry (or an unpublish) still finds it
    assert stored_json(aws, MAP)["source_key"] == KEY


# writes: order claim, new file, map with the old file retired, deleting it, final map
@pytest.mark.parametrize("fail_at", [4, 5], ids=["deleting-old-file", "final-map"])
def test_unpublish_after_a_failed_slug_change_removes_both_files(aws: Any, fail_at: int) -> None:
    """A slug change writes the new file, then the map listing the old file as
    retired, deletes it, then the final map. If it dies after the first map write
    and the editor unpublishes instead of the CMS retrying, both pages go down."""
    settings = Settings(contentful_secret=SECRET)
    body = entry_body()
    HookService(S3Storage(aws, SOURCE), settings).handle(
        "contentful", contentful_headers(body, SECRET), body
    )
    body = entry_body(slug="water-points-back-in-bayline")
    flaky = FlakyStorage(S3Storage(aws, SOURCE), fail_at=fail_at)
    with pytest.raises(TransientStorageError):
        HookService(flaky, settings).handle("contentful", contentful_headers(body, SECRET), body)
    assert "retired" in stored_json(aws, MAP)
    body = unpublish_body()
    status, _ = HookService(S3Storage(aws, SOURCE), settings).handle(
        "contentful", contentful_headers(body, SECRET, topic=UNPUBLISH), body
    )
    assert status == 202
    assert source_tree(aws) == {}


# ------------------------------------------------------------- locales
TWO = "contentful_two_locales_publish.json"
TWO_ID = "3hQyX1zGmBTd7Y0oLkcRzV"
GB_KEY = "releases/flood-shelters-open-riverside.json"
FR_KEY = "releases/flood-shelters-open-riverside-fr-fr.json"
GB_MAP = f"cms/contentful/{TWO_ID}/en-GB.json"
FR_MAP = f"cms/contentful/{TWO_ID}/fr-FR.json"


def test_space_with_en_gb_and_fr_fr_publishes_two_linked_releases(api: Any, aws: Any) -> None:
    """The configured locale (en-US) is not in the space: the default locale is
    the one every field carries; the non-localized slug is shared, so the French
    version takes <slug>-fr-fr."""
    resp = publish(api, payload(TWO))
    assert resp.status_code == 202, resp.body
    assert [r["key"] for r in body_json(resp)["releases"]] == [GB_KEY, FR_KEY]
    tree = source_tree(aws)
    assert set(tree) == {
        GB_KEY,
        FR_KEY,
        f"cms/contentful/{TWO_ID}/en-GB.json",
        f"cms/contentful/{TWO_ID}/fr-FR.json",
    }
    gb, fr = json.loads(tree[GB_KEY]), json.loads(tree[FR_KEY])
    assert (gb["language"], fr["language"]) == ("en-GB", "fr-FR")
    assert gb["title"] == "Flood shelters open in Riverside"
    assert fr["title"] == "Des abris ouverts à Riverside"
    assert gb["translation_key"] == fr["translation_key"]
    # no date field, no sys.firstPublishedAt or publishedAt: sys.createdAt
    assert gb["published_at"] == fr["published_at"] == "2024-05-14T08:12:44.197Z"
    # metadata.tags become topics
    assert gb["topics"] == ["floods", "shelter"]
    # the resolved embedded asset is a figure; the bare link is left out
    assert (
        '<figure><img src="https://images.ctfassets.net/yadj1kx9rmg0/2Yk8hmBMmb4r9zWVdA0lZx/'
        '0f1e2d3c4b5a69788796a5b4c3d2e1f0/gym.jpg" alt="Families in the school gym"></figure>'
    ) in gb["body"]
    assert gb["body"].count("<figure>") == 1
    # re-publishing keeps both where they are
    again = payload_obj(TWO)
    again["sys"]["publishedAt"] = "2024-05-15T10:00:00.000Z"
    assert publish(api, json.dumps(again).encode()).status_code == 202
    tree2 = source_tree(aws)
    assert set(tree2) == set(tree)
    assert json.loads(tree2[GB_KEY])["updated_at"] == "2024-05-15T10:00:00.000Z"
    # unpublishing the entry takes both down
    gone = payload_obj("contentful_entry_unpublish.json")
    gone["sys"]["id"] = TWO_ID
    body = json.dumps(gone).encode()
    assert post(api, body, contentful_headers(body, SECRET, topic=UNPUBLISH)).status_code == 202
    assert source_tree(aws) == {}


def test_an_entry_down_to_one_language_keeps_its_release(api: Any, aws: Any) -> None:
    """The editor removes the French text and publishes again: the entry is back
    to one language, and its release stays where it was, updated (it was refused
    as "taken" by its own language version). The French release is left alone;
    when French comes back, both versions are where they were."""
    assert publish(api, payload(TWO)).status_code == 202
    one = payload_obj(TWO)
    for values in one["fields"].values():
        values.pop("fr-FR", None)
    one["fields"]["title"]["en-GB"] = "Flood shelters open in Riverside and Eastbank"
    resp = publish(api, json.dumps(one).encode())
    assert resp.status_code == 202, resp.body
    assert body_json(resp)["key"] == GB_KEY
    tree = source_tree(aws)
    assert set(tree) == {GB_KEY, FR_KEY, f"cms/contentful/{TWO_ID}.json", FR_MAP}
    assert json.loads(tree[GB_KEY])["title"].endswith("and Eastbank")
    resp = publish(api, payload(TWO))
    assert resp.status_code == 202, resp.body
    assert [r["key"] for r in body_json(resp)["releases"]] == [GB_KEY, FR_KEY]
    assert set(source_tree(aws)) == {GB_KEY, FR_KEY, GB_MAP, FR_MAP}


ALONE = "contentful_locale_published_alone.json"


def _releases_by_language(aws: Any) -> dict[str, tuple[str, dict]]:
    return {
        doc["language"]: (key, doc)
        for key, doc in ((k, json.loads(v)) for k, v in source_tree(aws).items())
        if key.startswith("releases/")
    }


def test_a_locale_published_alone_writes_only_that_locale(api: Any, aws: Any) -> None:
    """Locale-based publishing: ``sys.fieldStatus`` says fr-FR is live and
    en-GB a draft; only the French release is written."""
    resp = publish(api, payload(ALONE))
    assert resp.status_code == 202, resp.body
    found = _releases_by_language(aws)
    assert list(found) == ["fr-FR"]
    fr_key, fr = found["fr-FR"]
    assert fr["title"] == "Des abris ouverts à Riverside"
    # then en-GB published too: both, linked; the French release stays where it is
    both = payload_obj(ALONE)
    both["sys"]["fieldStatus"]["*"]["en-GB"] = "published"
    both["sys"]["updatedAt"] = "2024-05-14T10:00:00.000Z"
    assert publish(api, json.dumps(both).encode()).status_code == 202
    found = _releases_by_language(aws)
    assert sorted(found) == ["en-GB", "fr-FR"] and found["fr-FR"][0] == fr_key
    assert found["en-GB"][1]["translation_key"] == found["fr-FR"][1]["translation_key"]
    # fr-FR back to draft: its release goes, en-GB's stays untouched
    gb_key, gb_before = found["en-GB"]
    back = json.loads(json.dumps(both))
    back["sys"]["fieldStatus"]["*"]["fr-FR"] = "draft"
    back["sys"]["updatedAt"] = "2024-05-14T11:00:00.000Z"
    resp = publish(api, json.dumps(back).encode())
    assert resp.status_code == 202, resp.body
    found = _releases_by_language(aws)
    assert list(found) == ["en-GB"]
    # still at its address, first published when it was
    assert found["en-GB"][0] == gb_key
    assert found["en-GB"][1]["published_at"] == gb_before["published_at"]


def test_a_locale_whose_slug_is_taken_is_refused_alone_and_the_retry_converges(
    api: Any, aws: Any
) -> None:
    """One locale's slug held by a hand-written file: the other locale is
    written, the answer (409) says which was refused and why, and the same
    request sent again once the file is gone writes the missing one."""
    upload(aws, FR_KEY, make_release(slug="flood-shelters-open-riverside-fr-fr"))
    body = payload(TWO)
    headers = contentful_headers(body, SECRET)
    resp = post(api, body, headers)
    assert resp.status_code == 409, resp.body
    answer = body_json(resp)
    assert answer["key"] == FR_KEY and answer["errors"][0]["loc"] == "slug"
    by_locale = {r["locale"]: r for r in answer["releases"]}
    assert by_locale["en-GB"]["status"] == "accepted" and by_locale["en-GB"]["key"] == GB_KEY
    assert by_locale["fr-FR"]["status"] == "refused" and by_locale["fr-FR"]["key"] == FR_KEY
    assert "is taken" in by_locale["fr-FR"]["error"]
    hand_written = source_tree(aws)[FR_KEY]
    assert json.loads(hand_written)["title"] == make_release()["title"]  # not overwritten
    aws.delete_object(Bucket=SOURCE, Key=FR_KEY)
    resp = post(api, body, headers)  # the CMS (or staff) sends it again
    assert resp.status_code == 202, resp.body
    tree = source_tree(aws)
    assert json.loads(tree[FR_KEY])["language"] == "fr-FR"
    assert json.loads(tree[GB_KEY])["translation_key"] == json.loads(tree[FR_KEY])["translation_key"]
    # and once finished, the same request is a replay
    assert post(api, body, headers).status_code == 409


def test_both_locales_reach_the_site_linked(api: Any, aws: Any, app_module: Any) -> None:
    assert publish(api, payload(TWO)).status_code == 202
    event = sqs_event(GB_KEY)
    event["Records"] += sqs_event(FR_KEY)["Records"]
    assert app_module.sync_release(event, None) == {"batchItemFailures": []}
    site = public_tree(aws, PUBLIC)
    for slug in ("flood-shelters-open-riverside", "flood-shelters-open-riverside-fr-fr"):
        page = site[f"releases/{slug}/index.html"].decode()
        assert (
            '<link rel="alternate" hreflang="en-GB" '
            'href="https://news.example.org/releases/flood-shelters-open-riverside/">'
        ) in page
        assert (
            '<link rel="alternate" hreflang="fr-FR" '
            'href="https://news.example.org/releases/flood-shelters-open-riverside-fr-fr/">'
        ) in page


@pytest.mark.parametrize(
    ("sys_dates", "expected"),
    [
        (
            {"firstPublishedAt": "2024-05-10T08:00:00Z", "publishedAt": "2024-05-12T08:00:00Z"},
            "2024-05-10T08:00:00Z",
        ),
        ({"publishedAt": "2024-05-12T08:00:00Z"}, "2024-05-12T08:00:00Z"),
        ({}, "2024-05-14T08:12:44.197Z"),
    ],
    ids=["firstPublishedAt", "publishedAt", "createdAt"],
)
def test_published_at_fallback_order(
    api: Any, aws: Any, sys_dates: dict[str, str], expected: str
) -> None:
    entry = payload_obj(TWO)
    entry["sys"].update(sys_dates)
    assert publish(api, json.dumps(entry).encode()).status_code == 202
    assert json.loads(source_tree(aws)[GB_KEY])["published_at"] == expected


@pytest.mark.parametrize(
    ("zone", "value", "expected"),
    [
        ("", "2024-05-14", "2024-05-14T00:00:00+00:00"),
        ("Europe/Paris", "2024-05-14", "2024-05-14T00:00:00+02:00"),
        ("America/New_York", "2024-12-19T10:00", "2024-12-19T10:00:00-05:00"),
        # the clock change: 01:30 comes twice, 02:30 never; the later instant
        # is taken, so a release (or an embargo) never goes public early
        ("America/New_York", "2024-11-03T01:30", "2024-11-03T01:30:00-05:00"),
        ("America/New_York", "2024-03-10T02:30", "2024-03-10T02:30:00-05:00"),
        ("Europe/Paris", "2024-10-27T02:30", "2024-10-27T02:30:00+01:00"),
        ("Europe/Paris", "2024-03-31T02:30", "2024-03-31T02:30:00+01:00"),
    ],
)
def test_date_fields_without_offset_get_the_site_time_zone(
    app_module: Any,
    aws: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    zone: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv("NEWSROOM_CONTENTFUL_SECRET", SECRET)
    monkeypatch.setenv("NEWSROOM_TIMEZONE", zone)
    api = client(app_module, tmp_path)
    entry = payload_obj(TWO)
    entry["fields"]["publishedAt"] = {"en-GB": value}
    assert publish(api, json.dumps(entry).encode()).status_code == 202
    assert json.loads(source_tree(aws)[GB_KEY])["published_at"] == expected
