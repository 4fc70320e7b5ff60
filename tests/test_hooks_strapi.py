"""POST /hooks/strapi: Authorization bearer token, entry events, media URLs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hooks_support import (
    body_json,
    hook_client,
    oversized,
    payload,
    payload_obj,
    post_hook,
    source_tree,
    strapi_headers,
)
from support import make_release, upload

from chalicelib.core.model import parse_release

TOKEN = "strapi-test-token-6b1f"
SLUG = "volunteers-clear-harbour-road"
KEY = f"releases/{SLUG}.json"
MAP = "cms/strapi/press-release/h90lgohlzfpjf3bvan72mzll/en.json"  # per locale


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(app_module, tmp_path, monkeypatch, NEWSROOM_STRAPI_TOKEN=TOKEN)


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return post_hook(api, "strapi", body, headers)


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
        "locale": "en",
        "published_at": "2018-12-19T15:00:00.000Z",  # kept across re-publishes
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
        "cms/strapi/statement/h90lgohlzfpjf3bvan72mzll/en.json",
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


def test_a_token_set_with_surrounding_spaces_or_a_line_feed_still_matches(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP header carries no surrounding whitespace, so a token configured
    with some (a file's last line feed, a pasted space) could never match."""
    monkeypatch.setenv("NEWSROOM_STRAPI_TOKEN", f" {TOKEN}\r\n")
    assert publish(api).status_code == 202
    assert publish(api, token="another-token").status_code == 401


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
    doc["entry"]["publishedAt"] = "19/12/2018 15:00"  # not ISO 8601
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


# ------------------------------------------------- locales, versions, upgrades
EN = "strapi5_i18n_publish_en.json"
FR = "strapi5_i18n_publish_fr.json"
DOC = "x3k9q2mfa8r7t6y5u4i3o2p1"
EN_KEY = "releases/flood-shelters-open-riverside.json"
FR_KEY = "releases/abris-ouverts-riverside.json"


def test_each_locale_is_its_own_release_linked_by_translation_key(api: Any, aws: Any) -> None:
    assert publish(api, payload(EN)).status_code == 202
    resp = publish(api, payload(FR))
    assert resp.status_code == 202, resp.body
    assert body_json(resp)["locale"] == "fr"
    tree = source_tree(aws)
    assert set(tree) == {
        EN_KEY,
        FR_KEY,
        f"cms/strapi/press-release/{DOC}/en.json",
        f"cms/strapi/press-release/{DOC}/fr.json",
    }
    en, fr = json.loads(tree[EN_KEY]), json.loads(tree[FR_KEY])
    assert (en["language"], fr["language"]) == ("en", "fr")
    assert en["translation_key"] == fr["translation_key"] == f"strapi-{DOC}"
    # unpublishing the French version alone leaves the English one
    body = payload("strapi5_i18n_unpublish_fr.json")
    assert post(api, body, strapi_headers(TOKEN, "entry.unpublish")).status_code == 202
    assert set(source_tree(aws)) == {EN_KEY, f"cms/strapi/press-release/{DOC}/en.json"}


def test_both_locales_reach_the_site_linked(api: Any, aws: Any, app_module: Any) -> None:
    from support import PUBLIC, public_tree, receipt, sqs_event

    assert publish(api, payload(EN)).status_code == 202
    assert publish(api, payload(FR)).status_code == 202
    for key in (EN_KEY, FR_KEY):
        assert app_module.sync_release(sqs_event(key), None) == {"batchItemFailures": []}
        assert receipt(aws, key)["status"] == "published"
    site = public_tree(aws, PUBLIC)
    en = site["releases/flood-shelters-open-riverside/index.html"].decode()
    fr = site["releases/abris-ouverts-riverside/index.html"].decode()
    assert '<html lang="en"' in en and '<html lang="fr"' in fr
    # linked both ways: the English page, public first, was re-rendered
    for page in (en, fr):
        assert '<link rel="alternate" hreflang="fr" href="https://news.example.org/releases/abris-ouverts-riverside/">' in page
        assert '<link rel="alternate" hreflang="en" href="https://news.example.org/releases/flood-shelters-open-riverside/">' in page


def test_blocks_image_without_children_becomes_a_figure(api: Any, aws: Any) -> None:
    resp = publish(api, payload(EN))
    assert resp.status_code == 202, resp.body
    doc = json.loads(source_tree(aws)[EN_KEY])
    assert doc["body_format"] == "html"
    assert (
        '<figure><img src="https://media.harborlight.example/uploads/shelter_9f2a1c.jpg" '
        'alt="Families in the school gym"><figcaption>The school gym on Tuesday night'
        "</figcaption></figure>"
    ) in doc["body"]
    assert "<strong>three shelters</strong>" in doc["body"]


def test_republish_keeps_the_first_date_and_sets_updated_at(api: Any, aws: Any) -> None:
    assert publish(api, payload(EN)).status_code == 202
    again = payload_obj(EN)
    again["createdAt"] = "2024-05-15T07:00:00.100Z"
    again["entry"]["publishedAt"] = "2024-05-15T07:00:00.000Z"  # Strapi 5: a new row
    again["entry"]["title"] = "Flood shelters open in Riverside (corrected)"
    assert publish(api, json.dumps(again).encode()).status_code == 202
    doc = json.loads(source_tree(aws)[EN_KEY])
    assert doc["published_at"] == "2024-05-14T09:30:12.470Z"
    assert doc["updated_at"] == "2024-05-15T07:00:00.000Z"


@pytest.fixture
def media_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP", json.dumps({"strapi": {"media_base_url": "https://cms.example"}})
    )


V4_MAP = "cms/strapi/press-release/12/en.json"


def test_strapi4_update_of_a_published_entry_republishes(
    api: Any, aws: Any, media_base: None
) -> None:
    resp = publish(api, payload("strapi4_entry_publish.json"))
    assert resp.status_code == 202, resp.body
    assert set(source_tree(aws)) == {KEY, V4_MAP}
    body = payload("strapi4_entry_update.json")
    resp = post(api, body, strapi_headers(TOKEN, "entry.update"))
    assert resp.status_code == 202 and body_json(resp)["action"] == "publish", resp.body
    doc = json.loads(source_tree(aws)[KEY])
    assert "50 more on Sunday" in doc["body"]
    assert doc["image"]["url"] == "https://cms.example/uploads/road_4f1c.jpg"
    # Strapi 4 i18n: the versions share a key made from the lowest sibling id
    assert doc["translation_key"] == "strapi-press-release-12"


def test_strapi5_draft_save_is_ignored(api: Any, aws: Any) -> None:
    doc = payload_obj(EN) | {"event": "entry.update"}
    doc["entry"]["publishedAt"] = None
    resp = post(api, json.dumps(doc).encode(), strapi_headers(TOKEN, "entry.update"))
    assert resp.status_code == 202 and body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


def test_upgrade_to_strapi5_keeps_the_release_and_moves_the_map(
    api: Any, aws: Any, media_base: None
) -> None:
    assert publish(api, payload("strapi4_entry_publish.json")).status_code == 202
    resp = publish(api, payload("strapi5_upgraded_publish.json"))
    assert resp.status_code == 202, resp.body
    new_map = "cms/strapi/press-release/q8w7e6r5t4y3u2i1o0p9a8s7/en.json"
    tree = source_tree(aws)
    assert set(tree) == {KEY, new_map}  # the Strapi 4 map moved to the documentId
    doc = json.loads(tree[KEY])
    assert "figures corrected" in doc["body"]
    assert doc["published_at"] == "2023-03-01T10:00:00.000Z"  # first publication kept
    assert doc["updated_at"] == "2024-06-01T08:00:00.410Z"
    # unpublishing in Strapi 5 takes it down
    gone = payload_obj("strapi5_upgraded_publish.json") | {"event": "entry.unpublish"}
    gone["createdAt"] = "2024-06-02T08:00:00.000Z"
    resp = post(api, json.dumps(gone).encode(), strapi_headers(TOKEN, "entry.unpublish"))
    assert resp.status_code == 202, resp.body
    assert source_tree(aws) == {}


def test_upgrade_finds_an_old_map_by_the_slug_it_holds(
    api: Any, aws: Any, media_base: None
) -> None:
    """A map written before locales were kept, under a Strapi 4 id the Strapi 5
    payload no longer carries: found by the slug it holds."""
    assert publish(api, payload("strapi4_entry_publish.json")).status_code == 202
    tree = source_tree(aws)
    aws.delete_object(Bucket="newsroom-source", Key=V4_MAP)
    old = json.loads(tree[V4_MAP])
    del old["locale"], old["published_at"]
    upload(aws, "cms/strapi/press-release/7.json", old)
    resp = publish(api, payload("strapi5_upgraded_publish.json"))
    assert resp.status_code == 202, resp.body
    assert set(source_tree(aws)) == {
        KEY,
        "cms/strapi/press-release/q8w7e6r5t4y3u2i1o0p9a8s7/en.json",
    }
    # the first publication date is read from the release the old map names
    assert json.loads(source_tree(aws)[KEY])["published_at"] == "2023-03-01T10:00:00.000Z"


def test_model_not_in_content_types_is_ignored(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP", json.dumps({"strapi": {"content_types": ["press-release"]}})
    )
    doc = {
        "event": "entry.publish",
        "createdAt": "2024-05-14T09:30:12.481Z",
        "model": "homepage",
        "uid": "api::homepage.homepage",
        # what the model holds is none of the newsroom's business, ids included
        "entry": {"hero": "Welcome"},
    }
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 202, resp.body
    assert body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


def test_map_from_before_locales_moves_to_its_locale(api: Any, aws: Any) -> None:
    """A deployment's map written before languages were kept
    (``cms/strapi/<model>/<documentId>.json``) belongs to the locale holding its slug."""
    legacy = "cms/strapi/press-release/h90lgohlzfpjf3bvan72mzll.json"
    upload(aws, KEY, make_release(slug=SLUG, published_at="2018-12-01T09:00:00+00:00"))
    doc = {"cms": "strapi", "entry": "press-release/h90lgohlzfpjf3bvan72mzll"}
    upload(aws, legacy, doc | {"slug": SLUG, "source_key": KEY})
    resp = publish(api)
    assert resp.status_code == 202, resp.body
    assert set(source_tree(aws)) == {KEY, MAP}
    assert json.loads(source_tree(aws)[KEY])["published_at"] == "2018-12-01T09:00:00+00:00"
    body = payload("strapi_entry_unpublish.json")
    assert post(api, body, strapi_headers(TOKEN, "entry.unpublish")).status_code == 202
    assert source_tree(aws) == {}


def test_unpublish_finds_a_map_from_before_locales(api: Any, aws: Any) -> None:
    legacy = "cms/strapi/press-release/h90lgohlzfpjf3bvan72mzll.json"
    upload(aws, KEY, make_release(slug=SLUG))
    doc = {"cms": "strapi", "entry": "press-release/h90lgohlzfpjf3bvan72mzll"}
    upload(aws, legacy, doc | {"slug": SLUG, "source_key": KEY})
    body = payload("strapi_entry_unpublish.json")
    resp = post(api, body, strapi_headers(TOKEN, "entry.unpublish"))
    assert resp.status_code == 202 and body_json(resp)["action"] == "unpublish", resp.body
    assert source_tree(aws) == {}
