"""POST /hooks/sanity: sanity-webhook-signature, Portable Text, delete."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from hooks_support import (
    body_json,
    client,
    hook_client,
    oversized,
    payload,
    payload_obj,
    post_hook,
    sanity_headers,
    source_tree,
)

from chalicelib.core.model import parse_release
from chalicelib.hooks import verify
from chalicelib.hooks.base import Request
from chalicelib.hooks.cms import sanity

SECRET = "sanity-test-secret"
DOC_ID = "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
KEY = "releases/mobile-clinic-reaches-islands.json"
MAP = f"cms/sanity/{DOC_ID}.json"
PROJECT = {"project_id": "abc123xy", "dataset": "production"}  # where asset references point


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(
        app_module, tmp_path, monkeypatch, NEWSROOM_SANITY_SECRET=SECRET,
        NEWSROOM_CMS_FIELD_MAP=json.dumps({"sanity": PROJECT}),
    )  # fmt: skip


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return post_hook(api, "sanity", body, headers)


def publish(api: Any, body: bytes | None = None, **kw: Any) -> Any:
    body = payload("sanity_document.json") if body is None else body
    return post(api, body, sanity_headers(body, SECRET, **kw))


# Known answers from @sanity/webhook's own test suite (secret, body, header).
@pytest.mark.parametrize(
    "secret, body, header",
    [
        (
            "test",
            b'{"_id":"resume"}',
            "t=1633519811129,v1=tLa470fx7qkLLEcMOcEUFuBbRSkGujyskxrNXcoh0N0",
        ),
        (
            "try-me",
            b'{"title":"GROQ-Hooks are neat"}',
            "t=1633518820676,v1=e7C9h2sfbFfc4V7TEz7PSOp4IoNzl0UdVsBV-1wgdeA",
        ),
    ],
)
def test_signature_matches_sanity_toolkit(secret: str, body: bytes, header: str) -> None:
    t = int(header.split(",")[0][2:])
    headers = {"sanity-webhook-signature": header}
    sanity.CMS.verify(Request(headers, body), secret, now=t / 1000)
    with pytest.raises(verify.BadSignature):
        sanity.CMS.verify(Request(headers, body + b" "), secret, now=t / 1000)
    with pytest.raises(verify.StaleTimestamp):
        sanity.CMS.verify(Request(headers, body), secret, now=t / 1000 + 301)


def test_document_becomes_a_release(api: Any, aws: Any) -> None:
    resp = publish(api)
    assert resp.status_code == 202, resp.body
    tree = source_tree(aws)
    assert set(tree) == {KEY, MAP}
    assert json.loads(tree[MAP]) == {
        "cms": "sanity",
        "entry": DOC_ID,
        "slug": "mobile-clinic-reaches-islands",
        "source_key": KEY,
        "published_at": "2018-12-19T15:00:00.000Z",
    }
    release = parse_release(tree[KEY], name=KEY)
    assert release.slug == "mobile-clinic-reaches-islands"  # from slug.current
    assert release.kind == "statement"
    assert release.body_format == "html"
    assert release.body == (
        "<h2>First week</h2><p>The clinic saw <strong>400 people</strong>. "
        '<a href="https://harborlight.example/clinic" rel="noopener noreferrer">Details</a>'
        "</p><ul><li>Vaccinations</li><li><em>Check-ups</em></li></ul>"
    )
    assert release.image is not None
    # the asset reference resolves to Sanity's image CDN for the configured project
    assert release.image.url == (
        "https://cdn.sanity.io/images/abc123xy/production/Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000.jpg"
    )
    assert release.image.alt == "The clinic boat at the jetty"


def test_delete_operation_deletes(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    body = payload("sanity_delete.json")
    resp = post(api, body, sanity_headers(body, SECRET, operation="delete"))
    assert resp.status_code == 202 and body_json(resp)["action"] == "unpublish"
    assert body_json(resp)["key"] == KEY
    assert source_tree(aws) == {}


def test_slug_change_replaces_the_file(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    doc = payload_obj("sanity_document.json") | {"operation": "update"}
    doc["slug"] = {"_type": "slug", "current": "mobile-clinic-visits-islands"}
    resp = publish(api, json.dumps(doc).encode(), operation="update")
    assert resp.status_code == 202 and body_json(resp)["removed"] == [KEY]
    new_key = "releases/mobile-clinic-visits-islands.json"
    assert set(source_tree(aws)) == {new_key, MAP}
    body = payload("sanity_delete.json")
    assert post(api, body, sanity_headers(body, SECRET, operation="delete")).status_code == 202
    assert source_tree(aws) == {}


def test_operation_in_the_signed_body_wins_over_the_header(api: Any, aws: Any) -> None:
    assert publish(api).status_code == 202
    # a signed body saying "update", replayed with its unsigned header changed to "delete"
    doc = payload_obj("sanity_document.json") | {"operation": "update"}
    body = json.dumps(doc).encode()
    headers = sanity_headers(body, SECRET, operation="delete")
    assert post(api, body, headers).status_code == 202
    assert set(source_tree(aws)) == {KEY, MAP}


def test_drafts_are_ignored(api: Any, aws: Any) -> None:
    doc = payload_obj("sanity_document.json")
    doc["_id"] = "drafts." + doc["_id"]
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 202 and body_json(resp)["status"] == "ignored"
    assert source_tree(aws) == {}


def test_tampered_body_is_refused(api: Any, aws: Any) -> None:
    body = payload("sanity_document.json")
    headers = sanity_headers(body, SECRET)
    assert post(api, body.replace(b"400 people", b"4000 people"), headers).status_code == 401
    assert source_tree(aws) == {}


def test_wrong_secret_is_refused(api: Any, aws: Any) -> None:
    body = payload("sanity_document.json")
    assert post(api, body, sanity_headers(body, "other")).status_code == 401
    assert source_tree(aws) == {}


def test_stale_timestamp_is_refused(api: Any, aws: Any) -> None:
    resp = publish(api, ts_ms=int((time.time() - 600) * 1000))
    assert resp.status_code == 401
    assert source_tree(aws) == {}


@pytest.mark.parametrize("header", [None, "", "t=1633519811129", "v1=abc", "t=1633519811,v1=abc"])
def test_missing_or_malformed_signature(api: Any, aws: Any, header: str | None) -> None:
    body = payload("sanity_document.json")
    headers = sanity_headers(body, SECRET)
    if header is None:
        del headers["sanity-webhook-signature"]
    else:
        headers["sanity-webhook-signature"] = header
    assert post(api, body, headers).status_code == 401
    assert source_tree(aws) == {}


def test_no_secret_configured_refuses(api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSROOM_SANITY_SECRET")
    assert publish(api).status_code == 401
    assert source_tree(aws) == {}


def test_oversized_body_is_413(api: Any, aws: Any) -> None:
    body = oversized(payload("sanity_document.json"))
    assert post(api, body, sanity_headers(body, SECRET)).status_code == 413
    assert source_tree(aws) == {}


def test_invalid_document_is_422(api: Any, aws: Any) -> None:
    doc = payload_obj("sanity_document.json")
    doc["kind"] = "opinion"
    doc["slug"] = {"_type": "slug", "current": "Not a slug"}
    doc["body"] = [{"_type": "youtube", "url": "https://youtu.be/x"}]  # no text at all
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 422
    assert {e["loc"] for e in body_json(resp)["errors"]} == {"kind", "slug", "body"}
    assert source_tree(aws) == {}


def test_projection_without_id_is_422(api: Any, aws: Any) -> None:
    doc = payload_obj("sanity_document.json")
    del doc["_id"]
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 422
    assert body_json(resp)["errors"][0]["loc"] == "_id"
    assert source_tree(aws) == {}


# ------------------------------------------------------ translations, images
EN_KEY = "releases/flood-shelters-open-riverside.json"
FR_KEY = "releases/abris-ouverts-riverside.json"


def test_document_internationalization_gives_linked_releases(api: Any, aws: Any) -> None:
    for name in ("sanity_i18n_en.json", "sanity_i18n_fr.json"):
        resp = publish(api, payload(name))
        assert resp.status_code == 202, resp.body
    tree = source_tree(aws)
    en, fr = json.loads(tree[EN_KEY]), json.loads(tree[FR_KEY])
    assert (en["language"], fr["language"]) == ("en", "fr")
    assert en["translation_key"] == fr["translation_key"] == "c0ffee00-1234-4abc-9def-0123456789ab"
    # a Sanity date field (no time): midnight in the site's time zone (UTC here)
    assert en["published_at"] == "2024-05-14T00:00:00+00:00"
    # the image inside Portable Text, at Sanity's CDN
    assert (
        '<figure><img src="https://cdn.sanity.io/images/abc123xy/production/'
        'Tb9Ew8CXIwaY6R1kjMvI0uRR-1600x1067.jpg" alt="Families in the school gym">'
        "<figcaption>The school gym on Tuesday night</figcaption></figure>"
    ) in en["body"]
    # deleting the French document leaves the English release
    gone = json.dumps(
        {
            "_id": "0e9f8a7b-6c5d-4e3f-a2b1-c0d9e8f7a6b5",
            "_type": "pressRelease",
            "operation": "delete",
        }
    ).encode()
    assert post(api, gone, sanity_headers(gone, SECRET, operation="delete")).status_code == 202
    assert EN_KEY in source_tree(aws) and FR_KEY not in source_tree(aws)


def test_both_documents_reach_the_site_linked(api: Any, aws: Any, app_module: Any) -> None:
    from support import PUBLIC, public_tree, sqs_event

    for name, key in (("sanity_i18n_en.json", EN_KEY), ("sanity_i18n_fr.json", FR_KEY)):
        assert publish(api, payload(name)).status_code == 202
        assert app_module.sync_release(sqs_event(key), None) == {"batchItemFailures": []}
    site = public_tree(aws, PUBLIC)
    for slug in ("flood-shelters-open-riverside", "abris-ouverts-riverside"):
        page = site[f"releases/{slug}/index.html"].decode()
        assert (
            'hreflang="fr" href="https://news.example.org/releases/abris-ouverts-riverside/"'
            in page
        )
        assert (
            'hreflang="en" href="https://news.example.org/releases/flood-shelters-open-riverside/"'
        ) in page


def test_tag_reference_error_names_the_cms_field(
    app_module: Any, aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSROOM_SANITY_SECRET", SECRET)
    monkeypatch.setenv(
        "NEWSROOM_CMS_FIELD_MAP", json.dumps({"sanity": {"topics": "tags", **PROJECT}})
    )
    api = client(app_module, tmp_path)
    doc = payload_obj("sanity_document.json")
    del doc["topics"]
    doc["tags"] = [{"_type": "reference", "_ref": "tag-health", "_key": "k1"}]
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 422
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "topics" and "CMS field 'tags'" in error["msg"]
    assert "tags[]->name" in error["msg"]


def test_document_internationalization_1x_fields(api: Any, aws: Any) -> None:
    """The plugin's first version: ``__i18n_lang`` and ``__i18n_base``."""
    doc = payload_obj("sanity_i18n_fr.json")
    del doc["language"], doc["translationKey"]
    doc["_id"] = "7d1c2b3a-4e5f-4061-8273-9a8b7c6d5e4f__i18n_fr"
    doc["__i18n_lang"] = "fr"
    doc["__i18n_base"] = {"_type": "reference", "_ref": "7d1c2b3a-4e5f-4061-8273-9a8b7c6d5e4f"}
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 202, resp.body
    fr = json.loads(source_tree(aws)[FR_KEY])
    assert fr["language"] == "fr"
    assert fr["translation_key"] == "7d1c2b3a-4e5f-4061-8273-9a8b7c6d5e4f"


def test_translation_key_holding_a_lone_surrogate_is_hashed(api: Any, aws: Any) -> None:
    """A group id that is not slug-shaped becomes a digest of it, whatever text it
    holds (a lone surrogate cannot be encoded as UTF-8: it was a 500)."""
    doc = payload_obj("sanity_document.json")
    doc["translationKey"] = "group-\udc00"
    body = json.dumps(doc).encode()
    resp = post(api, body, sanity_headers(body, SECRET))
    assert resp.status_code == 202, resp.body
    stored = json.loads(source_tree(aws)[body_json(resp)["key"]])
    assert re.fullmatch(r"sanity-[0-9a-f]{24}", stored["translation_key"])


# ------------------------------------------- image URLs come from signed data only
def unconfigured(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The route with no ``project_id``/``dataset`` in the field map."""
    return hook_client(app_module, tmp_path, monkeypatch, NEWSROOM_SANITY_SECRET=SECRET)


def test_unsigned_project_headers_never_choose_the_image(api: Any, aws: Any) -> None:
    body = payload("sanity_document.json")
    headers = sanity_headers(body, SECRET) | {
        "sanity-project-id": "attacker1",
        "sanity-dataset": "elsewhere",
    }
    assert post(api, body, headers).status_code == 202
    image = json.loads(source_tree(aws)[KEY])["image"]
    assert image["url"].startswith("https://cdn.sanity.io/images/abc123xy/production/")


def test_asset_reference_without_a_configured_project_is_422_saying_how_to_fix(
    app_module: Any, aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = unconfigured(app_module, tmp_path, monkeypatch)
    resp = publish(api)  # the request's headers name a project: not signed, not used
    assert resp.status_code == 422, resp.body
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "image"
    assert "CMS field 'image'" in error["msg"]
    assert '"project_id" and "dataset"' in error["msg"] and "asset->{url}" in error["msg"]
    assert source_tree(aws) == {}


def test_portable_text_image_reference_without_a_configured_project_is_422(
    app_module: Any, aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = unconfigured(app_module, tmp_path, monkeypatch)
    resp = publish(api, payload("sanity_i18n_en.json"))
    assert resp.status_code == 422, resp.body
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "body" and "asset->{url}" in error["msg"]
    assert source_tree(aws) == {}


def test_projected_asset_url_needs_no_configured_project(
    app_module: Any, aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = unconfigured(app_module, tmp_path, monkeypatch)
    doc = payload_obj("sanity_document.json")
    url = "https://cdn.sanity.io/images/abc123xy/production/Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000.jpg"
    doc["image"]["asset"] = {"_id": "image-Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000-jpg", "url": url}
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 202, resp.body
    assert json.loads(source_tree(aws)[KEY])["image"]["url"] == url


def test_an_asset_reference_that_is_not_an_image_is_422_naming_the_field(
    api: Any, aws: Any
) -> None:
    doc = payload_obj("sanity_document.json")
    doc["image"]["asset"] = {"_type": "reference", "_ref": "file-4f5e6d7c8b9a-pdf"}
    resp = publish(api, json.dumps(doc).encode())
    assert resp.status_code == 422, resp.body
    (error,) = body_json(resp)["errors"]
    assert error["loc"] == "image" and "file-4f5e6d7c8b9a-pdf" in error["msg"]
    assert source_tree(aws) == {}
