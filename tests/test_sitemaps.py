"""sitemap.xml (an index over per-archive sitemaps) and the Google News sitemap."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from support import (
    SITE_URL,
    SOURCE,
    Published,
    dumps,
    make_release,
    public_tree,
    publish,
    publish_once,
    sqs_event,
)

from chalicelib.core.render import Renderer
from chalicelib.settings import Settings
from newsroom.build import build_site

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"

RELEASES = {
    # slug: (published_at, updated_at, language)
    "newest": ("2018-12-20T10:00:00-05:00", None, "en"),
    "within-window": ("2018-12-18T12:00:00-05:00", "2018-12-21T09:00:00-05:00", "fr"),
    "edge-of-window": ("2018-12-18T10:00:00-05:00", None, "pt-BR"),
    "outside-window": ("2018-12-18T09:59:59-05:00", None, "en"),
    "last-year": ("2017-03-02T08:00:00Z", None, "en"),
}


def docs() -> dict[str, dict]:
    out = {}
    for slug, (published, updated, lang) in RELEASES.items():
        doc = make_release(
            slug=slug,
            title=f"Title of {slug} & <co>",
            published_at=published,
            language=lang,
            topics=[f"Topic {slug}"],
        )
        if updated:
            doc["updated_at"] = updated
        out[f"releases/{slug}.json"] = doc
    return out


@pytest.fixture(scope="module")
def published() -> Published:
    return publish_once(docs(), {})


@pytest.fixture
def site(app_module, aws) -> dict[str, bytes]:
    for key, doc in docs().items():
        publish(app_module, aws, key, doc)
    return public_tree(aws)


def key_of(url: str) -> str:
    assert url.startswith(SITE_URL + "/"), url
    path = url[len(SITE_URL) + 1 :]
    return path + "index.html" if path == "" or path.endswith("/") else path


def sitemap_urls(tree: dict[str, bytes]) -> dict[str, str | None]:
    """loc -> lastmod over every sitemap the index names."""
    index = ET.fromstring(tree["sitemap.xml"])
    assert index.tag == f"{SM}sitemapindex"
    urls: dict[str, str | None] = {}
    for loc in index.iter(f"{SM}loc"):
        child = ET.fromstring(tree[key_of(loc.text)])
        assert child.tag == f"{SM}urlset"
        for url in child.findall(f"{SM}url"):
            lastmod = url.find(f"{SM}lastmod")
            urls[url.find(f"{SM}loc").text] = None if lastmod is None else lastmod.text
    return urls


def test_sitemap_index_covers_every_public_page(published) -> None:
    site = published.tree
    urls = sitemap_urls(site)
    pages = {k for k in site if k.endswith(".html") and k != "404.html"}
    assert {key_of(u) for u in urls} == pages
    for url in urls:
        assert url.startswith("https://news.example.org/"), url


def test_one_sitemap_per_month_of_releases(published) -> None:
    site = published.tree
    index = ET.fromstring(site["sitemap.xml"])
    locs = [loc.text for loc in index.iter(f"{SM}loc")]
    assert locs == [
        f"{SITE_URL}/sitemaps/pages.xml",
        f"{SITE_URL}/sitemaps/2018-12.xml",
        f"{SITE_URL}/sitemaps/2017-03.xml",
    ]
    # the month's releases, then the month's own listing pages
    m2017 = ET.fromstring(site["sitemaps/2017-03.xml"])
    assert [u.find(f"{SM}loc").text for u in m2017] == [
        f"{SITE_URL}/releases/last-year/",
        f"{SITE_URL}/archive/2017/03/",
        f"{SITE_URL}/kinds/press-release/2017/",
        f"{SITE_URL}/kinds/press-release/2017/03/",
        f"{SITE_URL}/topics/topic-last-year/2017/",
        f"{SITE_URL}/topics/topic-last-year/2017/03/",
    ]


def test_release_lastmod_is_the_last_change(published) -> None:
    site = published.tree
    urls = sitemap_urls(site)
    assert urls[f"{SITE_URL}/releases/within-window/"] == "2018-12-21T09:00:00-05:00"
    assert urls[f"{SITE_URL}/releases/newest/"] == "2018-12-20T10:00:00-05:00"


def test_an_emptied_month_leaves_the_index(app_module, aws, site) -> None:
    aws.delete_object(Bucket=SOURCE, Key="releases/last-year.json")
    app_module.sync_release(sqs_event("releases/last-year.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert "sitemaps/2017-03.xml" not in tree
    assert b"2017-03" not in tree["sitemap.xml"]
    assert f"{SITE_URL}/releases/last-year/" not in sitemap_urls(tree)


def test_news_sitemap_lists_only_the_last_two_days(published) -> None:
    site = published.tree
    root = ET.fromstring(site["news-sitemap.xml"])
    assert root.tag == f"{SM}urlset"
    entries = {}
    for url in root.findall(f"{SM}url"):
        news = url.find(f"{NEWS}news")
        entries[url.find(f"{SM}loc").text] = {
            "name": news.find(f"{NEWS}publication/{NEWS}name").text,
            "language": news.find(f"{NEWS}publication/{NEWS}language").text,
            "date": news.find(f"{NEWS}publication_date").text,
            "title": news.find(f"{NEWS}title").text,
        }
    # two days back from the newest release (2018-12-20T10:00-05:00), inclusive
    assert list(entries) == [
        f"{SITE_URL}/releases/newest/",
        f"{SITE_URL}/releases/within-window/",
        f"{SITE_URL}/releases/edge-of-window/",
    ]
    assert entries[f"{SITE_URL}/releases/newest/"] == {
        "name": "Test Newsroom",
        "language": "en",
        "date": "2018-12-20T10:00:00-05:00",
        "title": "Title of newest & <co>",
    }
    assert entries[f"{SITE_URL}/releases/within-window/"]["language"] == "fr"
    assert entries[f"{SITE_URL}/releases/edge-of-window/"]["language"] == "pt"


def test_sitemaps_are_xml_typed(published) -> None:
    site = published.tree
    for key in [k for k in site if k.endswith(".xml") and not k.endswith("feed.xml")]:
        assert published.types[key] == "application/xml", key


def test_sitemaps_are_deterministic_and_independent_of_the_clock(published, env) -> None:
    site = published.tree
    renderer = Renderer(Settings.from_env())
    sources = [(k, dumps(d)) for k, d in docs().items()]
    a = build_site(sources, renderer, now=datetime(2019, 1, 1, tzinfo=UTC))
    b = build_site(list(reversed(sources)), renderer, now=datetime(2035, 1, 1, tzinfo=UTC))
    keys = [k for k in a.files if k.endswith(".xml")]
    assert "news-sitemap.xml" in keys and "sitemap.xml" in keys
    for key in keys:
        assert a.files[key] == b.files[key] == site[key], key


def test_robots_txt_points_crawlers_at_the_sitemaps(published) -> None:
    site = published.tree
    robots = site["robots.txt"].decode()
    assert f"Sitemap: {SITE_URL}/sitemap.xml" in robots.splitlines()
    assert f"Sitemap: {SITE_URL}/news-sitemap.xml" in robots.splitlines()
    assert "Disallow: /\n" not in robots
    assert published.types["robots.txt"] == "text/plain; charset=utf-8"
