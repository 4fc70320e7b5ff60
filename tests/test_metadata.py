"""Release page metadata: canonical, Open Graph, Twitter card, NewsArticle JSON-LD."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

from support import SITE_URL, make_release, public_tree, publish


class Head(HTMLParser):
    """Collects what crawlers read: <html lang>, meta tags, links, JSON-LD, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.json_ld: list[str] = []
        self.text: list[str] = []
        self._in_ld = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "meta" and ("property" in a or "name" in a):
            self.meta[a.get("property") or a["name"]] = a.get("content", "")
        elif tag == "link" and "rel" in a:
            self.links.setdefault(a["rel"], a.get("href", ""))
        elif tag == "script" and a.get("type") == "application/ld+json":
            self._in_ld = True
            self.json_ld.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_ld = False

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self.json_ld[-1] += data
        else:
            self.text.append(data)


def page(app_module, s3, **overrides: Any) -> tuple[Head, dict[str, Any], bytes]:
    doc = make_release(slug="clinics", **overrides)
    publish(app_module, s3, "releases/clinics.json", doc)
    body = public_tree(s3)["releases/clinics/index.html"]
    head = Head()
    head.feed(body.decode("utf-8"))
    assert len(head.json_ld) == 1
    return head, json.loads(head.json_ld[0]), body


URL = f"{SITE_URL}/releases/clinics/"


def test_release_page_carries_canonical_open_graph_and_twitter(app_module, aws) -> None:
    head, _, _ = page(app_module, aws)
    assert head.links["canonical"] == URL
    m = head.meta
    assert m["og:type"] == "article"
    assert m["og:url"] == URL
    assert m["og:title"] == "Coastal clinics reopen after the storm"
    assert m["og:description"] == "Three clinics reopen in Bayline."
    assert m["og:site_name"] == "Test Newsroom"
    assert m["og:image"] == f"{SITE_URL}/media/clinic.jpg"  # absolute
    assert m["og:image:alt"] == "Nurses outside a clinic"
    assert m["article:published_time"] == "2018-12-19T10:00:00-05:00"
    assert m["twitter:card"] == "summary_large_image"
    assert m["twitter:title"] == m["og:title"]
    assert m["twitter:description"] == m["og:description"]
    assert m["twitter:image"] == m["og:image"]
    assert m["description"] == "Three clinics reopen in Bayline."


def test_json_ld_is_a_news_article_with_the_required_fields(app_module, aws) -> None:
    _, ld, _ = page(app_module, aws, updated_at="2018-12-20T08:15:00-05:00")
    assert ld["@context"] == "https://schema.org"
    assert ld["@type"] == "NewsArticle"
    assert ld["headline"] == "Coastal clinics reopen after the storm"
    assert ld["datePublished"] == "2018-12-19T10:00:00-05:00"
    assert ld["dateModified"] == "2018-12-20T08:15:00-05:00"
    assert ld["image"] == [f"{SITE_URL}/media/clinic.jpg"]
    assert ld["publisher"]["@type"] == "Organization"
    assert ld["publisher"]["name"] == "Test Newsroom"
    assert ld["mainEntityOfPage"] == URL


def test_date_modified_defaults_to_date_published(app_module, aws) -> None:
    head, ld, body = page(app_module, aws)
    assert ld["dateModified"] == ld["datePublished"] == "2018-12-19T10:00:00-05:00"
    assert "article:modified_time" not in head.meta
    assert b"Updated" not in body


def test_updated_date_is_shown_when_set(app_module, aws) -> None:
    head, _, _ = page(app_module, aws, updated_at="2018-12-22T23:30:00-05:00")
    text = " ".join("".join(head.text).split())
    assert "December 19, 2018, 10:00 AM UTC\u221205:00" in text  # text: spaces collapsed
    assert "Updated December 22, 2018, 11:30 PM UTC\u221205:00" in text
    assert head.meta["article:modified_time"] == "2018-12-22T23:30:00-05:00"


def test_html_lang_follows_the_release_language(app_module, aws) -> None:
    head, ld, _ = page(app_module, aws, language="fr")
    assert head.lang == "fr"
    assert ld["inLanguage"] == "fr"
    head, _, _ = page(app_module, aws, language=None)
    assert head.lang == "en"
    head, _, _ = page(app_module, aws, language="pt-BR")
    assert head.lang == "pt-BR"


def test_meta_description_is_the_derived_excerpt_without_a_summary(app_module, aws) -> None:
    words = " ".join(f"word{n}" for n in range(100))
    head, ld, _ = page(app_module, aws, summary=None, body=f"Intro **bold** {words}")
    desc = head.meta["description"]
    assert desc.startswith("Intro bold word0 word1") and desc.endswith("…")
    assert len(desc.split()) <= 61
    assert head.meta["og:description"] == desc == ld["description"]


def test_text_fields_stay_text_in_meta_and_json_ld(app_module, aws) -> None:
    title = 'Ban on "</script><script>alert(1)</script>" & <b>tags</b>'
    head, ld, body = page(app_module, aws, title=title, summary="Less < more & so on")
    assert ld["headline"] == title
    assert head.meta["og:title"] == title
    assert head.meta["description"] == "Less < more & so on"
    # the only script element is the JSON-LD, and its text cannot close it
    assert body.count(b"<script") == 1
    assert b"<script>alert" not in body


def test_without_an_image_the_card_is_a_summary(app_module, aws) -> None:
    head, ld, _ = page(app_module, aws, image=None)
    assert head.meta["twitter:card"] == "summary"
    assert "og:image" not in head.meta
    assert "image" not in ld


def test_https_image_is_used_as_is(app_module, aws) -> None:
    img = {"url": "https://cdn.example.org/photo.jpg", "alt": "A photo"}
    head, ld, _ = page(app_module, aws, image=img)
    assert head.meta["og:image"] == "https://cdn.example.org/photo.jpg"
    assert ld["image"] == ["https://cdn.example.org/photo.jpg"]


def test_listing_pages_have_canonical_urls(app_module, aws) -> None:
    page(app_module, aws)
    tree = public_tree(aws)
    for key, body in tree.items():
        if not key.endswith(".html") or key == "404.html":
            continue
        head = Head()
        head.feed(body.decode())
        path = "/" + key[: -len("index.html")]
        assert head.links["canonical"] == SITE_URL + path, key


def test_the_site_share_image_stands_in_for_a_missing_one(app_module, aws, monkeypatch) -> None:
    monkeypatch.setenv("NEWSROOM_DEFAULT_IMAGE", "/media/share-card.png")
    head, ld, _ = page(app_module, aws, image=None)
    assert head.meta["og:image"] == f"{SITE_URL}/media/share-card.png"
    assert head.meta["twitter:card"] == "summary_large_image"
    assert ld["image"] == [f"{SITE_URL}/media/share-card.png"]
    assert "og:image:alt" not in head.meta
    # a release's own image still wins
    _, ld, _ = page(app_module, aws)
    assert ld["image"] == [f"{SITE_URL}/media/clinic.jpg"]


def test_a_share_image_must_be_https_or_a_site_path(monkeypatch) -> None:
    import pytest

    from chalicelib.errors import ConfigurationError
    from chalicelib.settings import Settings

    with pytest.raises(ConfigurationError, match="NEWSROOM_DEFAULT_IMAGE"):
        Settings.from_env({"NEWSROOM_DEFAULT_IMAGE": "http://example.org/x.png"})
    assert Settings.from_env({"NEWSROOM_DEFAULT_IMAGE": " /media/x.png "}).default_image == (
        "/media/x.png"
    )
