"""Bad and hostile input, from the corpus in tests/adversarial/.

Each file is uploaded to the source bucket and its S3 event handed to the real
``sync_release`` handler. A bad file gets a ``rejected`` receipt naming the
field, the handler returns normally, and the public bucket does not change by a
single byte. Hostile markup inside otherwise valid content is published,
sanitized. Either way, no public object carries executable markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import feedparser
import pytest
from invariants import all_markup_problems, link_problems, secrecy_problems
from support import SOURCE, dumps, make_release, public_tree, receipt, sqs_event

CORPUS = Path(__file__).resolve().parent / "adversarial"

# file -> the field the receipt must name first
REJECTED = {
    "invalid-json.json": "(file)",
    "invalid-utf8.json": "(file)",
    "json-array.json": "(file)",
    "json-string.json": "(file)",
    "null-file.json": "(file)",
    "missing-fields.json": "kind",
    "mistyped-fields.json": "title",
    "naive-datetime.json": "published_at",
    "date-only.json": "published_at",
    "unknown-field.json": "titel",
    "image-without-alt.json": "image.alt",
    "image-alt-missing.json": "image.alt",
    "slug-traversal.json": "slug",
    "slug-uppercase-script.json": "slug",
    "javascript-image-url.json": "image.url",
    "javascript-attachment-url.json": "attachments.0.url",
    "data-attachment-url.json": "attachments.0.url",
    "protocol-relative-url.json": "image.url",
    "http-url.json": "attachments.0.url",
    "control-characters.json": "title",
    "duplicate-keys.json": "title",
    "bad-email.json": "contacts.0.email",
    # poison: characters no page or feed can carry, named by their field
    "lone-surrogate-body.json": "body",
    "lone-surrogate-summary.json": "summary",
    "noncharacter-caption.json": "image.caption",
    "noncharacter-title.json": "title",
    "control-character-topic.json": "topics.2",
    "control-character-body-no-summary.json": "body",
    "control-character-field-name.json": "ti\\u0001tle",
    # every pattern covers the whole value; URLs are checked as written
    "slug-trailing-newline.json": "slug",
    "language-trailing-newline.json": "language",
    "tab-in-site-path-url.json": "image.url",
    "space-in-attachment-url.json": "attachments.0.url",
    "newline-in-url.json": "attachments.0.url",
    # bounded lists, and what the JSON decoder itself cannot take
    "too-many-topics.json": "topics",
    "too-many-contacts.json": "contacts",
    "too-many-attachments.json": "attachments",
    "deep-nesting.json": "(file)",
    "huge-number.json": "(file)",
}
PUBLISHED = [
    "hostile-markup-everywhere.json",
    "hostile-html-body.json",
    # character references to forbidden characters: published, without them
    "character-references-body.json",
    "character-references-html-body.json",
]


def test_the_corpus_is_covered() -> None:
    assert sorted(REJECTED) + sorted(PUBLISHED) == sorted(
        sorted(p.name for p in CORPUS.glob("*.json") if p.name in REJECTED)
    ) + sorted(p.name for p in CORPUS.glob("*.json") if p.name not in REJECTED)
    assert {p.name for p in CORPUS.glob("*.json")} == set(REJECTED) | set(PUBLISHED)


@pytest.fixture
def live_site(app_module: Any, aws: Any) -> dict[str, bytes]:
    """A site with one release live; returns its public tree."""
    aws.put_object(
        Bucket=SOURCE, Key="releases/holder.json", Body=dumps(make_release(slug="holder"))
    )
    app_module.sync_release(sqs_event("releases/holder.json"), None)
    tree = public_tree(aws)
    assert "releases/holder/index.html" in tree
    return tree


def handle(app_module: Any, aws: Any, key: str, body: bytes) -> dict:
    aws.put_object(Bucket=SOURCE, Key=key, Body=body)
    return app_module.sync_release(sqs_event(quote_plus(key, safe="/")), None)


def assert_rejected(aws: Any, key: str, out: dict, loc: str, before: dict) -> None:
    assert out == {"batchItemFailures": []}, "bad input is never sent back to the queue"
    r = receipt(aws, key)
    assert r["status"] == "rejected", r
    assert r["errors"], r
    assert r["errors"][0]["loc"] == loc, r["errors"]
    assert all(e["msg"] for e in r["errors"])
    after = public_tree(aws)
    assert after == before, "the public bucket is unchanged"
    assert all_markup_problems(after) == []
    assert secrecy_problems(after) == []


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_bad_file_is_rejected_and_changes_nothing_public(
    app_module: Any, aws: Any, live_site: dict[str, bytes], name: str
) -> None:
    key = f"releases/{name}"
    out = handle(app_module, aws, key, (CORPUS / name).read_bytes())
    assert_rejected(aws, key, out, REJECTED[name], live_site)


def test_bad_files_on_an_empty_site_publish_nothing(app_module: Any, aws: Any) -> None:
    for name in sorted(REJECTED):
        out = handle(app_module, aws, f"releases/{name}", (CORPUS / name).read_bytes())
        assert out == {"batchItemFailures": []}
        assert receipt(aws, f"releases/{name}")["status"] == "rejected"
    assert public_tree(aws) == {}


def test_oversized_file_is_rejected(app_module: Any, aws: Any, live_site: dict[str, bytes]) -> None:
    doc = make_release(body="x" * (1024 * 1024))
    out = handle(app_module, aws, "releases/huge.json", dumps(doc))
    assert_rejected(aws, "releases/huge.json", out, "(file)", live_site)
    assert "1 MiB" in receipt(aws, "releases/huge.json")["errors"][0]["msg"]


def test_second_file_claiming_a_held_slug(
    app_module: Any, aws: Any, live_site: dict[str, bytes]
) -> None:
    body = dumps(make_release(slug="holder", title="Impostor <script>alert(1)</script>"))
    out = handle(app_module, aws, "releases/impostor.json", body)
    assert_rejected(aws, "releases/impostor.json", out, "slug", live_site)
    assert "releases/holder.json" in receipt(aws, "releases/impostor.json")["errors"][0]["msg"]
    assert b"Impostor" not in b"".join(public_tree(aws).values())


def test_invalid_overwrite_keeps_the_live_version_byte_for_byte(
    app_module: Any, aws: Any, live_site: dict[str, bytes]
) -> None:
    out = handle(
        app_module, aws, "releases/holder.json", (CORPUS / "naive-datetime.json").read_bytes()
    )
    assert_rejected(aws, "releases/holder.json", out, "published_at", live_site)
    assert "stays live" in receipt(aws, "releases/holder.json")["message"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_hostile_markup_is_published_sanitized(
    app_module: Any, aws: Any, live_site: dict[str, bytes], name: str
) -> None:
    key = f"releases/{name}"
    out = handle(app_module, aws, key, (CORPUS / name).read_bytes())
    assert out == {"batchItemFailures": []}
    assert receipt(aws, key)["status"] == "published"
    tree = public_tree(aws)
    slug = json.loads((CORPUS / name).read_bytes())["slug"]
    assert f"releases/{slug}/index.html" in tree
    assert all_markup_problems(tree) == []
    assert link_problems(tree) == []
    # every HTML and XML object; index.json is data (application/json) and
    # keeps the text as the staff wrote it
    markup = b"\n".join(v for k, v in tree.items() if k.endswith((".html", ".xml"))).decode()
    for needle in (
        "<script>alert",
        "<img src=x",
        "<svg onload",
        "<iframe",
        "<style",
        "<form action=https://evil",
        "evil.example>",
        "<object",
    ):
        assert needle not in markup, needle
    # the only forms are the site's own (search box, e-mail sign-up): checked
    # by all_markup_problems above
    feed = feedparser.parse(tree["feed.xml"])
    assert not feed.bozo, feed.bozo_exception
    assert slug in {e.link.rstrip("/").rsplit("/", 1)[-1] for e in feed.entries}
    page = tree[f"releases/{slug}/index.html"].decode()
    # the text survives as text
    if name == "hostile-markup-everywhere.json":
        assert "&lt;/script&gt;&lt;script&gt;alert(" in page
        assert "Topic &lt;/script&gt;" in page
        doc = json.loads(tree["index.json"])
        titles = [r["title"] for r in doc["releases"]]
        assert any("</script><script>" in t for t in titles), "index.json keeps the text as text"


@pytest.mark.parametrize(
    "html",
    [
        "<p><script>alert(1)</script></p>",
        '<img src="x" onerror="alert(1)">',
        '<a href=" javascript:alert(1)">x</a>',
        '<a href="data:text/html,x">x</a>',
        '<script type="application/ld+json">{"a": "</script><script>alert(1)</script>"}</script>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="x">y</p>',
    ],
)
def test_the_markup_check_catches_executable_markup(html: str) -> None:
    from invariants import markup_problems

    assert markup_problems("x.html", html.encode())
