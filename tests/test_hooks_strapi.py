"""POST /hooks/strapi: Authorization bearer token, entry events, media URLs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import make_release, upload
from hooks_support import (
    body_json,
    client,
    oversized,
    payload,
    payload_obj,
    source_tree,
    strapi_headers,
)

from chalicelib.core.model import parse_release

TOKEN = "strapi-test-token-6b1f"
SLUG = "volunteers-clear-harbour-road"
KEY = f"releases/{SLUG}.json"
MAP = "cms/strapi/press-release/h90lgohlzfpjf3bvan72mzll.json"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NEWSROOM_STRAPI_TOKEN", TOKEN)
    return client(app_module, tmp_path)


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return api.http.post("/hooks/strapi", headers=headers, body=body)


def publish(api: Any, body: bytes | None = None, token: str = TOKEN) -> Any:
    body = payload("strapi_entry_publish.json") if body is None else body
    return post(api, body, strapi_headers(token))


def test_published_entry_becomes_a_release(api: Any, aws: Any) -> None:
    resp = publish(api)
    assert resp.status_code == 202, resp.body
    tree = source_tree(aws)
    assert set(tree) == {KEY, MAP}
    assert json.loads(tree[MAP]) == {
        "cms": "strapi",
        "entry": "press-release/h90lgohlzfpjf3bvan72mzll",
        "slug": SLUG,
        "source_key": KEY,
    }
    doc = json.loads(tree[KEY])
    release = parse_release(tree[KEY], name=KEY)
    assert release.slug == "volunteers-clear-harbour-road"
    assert release.kind == "campaign-update"
    assert release.body_format == "markdown"
    assert release.body.startswith("Two hundred volunteers **cleared**")
    assert doc["published_at"] == "2018-12-19T15:00:00.000Z"  # Strapi's publishedAt
    assert "updated_at" not in doc  # Strapi's own updatedAt is not an update notice
    assert release.image is not None
    assert release.image.alt == "Volunteers carrying debris"  # alternativeText
    assert list(release.topics) == ["Volunteering"]  # relation objects -> names


@pytest.mark.parametrize("name", ["strapi_entry_unpublish.json", "strapi_entry_delete.json"])
def test_unpublish_and_delete_remove_the_release(api: Any, aws: Any, name: str) -> None:
    assert publish(api).status_code == 202
    body = payload(name)
    resp = post(api, body, strapi_headers(TOKEN, event=json.loads(body)["event"]))
    assert resp.status_code == 202 and body_json(resp)["key"] == KEY
    assert source_tree(aws) == {}


def test_unpublish_without_a_map_does_not_trust_the_payload_slug(api: Any, aws: Any) -> None:
    """The unpublish body names the slug, but no release was published from this
    entry: the file under that slug is someone else's and stays."""
    upload(aws, KEY, make_release(slug=SLUG))
    before = source_tree(aws)
    for name in ("strapi_entry_unpublish.json", "strapi_entry_delete.json"):
        body = payload(name)
        resp = post(api, body, strapi_headers(TOKEN, event=json.loads(body)["event"]))
        assert resp.status_code == 202 and body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == before
    # and publishing over it is refused
    assert publish(api).status_code == 409
    assert source_tree(aws) == before


def test_entries_of_different_models_have_separate_maps(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    doc = payload_obj("strapi_entry_publish.json") | {"model": "statement"}
    doc["entry"]["slug"] = "harbour-road-statement"
    assert publish(api, json.dumps(doc).encode()).status_code == 202
    assert set(source_tree(aws)) == {
        KEY,
        MAP,
        "releases/harbour-road-statement.json",
        "cms/strapi/statement/h90lgohlzfpjf3bvan72mzll.json",
    }


def test_other_events_are_ignored(api: Any, aws: Any) -> None:
    for event in ("entry.create", "entry.update", "media.create"):
        doc = payload_obj("strapi_entry_publish.json") | {"event": event}
        resp = publish(api, json.dumps(doc).encode())
        assert resp.status_code == 202 and body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Basic {TOKEN}", "Bearer ", "Bearer wrong-token", f"Bearer {TOKEN}x", TOKEN],
)
def test_missing_or_wrong_token_is_refused(api: Any, aws: Any, authorization: str | None) -> None:
    body = payload("strapi_entry_publish.json")
    headers = strapi_headers(TOKEN)
    if authorization is None:
        del headers["Authorization"]
    else:
        headers["Authorization"] = authorization
    assert post(api, body, headers).status_code == 401
    assert source_tree(aws) == {}


def test_bearer_scheme_is_case_insensitive(api: Any, aws: Any) -> None:
    body = payload("strapi_entry_publish.json")
    headers = strapi_headers(TOKEN) | {"Authorization": f"bearer {TOKEN}"}
    assert post(api, body, headers).status_code == 202


def test_no_token_configured_refuses(api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSROOM_STRAPI_TOKEN")
    for token in ("", TOKEN):
        assert publish(api, token=token).status_code == 401
    assert source_tree(aws) == {}


def test_oversized_body_is_413(api: Any, aws: Any) -> None:
    assert publish(api, oversized(payload("strapi_entry_publish.json"))).status_code == 413
    assert source_tree(aws) == {}


def test_invalid_entry_is_422(api: Any, aws: Any) -> None:
    doc = payload_obj("strapi_entry_publish.json")
    del doc["entry"]["slug"]
    doc["entry"]["image"]["alternativeText"] = None
    doc["entry"]["publishedAt"] = "2018-12-19T15:00:00"  # naive
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 422
    assert {e["loc"] for e in body_json(resp)["errors"]} == {"slug", "image.alt", "published_at"}
    assert source_tree(aws) == {}


def test_relative_upload_url_needs_media_base_url(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = payload_obj("strapi_entry_publish.json")
    doc["entry"]["image"]["url"] = "/uploads/road_4f1c.jpg"
    body = json.dumps(doc).encode()
    resp = publish(api, body)
    assert resp.status_code == 422
    assert body_json(resp)["errors"][0]["loc"] == "image.url"
    assert source_tree(aws) == {}

    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP",
        json.dumps({"strapi": {"media_base_url": "https://cms.harborlight.example/"}}),
    )
    assert publish(api, body).status_code == 202
    image = json.loads(source_tree(aws)[KEY])["image"]
    assert image["url"] == "https://cms.harborlight.example/uploads/road_4f1c.jpg"


def test_strapi_blocks_body_is_converted(api: Any, aws: Any) -> None:
    doc = payload_obj("strapi_entry_publish.json")
    doc["entry"]["body"] = [
        {"type": "heading", "level": 2, "children": [{"type": "text", "text": "Saturday"}]},
        {
            "type": "paragraph",
            "children": [
                {"type": "text", "text": "We <cleared> "},
                {"type": "text", "text": "3 km", "bold": True},
            ],
        },
    ]
    assert publish(api, json.dumps(doc).encode()).status_code == 202
    doc = json.loads(source_tree(aws)[KEY])
    assert doc["body_format"] == "html"
    assert doc["body"] == "<h2>Saturday</h2><p>We &lt;cleared&gt; <strong>3 km</strong></p>"


def test_malformed_field_map_is_a_server_error_and_writes_nothing(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ("{not json", '{"strapi": {"titel": "title"}}', '{"wordpress": {}}'):
        monkeypatch.setenv("NEWSROOM_CMS_FIELD_MAP", bad)
        assert publish(api).status_code == 500  # the CMS retries once ops fix it
    assert source_tree(aws) == {}
