"""POST /hooks/generic through the Chalice test client, over moto S3."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import time_machine
from hooks_support import (
    body_json,
    generic_headers,
    hook_client,
    oversized,
    payload,
    payload_obj,
    post_hook,
    source_tree,
)
from support import PUBLIC, public_tree, sqs_event, upload

from chalicelib.core.model import parse_release, release_from_obj
from chalicelib.hooks import verify
from chalicelib.hooks.base import Request
from chalicelib.hooks.cms import generic, registry

SECRET = "generic-test-secret-0f9e8d7c"
KEY = "releases/clinics-reopen-after-storm.json"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(app_module, tmp_path, monkeypatch, NEWSROOM_WEBHOOK_SECRET=SECRET)


def post(api: Any, body: bytes, headers: dict[str, str]) -> Any:
    return post_hook(api, "generic", body, headers)


def test_signed_release_writes_exactly_that_release(api: Any, aws: Any, app_module: Any) -> None:
    body = payload("generic_publish.json")
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 202, resp.body
    assert body_json(resp) == {
        "status": "accepted",
        "action": "publish",
        "key": KEY,
        "slug": "clinics-reopen-after-storm",
    }
    tree = source_tree(aws)
    assert set(tree) == {KEY}
    sent = payload_obj("generic_publish.json")
    sent.pop("action")
    assert json.loads(tree[KEY]) == sent
    # what sync_release will parse is the very release that was sent
    assert parse_release(tree[KEY], name=KEY) == release_from_obj(sent)

    # and the normal publishing path picks it up
    app_module.sync_release(sqs_event(KEY), None)
    assert "releases/clinics-reopen-after-storm/index.html" in public_tree(aws, PUBLIC)


def test_republish_overwrites(api: Any, aws: Any) -> None:
    doc = payload_obj("generic_publish.json")
    for title in ("First title", "Second title"):
        doc["title"] = title
        body = json.dumps(doc).encode()
        assert post(api, body, generic_headers(body, SECRET)).status_code == 202
    assert json.loads(source_tree(aws)[KEY])["title"] == "Second title"


def test_unpublish_deletes_the_release(api: Any, aws: Any) -> None:
    upload(aws, KEY, payload_obj("generic_publish.json") | {"action": None})
    assert set(source_tree(aws)) == {KEY}
    body = payload("generic_unpublish.json")
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 202
    assert body_json(resp)["key"] == KEY
    assert source_tree(aws) == {}


def test_tampered_body_is_refused(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    headers = generic_headers(body, SECRET)
    tampered = body.replace(b"Coastal clinics", b"Coastal casinos")
    resp = post(api, tampered, headers)
    assert resp.status_code == 401
    assert "signature" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_wrong_secret_is_refused(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    resp = post(api, body, generic_headers(body, "not-the-secret"))
    assert resp.status_code == 401
    assert source_tree(aws) == {}


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamp_is_refused(api: Any, aws: Any, skew: int) -> None:
    body = payload("generic_publish.json")
    # the clock stands still: on a busy machine a second could pass before the
    # check and bring "301 s ahead" back inside the window
    with time_machine.travel(time.time(), tick=False):
        resp = post(api, body, generic_headers(body, SECRET, t=int(time.time()) + skew))
    assert resp.status_code == 401
    assert "timestamp" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_timestamp_inside_window_is_accepted(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    resp = post(api, body, generic_headers(body, SECRET, t=int(time.time()) - 240))
    assert resp.status_code == 202
    assert set(source_tree(aws)) == {KEY}


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=abc", "t=123", "t=abc,v1=00", "sha256=deadbeef"],
)
def test_missing_or_malformed_signature_header(api: Any, aws: Any, header: str | None) -> None:
    body = payload("generic_publish.json")
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Newsroom-Signature"] = header
    resp = post(api, body, headers)
    assert resp.status_code == 401
    assert source_tree(aws) == {}


def test_no_secret_configured_refuses_everything(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSROOM_WEBHOOK_SECRET")
    body = payload("generic_publish.json")
    for secret in ("", SECRET):
        resp = post(api, body, generic_headers(body, secret))
        assert resp.status_code == 401
        assert "NEWSROOM_WEBHOOK_SECRET" in body_json(resp)["error"]
    assert source_tree(aws) == {}


def test_a_secret_set_with_a_final_line_feed_still_verifies(
    api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret read from a file keeps the file's last line feed; the sender
    signs with the secret alone."""
    monkeypatch.setenv("NEWSROOM_WEBHOOK_SECRET", SECRET + "\n")
    body = payload("generic_publish.json")
    assert post(api, body, generic_headers(body, SECRET)).status_code == 202
    assert set(source_tree(aws)) == {KEY}


def test_oversized_body_is_413(api: Any, aws: Any) -> None:
    body = oversized(payload("generic_publish.json"))
    assert len(body) > 1024 * 1024
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 413
    assert source_tree(aws) == {}


def test_invalid_release_is_422_with_field_errors(api: Any, aws: Any) -> None:
    doc = payload_obj("generic_publish.json")
    del doc["title"]
    doc["published_at"] = "2018-12-19T10:00:00"  # naive
    doc["image"] = {"url": "javascript:alert(1)", "alt": "x"}
    doc["titel"] = "typo"
    body = json.dumps(doc).encode()
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 422
    locs = {e["loc"] for e in body_json(resp)["errors"]}
    assert locs == {"title", "published_at", "image.url", "titel"}
    assert all(e["msg"] for e in body_json(resp)["errors"])
    assert source_tree(aws) == {}


@pytest.mark.parametrize(
    "doc, loc",
    [
        ({"slug": "a-b"}, "action"),
        ({"action": "delete", "slug": "a-b"}, "action"),
        ({"action": "unpublish"}, "slug"),
        ({"action": "unpublish", "slug": "../receipts/x"}, "slug"),
        ({"action": "publish", "slug": "Not A Slug", "title": "t"}, "slug"),
        ([1, 2], "(file)"),
    ],
)
def test_bad_action_or_slug_is_422(api: Any, aws: Any, doc: Any, loc: str) -> None:
    body = json.dumps(doc).encode()
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 422
    assert [e["loc"] for e in body_json(resp)["errors"]] == [loc]
    assert source_tree(aws) == {}


def test_an_address_in_the_slug_is_not_repeated_in_the_answer(api: Any, aws: Any) -> None:
    """The answer lands in the sender's logs: it names the field, never an address."""
    for action in ("publish", "unpublish"):
        doc = payload_obj("generic_publish.json") | {"action": action, "slug": "press@example.org"}
        body = json.dumps(doc).encode()
        resp = post(api, body, generic_headers(body, SECRET))
        assert resp.status_code == 422
        ((error,),) = [body_json(resp)["errors"]]
        assert error["loc"] == "slug" and "press@" not in resp.body.decode()
    assert source_tree(aws) == {}


def test_invalid_json_is_422(api: Any, aws: Any) -> None:
    body = b'{"action": "publish", "slug": '
    resp = post(api, body, generic_headers(body, SECRET))
    assert resp.status_code == 422
    assert body_json(resp)["errors"][0]["loc"] == "(file)"
    assert source_tree(aws) == {}


def test_verify_generic_accepts_any_of_several_v1_values() -> None:
    now = 1_700_000_000
    body = b'{"a": 1}'
    good = generic_headers(body, SECRET, t=now)["X-Newsroom-Signature"].split("v1=")[1]
    header = {"x-newsroom-signature": f"t={now},v1={'0' * 64},v1={good}"}
    generic.CMS.verify(Request(header, body), SECRET, now)
    with pytest.raises(verify.BadSignature):
        generic.CMS.verify(
            Request({"x-newsroom-signature": f"t={now},v1={'0' * 64}"}, body), SECRET, now
        )


def test_unknown_cms_is_404(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json")
    resp = api.http.post("/hooks/wordpress", headers=generic_headers(body, SECRET), body=body)
    assert resp.status_code == 404
    assert source_tree(aws) == {}


def test_each_cms_is_one_module_of_the_registry() -> None:
    found = registry()
    assert set(found) == {"generic", "contentful", "sanity", "strapi"}
    for name, cms in found.items():
        assert type(cms).__module__ == f"chalicelib.hooks.cms.{name}"


def test_log_line_names_the_fields_not_their_values(
    api: Any, aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    doc = json.loads(payload("generic_publish.json"))
    doc["contacts"] = [{"name": "Ada Ode", "email": "ada.ode@harborlight"}]
    body = json.dumps(doc).encode()
    with caplog.at_level("INFO", logger="newsroom.hooks"):
        assert post(api, body, generic_headers(body, SECRET)).status_code == 422
    (record,) = [r for r in caplog.records if r.getMessage() == "webhook"]
    assert record.errors == ["contacts.0.email"]  # type: ignore[attr-defined]
    assert "ada.ode" not in caplog.text
