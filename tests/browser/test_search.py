"""Search in a real browser, on the demo's site (published through the real
handler, indexed by the real ``update_search``, served with the CSP CloudFront
sends): typing a query, filters, result pages, opening a result, and the page
without JavaScript."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from .test_pages import WIDTHS, Site, check_page, close, visit

pytestmark = pytest.mark.browser
FRENCH = "abidjan-inondations-relogement"


def results(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('#results > li')].map(li => ({
            kind: li.querySelector('.kind').textContent,
            title: li.querySelector('h2 a').textContent,
            href: li.querySelector('h2 a').getAttribute('href'),
            lang: li.lang,
            direction: getComputedStyle(li.querySelector('h2')).direction,
            marks: [...li.querySelectorAll('mark')].map(m => m.textContent),
        }))"""
    )


def wait_for_results(page: Any) -> None:
    page.wait_for_function(
        "() => /found/.test(document.getElementById('status').textContent)", timeout=15000
    )


@pytest.mark.parametrize("device", list(WIDTHS))
def test_a_french_query_finds_the_french_release_and_opens_it(
    site: Site, browser: Any, device: str
) -> None:
    v = visit(browser, site.url + "/search/", WIDTHS[device])
    try:
        v.page.fill("#q", "familles déplacées")
        wait_for_results(v.page)
        found = results(v.page)
        assert found and found[0]["href"] == f"/releases/{FRENCH}/", found
        assert found[0]["lang"] == "fr"
        assert any(m.lower().startswith("famille") for m in found[0]["marks"])
        assert "familles" in v.page.url  # the query is in the address, to share or reload
        check_page(v, f"search-results-{device}")
        v.page.click(f"#results a[href='/releases/{FRENCH}/']")
        v.page.wait_for_url(f"**/releases/{FRENCH}/")
        assert "Inondations à Abidjan" in v.page.inner_text("h1")
    finally:
        close(v)


def test_an_arabic_result_reads_right_to_left_on_an_english_page(
    site: Site, browser: Any
) -> None:
    v = visit(browser, site.url + "/search/", WIDTHS["desktop"])
    try:
        v.page.fill("#q", "عيادات")
        wait_for_results(v.page)
        found = results(v.page)
        assert found and found[0]["lang"] == "ar", found
        assert found[0]["direction"] == "rtl"
        v.page.fill("#q", "familles")
        v.page.wait_for_function(
            "() => document.querySelector('#results > li')?.lang === 'fr'", timeout=15000
        )
        assert results(v.page)[0]["direction"] == "ltr"
    finally:
        close(v)


def test_header_box_leads_to_results(site: Site, browser: Any) -> None:
    v = visit(browser, site.url + "/", WIDTHS["desktop"])
    try:
        v.page.fill("#site-q", "water")
        v.page.press("#site-q", "Enter")
        v.page.wait_for_url("**/search/?q=water")
        wait_for_results(v.page)
        assert v.page.input_value("#q") == "water"
        assert len(results(v.page)) >= 3
    finally:
        close(v)


def test_filters_and_result_pages(site: Site, browser: Any) -> None:
    v = visit(browser, site.url + "/search/?q=" + quote("the"), WIDTHS["phone"])
    try:
        wait_for_results(v.page)
        everything = results(v.page)
        assert len(everything) == 10  # one page of results
        assert v.page.is_visible("#pager")
        v.page.click("#next")
        v.page.wait_for_function(
            "() => /Page 2/.test(document.getElementById('page-of').textContent)"
        )
        second = results(v.page)
        assert second and not {r["href"] for r in second} & {r["href"] for r in everything}
        # kind: only statements
        v.page.select_option("#kind", "statement")
        v.page.wait_for_function(
            "() => [...document.querySelectorAll('#results .kind')].every(k => /statement/i.test(k.textContent))"
        )
        assert results(v.page) and "kind=statement" in v.page.url
        # topic and year choices come from the index itself
        v.page.select_option("#kind", "")
        years = v.page.eval_on_selector_all("#year option", "os => os.map(o => o.value)")
        assert "2026" in years and years[0] == ""
        v.page.select_option("#year", "2025")
        v.page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('found') && "
            "new URLSearchParams(location.search).get('year') === '2025'"
        )
        dated = v.page.eval_on_selector_all("#results .meta", "ps => ps.map(p => p.textContent)")
        assert dated and all("2025" in d for d in dated), dated
        check_page(v, "search-filters-phone")
    finally:
        close(v)


def test_without_javascript_the_page_says_so_and_links_to_the_archive(
    site: Site, browser: Any
) -> None:
    if isinstance(browser, str):
        pytest.fail(browser, pytrace=False)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site.url + "/search/?q=water")
        notice = page.locator("main .notice")
        assert "Search needs JavaScript" in notice.inner_text()
        assert notice.locator("a[href='/archive/']").count() == 1
    finally:
        context.close()


def test_one_query_reaches_every_year_and_a_year_loads_only_its_own_piece(
    site: Site, browser: Any
) -> None:
    """The bundle is one Pagefind index per year: a query merges the pieces and
    finds releases of an older year and of the newest one together; a year
    filter in the address loads that year's piece alone."""
    if isinstance(browser, str):
        pytest.fail(browser, pytrace=False)
    context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900})
    try:
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url.split("/", 3)[3].split("?")[0]))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url + "/search/?q=water&year=2025")
        wait_for_results(page)
        dated = page.eval_on_selector_all("#results .meta", "ps => ps.map(p => p.textContent)")
        assert dated and all("2025" in d for d in dated), dated
        pieces = {a.split("/")[1] for a in asked if re.match(r"pagefind/\d{4}", a)}
        assert pieces == {"2025"}, asked  # the 2026 piece was never loaded
        # every year: the same query now finds the newest year's releases too
        page.select_option("#year", "")
        page.wait_for_function(
            "() => /found/.test(document.getElementById('status').textContent) && "
            "!new URLSearchParams(location.search).get('year') && "
            "[...document.querySelectorAll('#results .meta')].some(p => /2026/.test(p.textContent))"
        )
        found = results(page)
        dated = page.eval_on_selector_all("#results .meta", "ps => ps.map(p => p.textContent)")
        assert any("2025" in d for d in dated) and any("2026" in d for d in dated), dated
        assert "/releases/world-water-day-statement/" in {r["href"] for r in found}
        assert {a.split("/")[1] for a in asked if re.match(r"pagefind/\d{4}", a)} == {
            "2025",
            "2026",
        }
        # the year and topic choices come from the manifest (years newest
        # first), not from the pieces' filter files
        years = page.eval_on_selector_all("#year option", "os => os.map(o => o.value)")
        assert years == ["", "2026", "2025"]
        topics = page.eval_on_selector_all("#topic option", "os => os.map(o => o.value)")
        assert len(topics) > 5 and "Clean Water" in topics, topics
        assert not [a for a in asked if "/filter/" in a and "/2026/" in a], asked
        assert not errors, errors
    finally:
        context.close()
