"""Atom feeds (RFC 4287): the site feed and one per topic, parsed by feedparser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import feedparser
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

ATOM = "{http://www.w3.org/2005/Atom}"

RELEASES = [
    # slug, published_at, updated_at, topics
    ("oldest", "2018-01-05T09:00:00+01:00", None, ["Clean Water"]),
    ("middle", "2018-06-01T12:00:00-04:00", "2018-12-24T08:30:00-05:00", ["Refugees and Migrants"]),
    ("newer", "2018-12-19T10:00:00-05:00", None, ["Clean Water", "Côte d'Ivoire"]),
    ("newest", "2018-12-20T22:30:00-05:00", None, []),
]


def docs() -> dict[str, dict]:
    out = {}
    for slug, published, updated, topics in RELEASES:
        doc = make_release(
            slug=slug,
            title=f"{slug.title()} <release> & “quotes”",
            summary=f"Summary of {slug}: 5 < 6 & done.",
            published_at=published,
            topics=topics,
        )
        if updated:
            doc["updated_at"] = updated
        out[f"releases/{slug}.json"] = doc
    return out


@pytest.fixture(scope="module")
def published() -> Published:
    return publish_once(docs(), {"NEWSROOM_FEED_SIZE": "3"})


@pytest.fixture
def site(app_module, aws, monkeypatch) -> dict[str, bytes]:
    monkeypatch.setenv("NEWSROOM_FEED_SIZE", "3")
    for key, doc in docs().items():
        publish(app_module, aws, key, doc)
    return public_tree(aws)


def parse(body: bytes) -> feedparser.FeedParserDict:
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def test_site_feed_parses_and_carries_the_required_elements(published) -> None:
    site = published.tree
    feed = parse(site["feed.xml"])
    assert feed.feed.title == "Test Newsroom"
    assert feed.feed.id == f"{SITE_URL}/feed.xml"
    assert feed.feed.author == "Test Newsroom"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": f"{SITE_URL}/feed.xml", "alternate": f"{SITE_URL}/"}
    # newest first, capped at NEWSROOM_FEED_SIZE
    assert [e.link for e in feed.entries] == [
        f"{SITE_URL}/releases/{s}/" for s in ("newest", "newer", "middle")
    ]
    for entry in feed.entries:
        assert entry.id == entry.link and entry.id.startswith(SITE_URL + "/releases/")
        assert entry.updated_parsed and entry.published_parsed
    newest = feed.entries[0]
    assert newest.title == "Newest <release> & “quotes”"
    assert newest.summary == "Summary of newest: 5 < 6 & done."
    assert newest.published == "2018-12-20T22:30:00-05:00"
    assert {t.term for t in newest.tags} == {"press-release"}
    # <updated> is the latest change among the entries (middle's update), not the clock
    assert feed.feed.updated == "2018-12-24T08:30:00-05:00"
    assert feed.entries[2].updated == "2018-12-24T08:30:00-05:00"


def test_feed_is_well_formed_atom_with_absolute_links(published) -> None:
    site = published.tree
    root = ET.fromstring(site["feed.xml"])
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None, tag
    for link in root.iter(f"{ATOM}link"):
        assert link.get("href", "").startswith(SITE_URL + "/")
    for entry in root.findall(f"{ATOM}entry"):
        for tag in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM}{tag}") is not None, tag


def test_one_feed_per_topic_with_only_its_releases(published) -> None:
    site = published.tree
    feed = parse(site["topics/clean-water/feed.xml"])
    assert feed.feed.title == "Test Newsroom: Clean Water"
    assert feed.feed.id == f"{SITE_URL}/topics/clean-water/feed.xml"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links["alternate"] == f"{SITE_URL}/topics/clean-water/"
    assert [e.id for e in feed.entries] == [
        f"{SITE_URL}/releases/newer/",
        f"{SITE_URL}/releases/oldest/",
    ]
    feed = parse(site["topics/cote-d-ivoire/feed.xml"])
    assert [e.id for e in feed.entries] == [f"{SITE_URL}/releases/newer/"]
    # every topic's front page exists with its feed, and links to it
    topic_pages = {
        k[: -len("index.html")]
        for k in site
        if k.startswith("topics/") and k.endswith("/index.html") and k.count("/") == 2
    }
    for prefix in topic_pages - {"topics/"}:
        assert prefix + "feed.xml" in site
        assert f'href="/{prefix}feed.xml"'.encode() in site[prefix + "index.html"]


def test_feed_type_and_autodiscovery(published) -> None:
    site = published.tree
    for key in ("feed.xml", "topics/clean-water/feed.xml"):
        assert published.types[key] == "application/atom+xml; charset=utf-8", key
    assert b'type="application/atom+xml"' in site["index.html"]
    assert b'href="/feed.xml"' in site["index.html"]


def test_feed_follows_unpublish_and_stays_valid_when_empty(app_module, aws, site) -> None:
    for key in docs():
        aws.delete_object(Bucket=SOURCE, Key=key)
        app_module.sync_release(sqs_event(key, "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    feed = parse(tree["feed.xml"])
    assert feed.entries == []
    assert feed.feed.id == f"{SITE_URL}/feed.xml"
    assert not any(k.endswith("/feed.xml") and k.startswith("topics/") for k in tree)


def test_feeds_are_deterministic_and_match_the_local_build(published, env, monkeypatch) -> None:
    site = published.tree
    monkeypatch.setenv("NEWSROOM_FEED_SIZE", "3")
    renderer = Renderer(Settings.from_env())
    sources = [(k, dumps(d)) for k, d in docs().items()]
    a = build_site(sources, renderer, now=datetime(2030, 1, 1, tzinfo=UTC))
    b = build_site(list(reversed(sources)), renderer, now=datetime(2040, 1, 1, tzinfo=UTC))
    for key in ("feed.xml", "topics/clean-water/feed.xml", "topics/refugees-and-migrants/feed.xml"):
        assert a.files[key] == b.files[key] == site[key], key
