"""Rendering is pure: models in, bytes out, escaped and sanitized."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from support import dumps, make_release

from chalicelib.core.filters import json_for_script
from chalicelib.core.index import Entry, Index
from chalicelib.core.markup import body_html, plain_text
from chalicelib.core.model import parse_release
from chalicelib.core.render import Renderer
from chalicelib.settings import Settings

SETTINGS = Settings(
    site_url="https://news.example.org", site_title="Test Newsroom", press_email="press@example.org"
)


def release(**overrides: object):
    return parse_release(dumps(make_release(**overrides)), name="releases/clinics.json")


def page(**overrides: object) -> str:
    return Renderer(SETTINGS).release(release(**overrides)).page.decode()


def entry(**overrides: object) -> Entry:
    r = release(**overrides)
    out = Renderer(SETTINGS).release(r)
    return Entry.from_release(
        r,
        source_key="releases/x.json",
        site_url=SETTINGS.site_url,
        summary=out.summary,
        revision=out.revision,
    )


# Markdown and sanitizing -------------------------------------------------------------
@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        "[x](javascript:alert(1))",
        '<iframe src="https://evil.example"></iframe>',
        '<svg onload="alert(1)"></svg>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        "<style>body{display:none}</style>",
        '<form action="https://evil.example"><input name="q"></form>',
        '<p style="background:url(javascript:alert(1))">x</p>',
    ],
)
@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_body_html_is_sanitized(hostile: str, fmt: str) -> None:
    out = body_html(f"Intro\n\n{hostile}\n\nOutro", fmt).lower()
    for bad in (
        "<script",
        "onerror=",
        "onload=",
        '="javascript:',
        "<iframe",
        "<svg",
        '="data:',
        "<style",
        "<form",
        "<input",
        "style=",
    ):
        assert bad not in out, (bad, out)


def test_markdown_is_commonmark_with_tables() -> None:
    out = body_html(
        "## Heading\n\n- a\n- b\n\n> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "markdown"
    )
    assert (
        "<h2>Heading</h2>" in out
        and "<li>a</li>" in out
        and "<blockquote>" in out
        and "<table>" in out
    )


def test_h1_in_the_body_is_demoted_so_the_title_stays_the_only_h1() -> None:
    assert "<h1" not in body_html("# Big\n\ntext", "markdown")


def test_links_get_safe_rel() -> None:
    assert 'rel="noopener noreferrer"' in body_html("[site](https://example.org)", "markdown")


def test_plain_text_of_html() -> None:
    assert plain_text("<p>One &amp; <strong>two</strong></p><p>three</p>") == "One & two three"


# Release page -------------------------------------------------------------------------
def test_release_page_shows_everything_staff_wrote() -> None:
    html = page(
        updated_at="2018-12-20T09:00:00-05:00",
        attachments=[{"title": "Full report (PDF)", "url": "/media/report.pdf"}],
    )
    assert "<h1>Coastal clinics reopen after the storm</h1>" in html
    assert '<span class="kind">Press Release</span>' in html
    assert "December 19, 2018" in html and "Updated" in html and "December 20, 2018" in html
    assert 'src="/media/clinic.jpg" alt="Nurses outside a clinic"' in html
    assert (
        "The Bayline clinic on its first day back." in html
        and "Mara Quint/Harbor Light Alliance" in html
    )
    assert "<strong>reopened</strong>" in html
    assert 'href="/media/report.pdf"' in html
    assert 'href="mailto:press@harborlight.example"' in html and 'href="tel:+15550100"' in html
    assert 'href="/topics/cote-d-ivoire/"' in html and "Côte d&#39;Ivoire" in html


def test_release_page_metadata() -> None:
    html = page(language="fr")
    assert '<html lang="fr" dir="ltr">' in html
    assert '<link rel="canonical" href="https://news.example.org/releases/clinics/">' in html
    assert '<meta property="og:image" content="https://news.example.org/media/clinic.jpg">' in html
    assert '<meta name="description" content="Three clinics reopen in Bayline.">' in html
    ld = json.loads(
        re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    )
    assert (
        ld["@type"] == "NewsArticle" and ld["headline"] == "Coastal clinics reopen after the storm"
    )
    assert ld["datePublished"] == "2018-12-19T10:00:00-05:00"


def test_excerpt_is_derived_from_the_body_when_there_is_no_summary() -> None:
    body = (
        "## Heading\n\n"
        + " ".join(f"w{i}" for i in range(40))
        + "\n\n### Sub\n\n"
        + " ".join(f"v{i}" for i in range(40))
    )
    out = Renderer(SETTINGS).release(release(summary=None, body=body))
    # running text only: headings are not part of the excerpt
    assert (
        out.summary.startswith("w0 w1")
        and "Heading" not in out.summary
        and "Sub" not in out.summary
    )
    assert out.summary.endswith("…") and len(out.summary.split()) == 60


def test_a_body_of_headings_only_still_gets_an_excerpt() -> None:
    out = Renderer(SETTINGS).release(release(summary=None, body="## Only a heading"))
    assert out.summary == "Only a heading"


HOSTILE = '</script><script>alert(1)</script>"><img src=x onerror=alert(1)>&'


def test_plain_text_fields_are_escaped_everywhere() -> None:
    html = page(
        title=HOSTILE,
        summary=HOSTILE,
        image={"url": "/media/a.jpg", "alt": HOSTILE, "caption": HOSTILE, "credit": HOSTILE},
        topics=["<script>alert(1)</script>"],
        contacts=[{"name": HOSTILE, "email": "a@b.org", "phone": "+1 555"}],
        attachments=[{"title": HOSTILE, "url": "/media/a.pdf"}],
    )
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert html.count("<script") == 1  # only the JSON-LD block
    ld_text = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in ld_text and ">" not in ld_text
    assert json.loads(ld_text)["headline"] == HOSTILE


def test_json_for_script_is_inert_in_html() -> None:
    out = str(json_for_script({"a": "</script><!-- & \u2028"}))
    assert "<" not in out and ">" not in out and "&" not in out
    assert json.loads(out) == {"a": "</script><!-- & \u2028"}


# Listings -----------------------------------------------------------------------------
def test_front_page_lists_entries_with_everything_a_reader_needs() -> None:
    r = Renderer(
        Settings(
            site_url="https://n.example",
            site_title="Harbor News",
            intro="Our intro.",
            press_email="press@n.example",
        )
    )
    html = r.front((entry(),)).decode()
    assert "Harbor News" in html and "Our intro." in html and "mailto:press@n.example" in html
    assert '<a href="/releases/clinics/">Coastal clinics reopen after the storm</a>' in html
    assert (
        "Press Release" in html
        and "December 19, 2018" in html
        and "Three clinics reopen in Bayline." in html
    )
    assert 'alt="Nurses outside a clinic"' in html and "Mara Quint/Harbor Light Alliance" in html


def test_listings_sharing_cards_give_the_same_bytes_and_never_mix_up_entries() -> None:
    """A card is rendered once per entry while cards are shared; an entry with
    the same slug but other fields (another object) gets its own card."""
    r = Renderer(SETTINGS)
    a, b = entry(title="First title"), entry(title="Second title")
    c = entry(slug="other", title="Third title", image=None, language="fr")

    def pages() -> list[bytes]:
        return [
            r.listing(path="/p/", heading="P", entries=(a, c)),
            r.listing(path="/q/", heading="Q", entries=(c, a)),  # eagerness differs by place
            r.front((b, c)),
            r.listing(path="/r/", heading="R", entries=(b, a, c)),
        ]

    alone = pages()
    with r.sharing_cards():
        shared = pages()
        assert r.cards.seen  # cards were kept for reuse
    assert shared == alone
    assert b"Second title" not in shared[0] and b"First title" not in shared[2]
    assert not r.cards.seen and not r.cards.on  # nothing outlives the batch
    assert pages() == alone


def test_template_globals_are_the_environments_live_with_a_templates_own_on_top() -> None:
    """A template's globals keep Jinja's meaning (its own over the
    environment's, a global set later seen by templates already loaded), with
    keys that a ``{% from … import %}`` can take the difference of quickly."""
    from collections import ChainMap

    r = Renderer(SETTINGS)
    t = r.env.get_template("release.html")
    own = r.env.get_template("listing.html", globals={"nav": "topics"})
    assert list(t.globals) == list(ChainMap(*t.globals.maps)) and "partial" in t.globals.keys()
    assert own.globals["nav"] == "topics" and r.env.globals["nav"] == ""
    r.env.globals["added_later"] = "x"
    assert "added_later" in t.globals.keys() and t.globals["added_later"] == "x"
    assert {"added_later", "nav"} - t.globals.keys() == set()
    page = r.release(release()).page
    assert page == Renderer(SETTINGS).release(release()).page


def test_rendering_is_deterministic() -> None:
    a = Renderer(SETTINGS).release(release()).page
    b = Renderer(SETTINGS).release(release()).page
    assert a == b
    idx = Index.build([entry()])
    assert idx.to_bytes() == Index.from_bytes(idx.to_bytes()).to_bytes()


def test_theme_fingerprint_changes_with_rendering_settings() -> None:
    assert Renderer(SETTINGS).theme != Renderer(Settings(site_url="https://other.example")).theme
    assert Renderer(SETTINGS).theme == Renderer(SETTINGS).theme


def test_theme_fingerprint_covers_every_core_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint hashes the whole ``chalicelib/core`` package: a module
    added to it, or moved within it, changes the fingerprint without anyone
    keeping a list of files up to date."""
    from chalicelib.core import render

    core = tmp_path / "core"
    shutil.copytree(render.CORE_DIR, core, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(render, "CORE_DIR", core)
    before = Renderer(SETTINGS).theme
    assert before == Renderer(SETTINGS).theme

    (core / "extra.py").write_text('"""A new core module."""\n')
    added = Renderer(SETTINGS).theme
    assert added != before

    (core / "sub").mkdir()
    (core / "extra.py").rename(core / "sub" / "extra.py")
    moved = Renderer(SETTINGS).theme
    assert moved not in (before, added)

    (core / "sub" / "extra.py").unlink()
    assert Renderer(SETTINGS).theme == before


# Defence in depth: the model refuses characters XML forbids, but whatever gets
# past it (an old index entry, a future code path) never reaches a feed,
# sitemap or JSON-LD block.

POISON = "a\x08b\x00c\ufffed\uffffe\ud800f\x1b"


def test_feeds_and_sitemaps_never_carry_a_forbidden_character() -> None:
    import dataclasses
    import xml.etree.ElementTree as ET

    import feedparser

    good = entry(topics=["Water"])
    bad = dataclasses.replace(
        good, title="Title " + POISON, summary="Summary " + POISON, topics=("Water " + POISON,)
    )
    r = Renderer(dataclasses.replace(SETTINGS, site_title="Site " + POISON))
    outputs = {
        "feed.xml": r.feed(
            entries=(bad, good), title="Feed " + POISON, path="/feed.xml", alt_path="/"
        ),
        "news-sitemap.xml": r.news_sitemap((bad, good)),
        "sitemap.xml": r.urlset(((bad.url + POISON, bad.modified.isoformat()),)),
        "sitemap-index.xml": r.sitemap_index(("https://news.example.org/s" + POISON + ".xml",)),
    }
    for key, body in outputs.items():
        text = body.decode("utf-8")  # a lone surrogate could not have been encoded
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", text), key
        ET.fromstring(body)  # well-formed XML
    feed = feedparser.parse(outputs["feed.xml"])
    assert not feed.bozo, feed.bozo_exception
    assert [e.title for e in feed.entries][0].startswith("Title a")


def test_json_ld_never_carries_a_forbidden_character() -> None:
    import xml.etree.ElementTree as ET

    r = release(topics=["Water"])
    bad = r.model_copy(update={"title": "Title " + POISON, "topics": ("Water " + POISON,)})
    html = Renderer(SETTINGS).release(bad).page.decode("utf-8")
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", block)
    data = json.loads(block)
    assert data["headline"].startswith("Title a")
    ET.fromstring(f"<x>{block.replace('&', '&amp;')}</x>")  # XML can carry it
    assert json_for_script({"a": "\ud800\ufffe"}) == '{"a": "\ufffd\ufffd"}'


def test_character_references_to_forbidden_characters_are_dropped_from_bodies() -> None:
    for body, fmt in [
        ("A &#8; B &#xFFFE; C &#xffff; D &#x1F; E", "markdown"),
        ("<p>A &#8; B &#xFFFE; C &#xffff; D &#xD800; E</p>", "html"),
    ]:
        html = body_html(body, fmt)
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]", html), html
        assert "A \ufffd B \ufffd C \ufffd D \ufffd E" in html
    out = Renderer(SETTINGS).release(release(body="Tab &#8; here &#xFFFE;.", summary=None))
    assert out.summary == "Tab \ufffd here \ufffd."


def test_quotes_are_typographic_in_title_standfirst_and_body() -> None:
    html = page(
        title='The "Safe Harbor" act passes',
        summary="It's law.",
        body='She said: "We won." It\'s done -- finally...',
    )
    assert "<h1>The “Safe Harbor” act passes</h1>" in html
    assert '<p class="standfirst">It’s law.</p>' in html
    assert "“We won.” It’s done – finally…" in html


def test_release_page_shows_standfirst_time_zone_updated_and_share_links() -> None:
    html = page(updated_at="2018-12-20T09:30:00-05:00")
    assert '<p class="standfirst">Three clinics reopen in Bayline.</p>' in html
    assert "December 19, 2018, 10:00\u202fAM UTC\u221205:00" in html
    assert '<p class="updated"><strong>Updated</strong>' in html
    assert "December 20, 2018, 9:30\u202fAM" in html
    assert (
        'href="mailto:?subject=Coastal%20clinics%20reopen%20after%20the%20storm&amp;body=' in html
    )
    assert (
        '<input id="share-url" type="url" value="https://news.example.org/releases/clinics/" readonly'
        in html
    )


def test_a_kept_card_follows_what_the_entry_shows_not_the_object() -> None:
    """Cards kept from one batch to the next (``sharing_cards(keep=True)``)
    are found by what they show: an equal entry read again (another object)
    reuses its card, and one that differs in what a card shows (the offset
    its date is written in: the same instant, another day shown) gets its own."""
    r = Renderer(SETTINGS)
    first = entry(published_at="2018-12-19T22:30:00-05:00")
    again = entry(published_at="2018-12-19T22:30:00-05:00")
    moved = entry(published_at="2018-12-20T03:30:00+00:00")
    assert first is not again and moved.published_at == first.published_at

    def listed(e: Entry) -> bytes:
        return r.listing(path="/p/", heading="P", entries=(e,))

    with r.sharing_cards(keep=True):
        before = listed(first)
    assert r.cards.seen, "kept for the next batch"
    with r.sharing_cards(keep=True):
        assert listed(again) == before
        other = listed(moved)
    assert b"December 19, 2018" in before and b"December 20, 2018" in other
    with r.sharing_cards():
        pass
    assert not r.cards.seen
