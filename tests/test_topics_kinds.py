"""Topic pages (topics/<slug>/) and kind pages (kinds/<kind>/)."""

from __future__ import annotations

import re

import pytest
from conftest import SOURCE, make_release, public_tree, s3_event, upload

from chalicelib.text import topic_slug

KINDS = ["press-release", "report", "statement", "campaign-update", "victory"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Refugees and Migrants", "refugees-and-migrants"),
        ("Côte d'Ivoire", "cote-d-ivoire"),
        ("  Clean   Water!! ", "clean-water"),
        ("COVID-19", "covid-19"),
        ("Women's Rights & Gender", "women-s-rights-gender"),
        ("São Tomé e Príncipe", "sao-tome-e-principe"),
        ("Ａｒｃｔｉｃ", "arctic"),  # full-width letters fold under NFKD
    ],
)
def test_topic_slugs_are_predictable(name: str, slug: str) -> None:
    assert topic_slug(name) == slug


def links(body: bytes) -> list[str]:
    return re.findall(r'<a href="(/releases/[^"]+)"', body.decode())


def publish(app_module, s3, slug: str, **fields) -> None:
    upload(s3, f"releases/{slug}.json", make_release(slug=slug, **fields))
    app_module.sync_release(s3_event(f"releases/{slug}.json"), None)


@pytest.fixture
def site(app_module, aws) -> dict[str, bytes]:
    publish(app_module, aws, "r1", kind="report", topics=["Refugees and Migrants"])
    publish(
        app_module,
        aws,
        "r2",
        kind="press-release",
        topics=["REFUGEES and migrants", "Clean Water"],
        published_at="2018-12-20T10:00:00-05:00",
    )
    publish(app_module, aws, "r3", kind="statement", topics=["Clean Water"])
    return public_tree(aws)


def test_a_page_per_topic_listing_its_releases(site) -> None:
    # two spellings with one slug share one page
    assert links(site["topics/refugees-and-migrants/index.html"]) == [
        "/releases/r2/",
        "/releases/r1/",
    ]
    assert sorted(links(site["topics/clean-water/index.html"])) == [
        "/releases/r2/",
        "/releases/r3/",
    ]
    index = site["topics/index.html"].decode()
    assert 'href="/topics/clean-water/"' in index
    assert 'href="/topics/refugees-and-migrants/"' in index
    topic_pages = sorted(k for k in site if re.fullmatch(r"topics/[^/]+/index\.html", k))
    assert topic_pages == [
        "topics/clean-water/index.html",
        "topics/refugees-and-migrants/index.html",
    ]


def test_release_pages_link_to_their_topics(site) -> None:
    page = site["releases/r2/index.html"].decode()
    assert 'href="/topics/refugees-and-migrants/">REFUGEES and migrants</a>' in page
    assert 'href="/topics/clean-water/">Clean Water</a>' in page


def test_kind_pages_show_only_that_kind(site) -> None:
    assert links(site["kinds/report/index.html"]) == ["/releases/r1/"]
    assert links(site["kinds/press-release/index.html"]) == ["/releases/r2/"]
    assert links(site["kinds/statement/index.html"]) == ["/releases/r3/"]
    assert links(site["kinds/victory/index.html"]) == []
    assert b'<h1 class="page-title">Reports</h1>' in site["kinds/report/index.html"]


def test_every_page_links_to_every_kind(site) -> None:
    for key in ("index.html", "releases/r1/index.html", "topics/clean-water/index.html"):
        body = site[key].decode()
        for kind in KINDS:
            assert f'href="/kinds/{kind}/"' in body, (key, kind)


def test_a_topic_page_goes_when_its_last_release_does(app_module, aws, site) -> None:
    aws.delete_object(Bucket=SOURCE, Key="releases/r1.json")
    app_module.sync_release(s3_event("releases/r1.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert links(tree["topics/refugees-and-migrants/index.html"]) == ["/releases/r2/"]
    assert links(tree["kinds/report/index.html"]) == []
    aws.delete_object(Bucket=SOURCE, Key="releases/r2.json")
    app_module.sync_release(s3_event("releases/r2.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert not any(k.startswith("topics/refugees-and-migrants/") for k in tree)
    assert b"refugees-and-migrants" not in tree["topics/index.html"]
