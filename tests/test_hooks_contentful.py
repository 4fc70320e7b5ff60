"""POST /hooks/contentful: Contentful request verification, entry mapping, unpublish."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hooks_support import (
    body_json,
    client,
    contentful_headers,
    oversized,
    payload,
    payload_obj,
    source_tree,
)

from chalicelib.hooks import HookService, verify
from chalicelib.model import parse_release
from chalicelib.settings import Settings
from chalicelib.storage import LocalStorage

SECRET = "c" * 64  # Contentful signing secrets are 64 characters
KEY = "releases/contentful-5KsDBWseXY6QegucYAoacS.json"
UNPUBLISH = "ContentManagement.Entry.unpublish"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NEWSROOM_CONTENTFUL_SECRET", SECRET)
    return client(app_module, tmp_path)


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return api.http.post("/hooks/contentful", headers=headers, body=body)


def publish(api: Any, body: bytes | None = None) -> Any:
    body = payload("contentful_entry_publish.json") if body is None else body
    return post(api, body, contentful_headers(body, SECRET))


def test_published_entry_becomes_a_release(api: Any, aws: Any) -> None:
    resp = publish(api)
    assert resp.status_code == 202, resp.body
    assert body_json(resp)["key"] == KEY
    tree = source_tree(aws)
    assert set(tree) == {KEY}
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
    assert body_json(resp) == {"status": "accepted", "action": "unpublish", "key": KEY}
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
    entry["fields"]["publishedAt"] = {"en-US": "2018-12-19"}  # a Date-only field
    resp = publish(api, json.dumps(entry).encode())
    assert resp.status_code == 422
    errors = {e["loc"]: e["msg"] for e in body_json(resp)["errors"]}
    assert set(errors) == {"title", "kind", "published_at"}
    assert "CMS field 'publishedAt'" in errors["published_at"]
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
    assert list(storage.list()) == [KEY]
    status, _ = service.handle("contentful", headers, body, paths=["/hooks/contentful"])
    assert status == 401


def test_canonical_request_form() -> None:
    """The string to sign, as Contentful documents it: method, path, headers, body."""
    canonical = verify.contentful_canonical(
        "post",
        "/api/hooks/contentful",
        [("x-contentful-timestamp", "1"), ("x-contentful-signed-headers", "a,b")],
        b"{}",
    )
    assert canonical == (
        b"POST\n/api/hooks/contentful\nx-contentful-signed-headers:a,b;x-contentful-timestamp:1\n{}"
    )
