"""The newsroom in a real browser: headless Chromium over the demo's server.

The site under test is the one ``newsroom demo`` serves — the same sample
releases, published through the same handler into the local S3, served with
CloudFront's path rules and security headers — so what a user sees is what is
tested. Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright for
Python; axe-core comes from the npm registry (``make browser-deps``).
Screenshots land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from newsroom.demo import SOURCE_BUCKET, Demo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
CHROMIUM = os.environ.get("NEWSROOM_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": 1280, "phone": 375}
SCHEDULED_SAMPLE = "releases/ocean-heat-report.json"  # under embargo until 2040
HOW_TO_INSTALL = (
    "run `make browser-deps` (it installs Debian's chromium and chromium-driver "
    "and `npm install --no-save axe-core@4`), or use `make test`, which does it first"
)


@dataclass
class Site:
    url: str
    demo: Demo
    releases: list[dict[str, Any]]  # index.json entries, newest first
    inbox: Path


@dataclass
class Visit:
    """One page load, with everything that went wrong while loading it."""

    page: Any
    status: int
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)


def visit(
    browser: Any, url: str, width: int, expect_status: int = 200, scheme: str = "light"
) -> Visit:
    if isinstance(browser, str):
        pytest.fail(browser, pytrace=False)
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    v = Visit(page, 0)

    def on_console(m: Any) -> None:
        source = m.location.get("url")
        if m.type != "error" or (source == url and m.text.endswith(f"{expect_status} (Not Found)")):
            return  # the expected status of the page itself is not an error
        v.console_errors.append(f"{m.type}: {m.text} ({source})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: v.console_errors.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: v.failed_requests.append(f"{r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: (
            v.bad_responses.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.url != url
            else None
        ),
    )
    response = page.goto(url, wait_until="load")
    v.status = response.status if response else 0
    assert v.status == expect_status, f"{url}: HTTP {v.status}, expected {expect_status}"
    # scroll through so lazy images start loading, then wait until every image
    # has loaded (or failed) and is decoded, so screenshots show them
    page.evaluate(
        """async () => {
            for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight) {
                window.scrollTo(0, y);
                await new Promise(r => requestAnimationFrame(r));
            }
            window.scrollTo(0, 0);
            await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
        }"""
    )
    return v


def close(v: Visit) -> None:
    v.page.context.close()


def screenshot(v: Visit, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    v.page.screenshot(path=str(path), full_page=True)
    return path


def overflow(page: Any) -> dict[str, Any]:
    """Horizontal overflow of the document, and the elements that stick out."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const culprits = [];
            for (const el of document.querySelectorAll('body *')) {
                const r = el.getBoundingClientRect();
                if (r.width && (r.right > width + 1 || r.left < -1)) {
                    culprits.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                        + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
                }
            }
            return {scroll: document.documentElement.scrollWidth, width, culprits: culprits.slice(0, 10)};
        }"""
    )


def images(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        """() => [...document.images].map(i => ({
            src: i.currentSrc || i.src, alt: i.getAttribute('alt'),
            loaded: i.complete && i.naturalWidth > 0,
        }))"""
    )


def axe_violations(page: Any) -> list[str]:
    # evaluated over DevTools, so the site's CSP (no scripts) does not block it
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
        })"""
    )
    return [
        f"{v['impact']}: {v['id']}: {v['help']} — "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def check_page(v: Visit, name: str) -> None:
    shot = screenshot(v, name)
    problems = []
    problems += v.console_errors
    problems += [f"request failed: {r}" for r in v.failed_requests]
    problems += [f"bad response: {r}" for r in v.bad_responses]
    o = overflow(v.page)
    if o["scroll"] > o["width"]:
        problems.append(f"horizontal overflow: {o['scroll']}px > {o['width']}px: {o['culprits']}")
    for img in images(v.page):
        if not (img["alt"] or "").strip():
            problems.append(f"image without alt text: {img['src']}")
        if not img["loaded"]:
            problems.append(f"image did not load: {img['src']}")
    problems += axe_violations(v.page)
    assert not problems, f"{name} ({shot.relative_to(ROOT)}):\n" + "\n".join(problems)


def release_with_everything(site: Site) -> dict[str, Any]:
    """The sample release that exercises most of the page: image, caption,
    credit, downloads, contacts, topics."""
    for slug in ("clean-water-unequal-shores", "coastal-clinics-reopen"):
        for r in site.releases:
            if r["slug"] == slug:
                return r
    return site.releases[0]


@pytest.mark.parametrize("device", list(WIDTHS))
def test_front_page(site: Site, browser: Any, device: str) -> None:
    v = visit(browser, site.url + "/", WIDTHS[device])
    try:
        check_page(v, f"front-{device}")
        titles = v.page.locator("main .listing h3 a").all_inner_texts()
        assert titles == [r["title"] for r in site.releases][: len(titles)] and titles
        assert v.page.locator("main figcaption").count() >= 1
        assert v.page.locator("main figcaption .credit").count() >= 1
    finally:
        close(v)


@pytest.mark.parametrize("device", list(WIDTHS))
def test_release_page(site: Site, browser: Any, device: str) -> None:
    r = release_with_everything(site)
    v = visit(browser, site.url + f"/releases/{r['slug']}/", WIDTHS[device])
    try:
        check_page(v, f"release-{device}")
        assert v.page.locator("h1").inner_text() == r["title"]
        if r.get("image"):
            caption = v.page.locator("figure.lead figcaption").inner_text()
            assert r["image"]["caption"] in caption and r["image"]["credit"] in caption
    finally:
        close(v)


def test_every_release_page_renders_cleanly(site: Site, browser: Any) -> None:
    """Every sample release at phone width (where overflow shows first): no
    errors, no overflow, every image loaded with alt text."""
    device = "phone"
    failures = []
    for r in site.releases:
        v = visit(browser, site.url + f"/releases/{r['slug']}/", WIDTHS[device])
        try:
            problems = v.console_errors + v.failed_requests + v.bad_responses
            o = overflow(v.page)
            if o["scroll"] > o["width"]:
                problems.append(f"horizontal overflow {o['scroll']}px: {o['culprits']}")
            problems += [
                f"image {i['src']}: alt={i['alt']!r} loaded={i['loaded']}"
                for i in images(v.page)
                if not (i["alt"] or "").strip() or not i["loaded"]
            ]
            if problems:
                failures.append(f"/releases/{r['slug']}/: " + "; ".join(problems))
        finally:
            close(v)
    assert len(site.releases) >= 12
    assert not failures, "\n".join(failures)


def test_listing_pages(site: Site, browser: Any) -> None:
    """Archive, month, topic and kind listings at phone width (the narrow case):
    the same checks as the front page."""
    from chalicelib.core.text import topic_slug

    newest = site.releases[0]
    month = newest["published_at"][:7].replace("-", "/")
    paths = ("/archive/", f"/archive/{month}/", "/topics/", "/kinds/report/")
    paths += (f"/topics/{topic_slug(newest['topics'][0])}/",)
    failures = []
    for path in paths:
        v = visit(browser, site.url + path, WIDTHS["phone"])
        try:
            check_page(v, "listing" + path.replace("/", "-").rstrip("-") + "-phone")
        except AssertionError as exc:
            failures.append(str(exc))
        finally:
            close(v)
    assert not failures, "\n".join(failures)


def test_title_link_reaches_the_release(site: Site, browser: Any) -> None:
    v = visit(browser, site.url + "/", WIDTHS["desktop"])
    try:
        newest = site.releases[0]
        v.page.get_by_role("link", name=newest["title"], exact=True).first.click()
        v.page.wait_for_load_state("load")
        assert v.page.url == site.url + f"/releases/{newest['slug']}/"
        assert v.page.locator("h1").inner_text() == newest["title"]
    finally:
        close(v)


def test_not_found_page(site: Site, browser: Any) -> None:
    v = visit(browser, site.url + "/releases/no-such-release/", WIDTHS["phone"], expect_status=404)
    try:
        assert v.page.locator("h1").inner_text() == "Page not found"
        check_page(v, "not-found-phone")
    finally:
        close(v)


def test_inbox_edit_shows_in_the_browser(site: Site, browser: Any) -> None:
    """Dropping a release into the inbox publishes it; editing it updates the
    page; deleting it takes it down — seen through the browser."""
    doc = json.loads((SAMPLES / "releases" / "coastal-clinics-reopen.json").read_text())
    doc.update(slug="inbox-browser-check", title="Harbor ferry resumes night service")
    path = site.inbox / "inbox-browser-check.json"
    page_url = site.url + "/releases/inbox-browser-check/"

    def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{what} did not happen within {timeout}s")

    def status() -> int:
        try:
            with urllib.request.urlopen(page_url) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    path.write_text(json.dumps(doc), encoding="utf-8")
    wait_for(lambda: status() == 200, "publishing the dropped file")
    v = visit(browser, page_url, WIDTHS["desktop"])
    try:
        assert v.page.locator("h1").inner_text() == doc["title"]
        doc["title"] = "Harbor ferry resumes night service on all routes"
        path.write_text(json.dumps(doc), encoding="utf-8")

        def updated() -> bool:
            v.page.reload()
            return v.page.locator("h1").inner_text() == doc["title"]

        wait_for(updated, "the edit showing after a reload")
        path.unlink()
        wait_for(lambda: v.page.reload().status == 404, "taking the page down")
    finally:
        close(v)


SCREENSHOT_PAGES = {
    "front": "/",
    "release": "/releases/coastal-clinics-reopen/",
    "release-ar": "/releases/coastal-clinics-reopen-ar/",
    "topic": "/topics/coastal-communities/",
    "archive": "/archive/",
    "archive-year": "/archive/2025/",
    "kinds": "/kinds/",
    "search": "/search/",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_type_at_phone_and_desktop_width(site: Site, browser: Any, scheme: str) -> None:
    """Screenshots of each page type (artifacts/screenshots/), light and dark,
    with the same checks as the front page; dark pages really are dark."""
    failures = []
    for name, path in SCREENSHOT_PAGES.items():
        for device, width in WIDTHS.items():
            v = visit(browser, site.url + path, width, scheme=scheme)
            try:
                check_page(v, f"{name}-{device}-{scheme}")
                background = v.page.evaluate("getComputedStyle(document.body).backgroundColor")
                dark = background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
                if dark != (scheme == "dark"):
                    failures.append(f"{path} {device} {scheme}: background {background}")
                if name == "release-ar":
                    assert v.page.evaluate("document.documentElement.dir") == "rtl"
                    # mirrored: the kind label starts at the right edge of the article
                    box = v.page.locator("article.release").bounding_box()
                    kind = v.page.locator("article.release .kind").bounding_box()
                    assert box and kind
                    assert abs((box["x"] + box["width"]) - (kind["x"] + kind["width"])) < 2
            except AssertionError as exc:
                failures.append(str(exc))
            finally:
                close(v)
    assert not failures, "\n".join(failures)


def test_preview_link_from_a_receipt_shows_the_banner_and_the_image(
    site: Site, browser: Any
) -> None:
    """Staff open the ``preview_url`` of a scheduled release's receipt: the page
    as it will look, banner on top, its photo and PDF served privately; the
    public site has none of it."""
    obj = site.demo.client.get_object(Bucket=SOURCE_BUCKET, Key=f"receipts/{SCHEDULED_SAMPLE}")
    receipt = json.loads(obj["Body"].read())
    assert receipt["status"] == "scheduled"
    v = visit(browser, receipt["preview_url"], WIDTHS["desktop"])
    try:
        check_page(v, "preview-desktop")  # loads cleanly, every image loaded, axe
        banner = v.page.locator(".preview-banner")
        assert banner.is_visible()
        assert banner.inner_text().startswith("Preview — not public until June 8, 2040")
        assert v.page.locator('meta[name="robots"]').get_attribute("content") == "noindex"
        lead = v.page.locator("figure.lead img")
        assert lead.evaluate("i => i.complete && i.naturalWidth > 0")
        assert "/media/ocean-heat-report.jpg?" in lead.get_attribute("src")
        pdf = v.page.get_by_role("link", name="Warming Waters: full report (PDF)")
        with urllib.request.urlopen(pdf.first.get_attribute("href")) as resp:
            assert resp.read(5) == b"%PDF-"
    finally:
        close(v)
    for path in (
        "/releases/ocean-heat-report/",
        "/media/ocean-heat-report.jpg",
        "/media/ocean-heat-report.pdf",
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(site.url + path)
        assert err.value.code == 404, path
