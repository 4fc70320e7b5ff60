"""Models in, bytes out: every page, feed and sitemap of the public site.

Pure functions over ``Release``/``Entry`` values and the settings; no I/O after
the templates are loaded. Jinja2 autoescaping is on for HTML and XML, so
plain-text fields are text wherever they land; JSON-LD inside ``<script>`` is
escaped for that context separately (``json_for_script``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ..keys import search_script_key, stylesheet_key
from ..settings import Settings
from .index import Entry
from .markup import body_html, excerpt_source
from .model import KIND_PLURALS, Release
from .text import display_date, display_instant, encode_xml_safe, excerpt, topic_slug, xml_safe

CORE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = CORE_DIR.parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


def files_digest(root: Path, pattern: str = "*") -> str:
    """SHA-256 over the files under ``root`` matching ``pattern`` (recursively),
    each with its path relative to ``root``: adding, moving, removing or editing
    one changes it."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def rfc3339(moment: datetime) -> str:
    return moment.isoformat()


def json_for_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/ld+json">``: no ``</script>``,
    no ``<!--``, no raw ``&`` — the HTML parser sees only inert characters."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    # json escapes control characters; a surrogate, U+FFFE or U+FFFF would be
    # written as such (all three are outside ASCII)
    return Markup(text if text.isascii() else xml_safe(text))


def _tel(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit() or c == "+")


def _news_language(tag: str) -> str:
    # Google News wants ISO 639 codes; zh-cn / zh-tw are the documented exceptions
    low = tag.lower()
    return low if low in ("zh-cn", "zh-tw") else low.split("-")[0]


@dataclass(frozen=True)
class SiteInfo:
    """What templates may know about the site (no secrets)."""

    title: str
    url: str
    intro: str
    organisation: str
    press_email: str
    press_phone: str
    signup_url: str = "/subscriptions"  # where the e-mail sign-up form posts


@dataclass(frozen=True)
class RenderedRelease:
    page: bytes
    summary: str
    revision: str


class Renderer:
    def __init__(self, settings: Settings, template_dir: Path | None = None) -> None:
        self.settings = settings
        self.template_dir = template_dir or TEMPLATE_DIR
        self.site = SiteInfo(
            title=settings.site_title,
            url=settings.site_url,
            intro=settings.intro,
            organisation=settings.organisation,
            press_email=settings.press_email,
            press_phone=settings.press_phone,
            signup_url=f"{settings.api_url}/subscriptions",
        )
        env = Environment(
            loader=FileSystemLoader(str(self.template_dir)),
            autoescape=select_autoescape(["html", "xml"], default=True),
            undefined=StrictUndefined,
            trim_blocks=False,
            lstrip_blocks=False,
            keep_trailing_newline=True,
        )
        env.filters["display_date"] = display_date
        env.filters["display_instant"] = display_instant
        env.filters["rfc3339"] = rfc3339
        env.filters["tel"] = _tel
        env.filters["news_language"] = _news_language
        env.globals["site"] = self.site
        env.globals["nav"] = ""
        env.globals["lang"] = "en"
        env.globals["kinds"] = list(KIND_PLURALS.items())
        env.globals["stylesheet"] = "/" + self.stylesheet_key
        self.env = env

    # Assets and fingerprints ---------------------------------------------------
    @cached_property
    def stylesheet(self) -> bytes:
        return (STATIC_DIR / "style.css").read_bytes()

    @cached_property
    def favicon(self) -> bytes:
        return (STATIC_DIR / "favicon.svg").read_bytes()

    @cached_property
    def stylesheet_key(self) -> str:
        digest = hashlib.sha256(self.stylesheet).hexdigest()[:12]
        return stylesheet_key(digest)

    @cached_property
    def theme(self) -> str:
        """Fingerprint of everything besides the releases that shapes the output:
        templates, stylesheet, the rendering settings and the code that renders.
        A change means every shared page must be re-rendered, and no build may
        reuse a page rendered before it."""
        h = hashlib.sha256()
        for part in (
            files_digest(self.template_dir),
            files_digest(STATIC_DIR),
            files_digest(CORE_DIR, "*.py"),  # the whole pure core, not a hand-kept list
        ):
            h.update(part.encode())
        h.update((PACKAGE_DIR / "keys.py").read_bytes())  # URL and asset key shapes
        s = self.settings
        h.update(
            json.dumps(
                [s.site_url, s.site_title, s.intro, s.organisation, s.press_email,
                 s.press_phone, s.page_size, s.feed_size, s.default_image, s.api_url]
            ).encode()
        )  # fmt: skip
        return h.hexdigest()[:16]

    def _render(self, template: str, **context: Any) -> bytes:
        text = self.env.get_template(template).render(**context)
        if template.endswith(".xml"):
            # one forbidden character makes a whole feed or sitemap unreadable:
            # whatever got into the data, none is ever written
            return encode_xml_safe(text)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate that got past the model
            return xml_safe(text).encode("utf-8")

    # Release pages -------------------------------------------------------------
    def absolute(self, url: str) -> str:
        return url if url.startswith("https://") else self.settings.site_url + url

    def release(self, release: Release) -> RenderedRelease:
        context = self._release_context(release)
        page = self._render("release.html", **context)
        return RenderedRelease(page, context["summary"], hashlib.sha256(page).hexdigest()[:16])

    def preview(self, release: Release, publish_at: datetime) -> bytes:
        """The release page as it will look at ``publish_at``, for staff only:
        same template (``preview.html`` extends ``release.html``) plus a
        visible banner and ``noindex``. Links stay site paths; the preview
        store points them somewhere a private page can reach."""
        context = self._release_context(release)
        # served from the source bucket, not the site: the stylesheet travels
        # inline, with the banner's rules (which the public stylesheet lacks)
        css = self.stylesheet + (STATIC_DIR / "preview.css").read_bytes()
        inline = "data:text/css;base64," + base64.b64encode(css).decode("ascii")
        return self._render("preview.html", publish_at=publish_at, stylesheet=inline, **context)

    def _release_context(self, release: Release) -> dict[str, Any]:
        body = body_html(release.body, release.body_format)
        summary = release.summary or excerpt(excerpt_source(body))
        canonical = f"{self.settings.site_url}{release.url_path}"
        # the release's own image, else the site's share image (if configured)
        image = release.image.url if release.image else self.settings.default_image
        image_url = self.absolute(image) if image else None
        ld: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": release.title,
            "description": summary,
            "datePublished": release.published_at.isoformat(),
            "dateModified": (release.updated_at or release.published_at).isoformat(),
            "inLanguage": release.language,
            "mainEntityOfPage": canonical,
            "url": canonical,
            "articleSection": release.kind_label,
            "publisher": {
                "@type": "Organization",
                "name": self.settings.organisation,
                "url": self.settings.site_url + "/",
            },
            "author": {"@type": "Organization", "name": self.settings.organisation},
        }
        if image_url:
            ld["image"] = [image_url]
        if release.topics:
            ld["keywords"] = list(release.topics)
        return {
            "release": release,
            "body": Markup(body),
            "summary": summary,
            "canonical": canonical,
            "image_url": image_url,
            "json_ld": json_for_script(ld),
            "topics": [(topic_slug(t), t) for t in release.topics],
        }

    # Listings --------------------------------------------------------------------
    def front(self, entries: tuple[Entry, ...]) -> bytes:
        return self._render("front.html", entries=entries)

    def listing(
        self,
        *,
        path: str,
        heading: str,
        entries: tuple[Entry, ...],
        nav: str = "",
        intro: str = "",
        feed: str = "",
        more: tuple[str, str] | None = None,
        years: tuple[tuple[int, str], ...] = (),
    ) -> bytes:
        return self._render(
            "listing.html",
            years=years,
            path=path,
            heading=heading,
            description=intro or f"{heading} from {self.settings.organisation}",
            entries=entries,
            nav=nav,
            intro=intro,
            feed=feed,
            more=more,
        )

    def archive_index(self, months: tuple[tuple[int, int], ...]) -> bytes:
        years: dict[int, list[tuple[int, str]]] = {}
        for year, month in months:
            years.setdefault(year, []).append((month, datetime(year, month, 1).strftime("%B")))
        return self._render("archive_index.html", years=list(years.items()))

    def topics_index(self, topics: tuple[tuple[str, str], ...]) -> bytes:
        return self._render("topics_index.html", topics=topics)

    def not_found(self) -> bytes:
        return self._render("404.html")

    @cached_property
    def search_script(self) -> bytes:
        return (STATIC_DIR / "search.js").read_bytes()

    @cached_property
    def search_script_key(self) -> str:
        """Named by its content (like the stylesheet), next to the page."""
        return search_script_key(hashlib.sha256(self.search_script).hexdigest()[:12])

    def search_page(self) -> bytes:
        """``search/index.html``: the form; ``search_script`` (same origin, as the
        CSP wants) asks Pagefind's bundle."""
        return self._render("search.html", nav="search", script="/" + self.search_script_key)

    # Feeds and sitemaps ------------------------------------------------------------
    def feed(self, *, entries: tuple[Entry, ...], title: str, path: str, alt_path: str) -> bytes:
        updated = max((e.modified for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
        return self._render(
            "feed.xml",
            entries=entries,
            title=title,
            feed_id=self.settings.site_url + path,
            self_url=self.settings.site_url + path,
            alt_url=self.settings.site_url + alt_path,
            updated=rfc3339(updated),
        )

    def urlset(self, urls: tuple[tuple[str, str], ...]) -> bytes:
        return self._render("urlset.xml", urls=urls)

    def sitemap_index(self, sitemaps: tuple[str, ...]) -> bytes:
        return self._render("sitemap_index.xml", sitemaps=sitemaps)

    def news_sitemap(self, entries: tuple[Entry, ...]) -> bytes:
        return self._render("news_sitemap.xml", entries=entries)
