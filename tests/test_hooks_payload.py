"""A webhook body that cannot be read as a CMS entry is a 422 naming ``(file)``, on every
route, and writes nothing (``chalicelib/hooks/payload.py``): never a 500 the CMS would retry."""

from __future__ import annotations

import json
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
    source_tree,
    strapi_headers,
)

from chalicelib.hooks.payload import MAX_NESTING, too_deep

SECRET = "payload-test-secret-7d2e"
TOKEN = "payload-test-token-9c1b"


@pytest.fixture
def api(app_module: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return hook_client(
        app_module, tmp_path, monkeypatch,
        NEWSROOM_WEBHOOK_SECRET=SECRET, NEWSROOM_CONTENTFUL_SECRET=SECRET,
        NEWSROOM_STRAPI_TOKEN=TOKEN,
    )  # fmt: skip


def contentful_list(levels: int) -> dict[str, Any]:
    """A Rich Text document holding a list ``levels`` deep (each level: list,
    list item, paragraph), as Contentful sends an editor's nested bullets."""
    node: dict[str, Any] = {"nodeType": "text", "value": "deepest", "marks": [], "data": {}}
    for _ in range(levels):
        para = {"nodeType": "paragraph", "data": {}, "content": [node]}
        item = {"nodeType": "list-item", "data": {}, "content": [para]}
        node = {"nodeType": "unordered-list", "data": {}, "content": [item]}
    return {"nodeType": "document", "data": {}, "content": [node]}


def post_contentful(api: Any, levels: int) -> Any:
    doc = payload_obj("contentful_entry_publish.json")
    doc["fields"]["body"]["en-US"] = contentful_list(levels)
    body = json.dumps(doc).encode()
    return post_hook(api, "contentful", body, contentful_headers(body, SECRET))


def assert_unreadable(resp: Any, aws: Any, words: str) -> None:
    assert resp.status_code == 422, resp.body
    ((error,),) = [body_json(resp)["errors"]]
    assert error["loc"] == "(file)" and words in error["msg"]
    assert source_tree(aws) == {}


def test_rich_text_nested_a_hundred_lists_deep_is_422_not_500(api: Any, aws: Any) -> None:
    """Converting Rich Text recurses; a body nested deeper than any editor could
    make it is refused before, instead of a RecursionError (500)."""
    assert_unreadable(post_contentful(api, 100), aws, "levels deep")


def test_deeply_nested_strapi_blocks_are_422_not_500(api: Any, aws: Any) -> None:
    doc = payload_obj("strapi_entry_publish.json")
    block: dict[str, Any] = {"type": "text", "text": "deepest"}
    for _ in range(300):
        block = {"type": "list", "format": "unordered", "children": [block]}
    doc["entry"]["body"] = [block]
    body = json.dumps(doc).encode()
    resp = post_hook(api, "strapi", body, strapi_headers(TOKEN))
    assert_unreadable(resp, aws, "levels deep")


def test_lists_nested_as_deep_as_editors_make_them_are_published(api: Any, aws: Any) -> None:
    resp = post_contentful(api, 12)
    assert resp.status_code == 202, resp.body
    stored = json.loads(source_tree(aws)[body_json(resp)["key"]])
    assert stored["body"].count("<ul>") == 12 and "deepest" in stored["body"]


@pytest.mark.parametrize("cms", ["generic", "strapi"])
def test_a_number_too_long_to_read_is_422_not_500(api: Any, aws: Any, cms: str) -> None:
    """Python refuses to read an integer of more than 4,300 digits (a ValueError
    that is not a JSONDecodeError)."""
    body = b'{"action": "publish", "event": "entry.publish", "n": ' + b"7" * 5000 + b"}"
    headers = generic_headers(body, SECRET) if cms == "generic" else strapi_headers(TOKEN)
    assert_unreadable(post_hook(api, cms, body, headers), aws, "number too long")


def test_a_body_that_is_not_utf8_is_422(api: Any, aws: Any) -> None:
    body = payload("generic_publish.json").replace(b"Coastal", "Côtières".encode("latin-1"), 1)
    resp = post_hook(api, "generic", body, generic_headers(body, SECRET))
    assert_unreadable(resp, aws, "not UTF-8")


def test_nesting_limit() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_NESTING):
        nested = [nested]
    assert not too_deep(nested)
    assert too_deep({"x": nested})
    assert not too_deep("text") and not too_deep({})


def test_a_field_given_twice_is_422_as_in_an_uploaded_file(api: Any, aws: Any) -> None:
    """JSON parsers keep the last of two values silently; an uploaded release with
    a field twice is refused, and so is the same release sent to the webhook."""
    body = payload("generic_publish.json").replace(
        b'"title":', b'"title": "Draft title, replaced below",\n  "title":', 1
    )
    resp = post_hook(api, "generic", body, generic_headers(body, SECRET))
    assert resp.status_code == 422, resp.body
    assert body_json(resp)["errors"] == [{"loc": "title", "msg": "appears twice in the body"}]
    assert source_tree(aws) == {}


def test_a_name_given_twice_that_holds_an_address_is_not_repeated(api: Any, aws: Any) -> None:
    """As in an uploaded file: a key that may be an e-mail address is named
    without it, so the answer (which the CMS logs) carries no address."""
    body = payload("generic_publish.json").replace(
        b'"title":', b'"jane@example.org": 1,\n  "jane@example.org": 2,\n  "title":', 1
    )
    resp = post_hook(api, "generic", body, generic_headers(body, SECRET))
    assert resp.status_code == 422, resp.body
    assert b"jane@" not in resp.body
    assert body_json(resp)["errors"] == [
        {"loc": "(a name holding an @)", "msg": "appears twice in the body"}
    ]
