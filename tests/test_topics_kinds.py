"""Topic pages (topics/<slug>/) and kind pages (kinds/<kind>/)."""

from __future__ import annotations

import re

import pytest
from support import SOURCE, make_release, public_tree, publish, sqs_event

from chalicelib.core.text import topic_slug

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


def publish_slug(app_module, s3, slug: str, **fields) -> None:
    publish(app_module, s3, f"releases/{slug}.json", make_release(slug=slug, **fields))


@pytest.fixture
def site(app_module, aws) -> dict[str, bytes]:
    publish_slug(app_module, aws, "r1", kind="report", topics=["Refugees and Migrants"])
    publish_slug(
        app_module,
        aws,
        "r2",
        kind="press-release",
        topics=["REFUGEES and migrants", "Clean Water"],
        published_at="2018-12-20T10:00:00-05:00",
    )
    publish_slug(app_module, aws, "r3", kind="statement", topics=["Clean Water"])
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
    app_module.sync_release(sqs_event("releases/r1.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert links(tree["topics/refugees-and-migrants/index.html"]) == ["/releases/r2/"]
    assert links(tree["kinds/report/index.html"]) == []
    aws.delete_object(Bucket=SOURCE, Key="releases/r2.json")
    app_module.sync_release(sqs_event("releases/r2.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert not any(k.startswith("topics/refugees-and-migrants/") for k in tree)
    assert b"refugees-and-migrants" not in tree["topics/index.html"]


def test_every_release_of_a_kind_is_reachable_by_month(app_module, aws) -> None:
    for n, when in enumerate(["2016-03-01", "2017-04-01", "2017-04-20", "2018-06-01"]):
        publish_slug(app_module, aws, f"rep-{n}", kind="report", published_at=f"{when}T09:00:00Z")
    publish_slug(app_module, aws, "pr-0", kind="press-release", published_at="2017-01-01T09:00:00Z")
    tree = public_tree(aws)
    kind_page = tree["kinds/report/index.html"].decode()
    assert links(tree["kinds/report/index.html"]) == [f"/releases/rep-{n}/" for n in (3, 2, 1, 0)]
    for year in (2018, 2017, 2016):
        assert f'href="/kinds/report/{year}/"' in kind_page
    assert 'href="/kinds/report/2017/04/"' in tree["kinds/report/2017/index.html"].decode()
    assert links(tree["kinds/report/2017/04/index.html"]) == [
        "/releases/rep-2/",
        "/releases/rep-1/",
    ]
    assert links(tree["kinds/report/2016/03/index.html"]) == ["/releases/rep-0/"]
    assert "Reports from April 2017" in tree["kinds/report/2017/04/index.html"].decode()
    assert links(tree["kinds/press-release/2017/01/index.html"]) == ["/releases/pr-0/"]
    assert "kinds/press-release/2016/03/index.html" not in tree
    # every report is on exactly one month page
    month_pages = [k for k in tree if re.fullmatch(r"kinds/report/\d{4}/\d{2}/index\.html", k)]
    reached = [link for k in month_pages for link in links(tree[k])]
    assert sorted(reached) == [f"/releases/rep-{n}/" for n in range(4)]

    # the last March 2016 report goes: so does its month page and link
    aws.delete_object(Bucket=SOURCE, Key="releases/rep-0.json")
    app_module.sync_release(sqs_event("releases/rep-0.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert "kinds/report/2016/03/index.html" not in tree
    assert "kinds/report/2016/index.html" not in tree
    assert b"/kinds/report/2016/" not in tree["kinds/report/index.html"]


def test_a_topic_lists_its_newest_and_its_months_hold_the_rest(app_module, aws) -> None:
    for n, when in enumerate(["2016-03-01", "2017-04-01", "2017-04-20"]):
        publish_slug(
            app_module, aws, f"t-{n}", topics=["Clean Water"], published_at=f"{when}T09:00:00Z"
        )
    tree = public_tree(aws)
    front = tree["topics/clean-water/index.html"].decode()
    assert 'href="/topics/clean-water/2017/"' in front
    assert 'href="/topics/clean-water/2016/"' in front
    year = tree["topics/clean-water/2017/index.html"].decode()
    assert 'href="/topics/clean-water/2017/04/"' in year
    assert links(tree["topics/clean-water/2017/04/index.html"]) == [
        "/releases/t-2/",
        "/releases/t-1/",
    ]
    assert links(tree["topics/clean-water/2016/03/index.html"]) == ["/releases/t-0/"]


def test_the_kind_page_shows_the_newest_and_months_hold_the_rest(env) -> None:
    from datetime import UTC, datetime

    from support import dumps

    from chalicelib.core.render import Renderer
    from chalicelib.core.site import KIND_PAGE_SIZE
    from chalicelib.settings import Settings
    from newsroom.build import build_site

    count = KIND_PAGE_SIZE + 5
    sources = [
        (
            f"releases/r{n}.json",
            dumps(
                make_release(
                    slug=f"r{n}",
                    kind="report",
                    image=None,
                    published_at=f"{2015 + n % 4}-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                )
            ),
        )
        for n in range(count)
    ]
    files = build_site(sources, Renderer(Settings.from_env()), now=datetime.now(UTC)).files
    assert len(links(files["kinds/report/index.html"])) == KIND_PAGE_SIZE
    by_month = [
        link
        for key, body in files.items()
        if re.fullmatch(r"kinds/report/\d{4}/\d{2}/index\.html", key)
        for link in links(body)
    ]
    assert sorted(by_month) == sorted(f"/releases/r{n}/" for n in range(count))
