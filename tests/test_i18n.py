"""Languages: labels from the gettext catalogs, dates from CLDR, versions linked.

Babel is the reference: the compiled catalogs and date data must be what
``python -m newsroom.locales`` makes from Babel today, and dates must format
exactly as ``babel.dates`` formats them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.dates import format_date, format_skeleton
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from support import dumps, make_release

from chalicelib.core import i18n
from chalicelib.core.i18n import language_versions
from chalicelib.core.index import Entry, Index
from chalicelib.core.model import KIND_LABELS, KIND_PLURALS, parse_release
from chalicelib.core.render import Renderer
from chalicelib.core.site import plan, render_page
from chalicelib.settings import Settings
from newsroom import locales

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Settings(site_url="https://news.example.org", site_title="Test Newsroom")
EST = timezone(timedelta(hours=-5))


def release(name: str = "clinics", **overrides: object):
    return parse_release(dumps(make_release(**overrides)), name=f"releases/{name}.json")


def page(settings: Settings = SETTINGS, **overrides: object) -> str:
    return Renderer(settings).release(release(**overrides)).page.decode()


def entry(r, renderer: Renderer) -> Entry:
    out = renderer.release(r)
    return Entry.from_release(
        r,
        source_key=f"releases/{r.slug}.json",
        site_url=SETTINGS.site_url,
        summary=out.summary,
        revision=out.revision,
    )


# Compiled data and the catalogs ------------------------------------------------------
def test_compiled_catalogs_and_dates_are_what_babel_makes_today() -> None:
    assert locales.main(["--check"]) == 0, "run: python -m newsroom.locales"


def _template_messages() -> set[str]:
    found = set()
    for _name, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT / "chalicelib"),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"),
                    ("templates/**.xml", "jinja2.ext:babel_extract"),
                    ("**.py", "python")],
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):  # fmt: skip
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", [x for x in i18n.CATALOG_LANGUAGES if x != "en"])
def test_every_label_has_a_translation(lang: str) -> None:
    wanted = _template_messages() | set(KIND_LABELS.values()) | set(KIND_PLURALS.values())
    assert "Press contacts" in wanted and "Photo:" in wanted and "Updated" in wanted
    po = ROOT / "chalicelib" / "locale" / lang / "LC_MESSAGES" / "newsroom.po"
    with open(po, "rb") as fh:
        catalog = read_po(fh, locale=lang)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    assert sorted(wanted - translated) == []


@pytest.mark.parametrize("lang", ["en", "fr", "es", "de", "pt", "ar", "ja", "he", "ru"])
def test_dates_format_as_babel_formats_them(lang: str) -> None:
    loc = i18n.locale(lang)
    moment = datetime(2016, 1, 1, 0, 30)
    while moment.year < 2019:
        assert loc.format_date(moment) == format_date(moment, "long", locale=lang)
        assert loc.format_month(moment.year, moment.month) == format_skeleton(
            "yMMMM", moment, locale=lang
        )
        moment += timedelta(days=37, hours=5)


def test_zone_label_names_the_sites_zone_or_gives_the_offset() -> None:
    moment = datetime(2018, 12, 19, 10, 0, tzinfo=EST)
    assert i18n.zone_label(moment, "America/New_York") == "EST"
    assert i18n.zone_label(moment, "Europe/Paris") == "UTC\u221205:00"
    assert i18n.zone_label(moment.astimezone(timezone.utc), "UTC") == "UTC"
    summer = datetime(2018, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert i18n.zone_label(summer, "America/New_York") == "EDT"


# Release pages in their language -----------------------------------------------------
def test_a_french_release_speaks_french() -> None:
    html = page(
        language="fr", updated_at="2018-12-20T09:00:00-05:00", topics=["Climat"],
        contacts=[{"name": "Ana", "email": "ana@example.org"}],
    )  # fmt: skip
    assert '<html lang="fr" dir="ltr">' in html
    for label in ("Communiqué de presse", "19 décembre 2018", "20 décembre 2018",
                  "Mis à jour", "Contacts presse", "Thèmes", "Photo :", "Partager"):  # fmt: skip
        assert label in html, label
    for english in ("Press Release", "December", "Press contacts", ">Topics<", "Photo:"):
        assert english not in html, english


@pytest.mark.parametrize(
    ("lang", "label", "date"),
    [
        ("es", "Comunicado de prensa", "19 de diciembre de 2018"),
        ("de", "Pressemitteilung", "19. Dezember 2018"),
        ("pt", "Comunicado de imprensa", "19 de dezembro de 2018"),
        ("ar", "بيان صحفي", "19 ديسمبر 2018"),
        ("pt-BR", "Comunicado de imprensa", "19 de dezembro de 2018"),
    ],
)
def test_kind_labels_and_dates_per_language(lang: str, label: str, date: str) -> None:
    html = page(language=lang)
    assert f'<span class="kind">{label}</span>' in html
    assert date in html


def test_zone_label_at_the_calendar_s_end_gives_the_offset() -> None:
    """The site's zone is ahead of the instant, past year 9999: no crash."""
    moment = datetime.fromisoformat("9999-12-31T20:00:00-01:00")
    assert i18n.zone_label(moment, "Pacific/Kiritimati") == "UTC\u221201:00"


def test_arabic_is_right_to_left() -> None:
    html = page(language="ar", topics=["Climate"])
    assert '<html lang="ar" dir="rtl">' in html
    assert "المواضيع" in html  # "Topics"


@pytest.mark.parametrize(
    ("tag", "direction"),
    [
        ("he", "rtl"),
        ("ur", "rtl"),
        ("pa-Arab", "rtl"),
        ("ku-Arab", "rtl"),
        ("ar-Latn", "ltr"),
        # after a singleton come extensions and private use, never a script:
        # "arab" here is a numbering system, "hebr" a private code
        ("en-u-nu-arab", "ltr"),
        ("de-x-hebr", "ltr"),
        ("ar-x-latn", "rtl"),
        ("pa-Arab-x-test", "rtl"),
    ],
)
def test_the_script_of_a_tag_decides_its_direction(tag: str, direction: str) -> None:
    # a script subtag names the writing the release is in, whatever the language
    assert f'<html lang="{tag}" dir="{direction}">' in page(language=tag)


def test_a_replaced_language_code_speaks_as_its_successor() -> None:
    # "iw" is what Java-based systems long wrote for Hebrew
    assert '<html lang="he" dir="rtl">' in page(language="iw")


def test_other_languages_get_english_labels_and_their_own_dates() -> None:
    html = page(language="ja")
    assert '<html lang="ja" dir="ltr">' in html
    assert '<span class="kind">Press Release</span>' in html
    assert "2018年12月19日" in html


@pytest.mark.parametrize("tag", ["sr-Latn", "sr-Latn-RS", "uz-Cyrl", "pa-Arab", "az-Cyrl"])
def test_a_script_subtag_writes_the_date_in_that_script(tag: str) -> None:
    # Serbian is written in Cyrillic or Latin: a Latin-script release must not
    # carry a Cyrillic date ("19. децембар 2018.")
    cldr = "_".join(tag.split("-")[:2])
    moment = datetime(2018, 12, 19, 10, 0, tzinfo=EST)
    expected = format_date(moment, "long", locale=cldr)
    assert expected != format_date(moment, "long", locale=tag.split("-")[0])
    assert expected in page(language=tag)


def test_time_and_zone_are_shown() -> None:
    settings = Settings(site_url="https://news.example.org", timezone="America/New_York")
    assert "December 19, 2018, 10:00\u202fAM EST" in page(settings)
    assert "December 19, 2018, 10:00\u202fAM UTC\u221205:00" in page(SETTINGS)


# Language versions -------------------------------------------------------------------
def test_versions_link_to_each_other_including_themselves() -> None:
    renderer = Renderer(SETTINGS)
    en = release("clinics", translation_key="clinics")
    fr = release("cliniques", language="fr", translation_key="clinics")
    ar = release("clinics-ar", language="ar", translation_key="clinics")
    other = release("other")
    versions = language_versions("clinics", [en, fr, ar, other], SETTINGS.site_url)
    assert [v.language for v in versions] == ["ar", "en", "fr"]
    html = renderer.release(fr, versions).page.decode()
    for lang, slug in (("ar", "clinics-ar"), ("en", "clinics"), ("fr", "cliniques")):
        assert (
            f'<link rel="alternate" hreflang="{lang}" '
            f'href="https://news.example.org/releases/{slug}/">'
        ) in html
    switcher = html.split('<nav class="languages"', 1)[1].split("</nav>", 1)[0]
    assert 'lang="ar">العربية</a>' in switcher and 'lang="en">English</a>' in switcher
    assert "cliniques" not in switcher  # the page itself is not offered again


def test_one_language_written_in_two_cases_is_one_version() -> None:
    renderer = Renderer(SETTINGS)
    en = release("water", translation_key="water")
    fr = release("eau", language="fr", translation_key="water", published_at="2018-12-18T10:00:00Z")
    fr_again = release("eau-bis", language="FR", translation_key="water")
    versions = language_versions("water", [en, fr, fr_again], SETTINGS.site_url)
    assert [(v.language, v.slug) for v in versions] == [("en", "water"), ("fr", "eau-bis")]
    html = renderer.release(en, versions).page.decode()
    assert html.lower().count('hreflang="fr"') == 2  # the alternate and the switcher's link


@pytest.mark.skipif(
    "translation_key" not in Entry.__dataclass_fields__,
    reason="index entries do not carry translation_key yet",
)
def test_versions_are_found_from_index_entries() -> None:
    renderer = Renderer(SETTINGS)
    releases = [
        release("clinics", translation_key="clinics"),
        release("cliniques", language="fr", translation_key="clinics"),
        release("other"),
    ]
    found = language_versions("clinics", [entry(r, renderer) for r in releases])
    assert [(v.language, v.slug) for v in found] == [("en", "clinics"), ("fr", "cliniques")]


def test_a_release_without_versions_has_no_switcher() -> None:
    html = page(translation_key="lonely")
    assert 'hreflang' not in html and 'class="languages"' not in html


# Site-wide pages and feeds -----------------------------------------------------------
def _site(settings: Settings, *releases) -> dict[str, bytes]:
    renderer = Renderer(settings)
    index = Index.build([entry(r, renderer) for r in releases])
    return {k: render_page(k, p, renderer, index) for k, p in plan(index, renderer).items()}


def test_site_wide_pages_use_the_site_language() -> None:
    fr_site = Settings(site_url="https://news.example.org", language="fr")
    site = _site(fr_site, release("a"), release("b", language="ar", title="عنوان"))
    front = site["index.html"].decode()
    assert '<html lang="fr" dir="ltr">' in front
    assert "Derniers communiqués" in front and "Communiqués de presse" in front
    assert '<h3 lang="ar" dir="rtl">' in front  # an Arabic title on a French page says so
    archive = site["archive/2018/12/index.html"].decode()
    assert "Publications de décembre 2018" in archive
    english = _site(SETTINGS, release("a"))["index.html"].decode()
    assert '<html lang="en" dir="ltr">' in english and "Latest releases" in english


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Words to find", "All kinds", "{n} releases found.", "Page {page} of {pages}"]),
        ("fr", ["Mots à chercher", "Tous les types", "{n} publications trouvées.", "Page {page} sur {pages}"]),
        ("ar", ["الكلمات المطلوبة", "كل الأنواع", "الصفحة {page} من {pages}"]),
    ],
)
def test_the_search_page_speaks_the_site_language(lang: str, words: list[str]) -> None:
    """Labels and what its script says (data attributes it fills in) come
    from the site language's catalog."""
    settings = Settings(site_url="https://news.example.org", language=lang)
    search = Renderer(settings).search_page().decode()
    assert f'<html lang="{lang}"' in search
    for word in words:
        assert word in search
    if lang != "en":
        for english in ("Words to find", "Narrow the results", "releases found", "JavaScript, which"):
            assert english not in search


def test_feed_entries_carry_their_language() -> None:
    site = _site(SETTINGS, release("a"), release("b", language="fr"))
    root = ET.fromstring(site["feed.xml"])
    ns = "{http://www.w3.org/2005/Atom}"
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    assert root.get(xml_lang) == "en"
    langs = sorted(e.get(xml_lang) for e in root.iter(ns + "entry"))
    assert langs == ["en", "fr"]


def test_site_language_must_be_a_tag() -> None:
    from chalicelib.errors import ConfigurationError

    assert Settings.from_env({"NEWSROOM_LANGUAGE": "fr"}).language == "fr"
    assert Settings.from_env({}).language == "en"
    with pytest.raises(ConfigurationError, match="NEWSROOM_LANGUAGE"):
        Settings.from_env({"NEWSROOM_LANGUAGE": "fr_FR!"})
