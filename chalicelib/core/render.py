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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from ..keys import search_script_key, stylesheet_key
from ..settings import Settings
from . import i18n
from .environment import CardCache, SiteInfo, template_environment
from .filters import json_for_script, rfc3339
from .i18n import Version
from .index import Entry
from .markup import body_html, excerpt_source
from .model import KIND_PLURALS, Release
from .text import encode_xml_safe, excerpt, topic_slug, xml_safe

CORE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = CORE_DIR.parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
LOCALE_DIR = i18n.LOCALE_DIR


def files_digest(root: Path, pattern: str = "*") -> str:
    """SHA-256 over the files under ``root`` matching ``pattern`` (recursively),
    each with its path relative to ``root``: adding, moving, removing or editing
    one changes it."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


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
        self.language = settings.language
        self._envs: dict[str, Environment] = {}
        self.cards = CardCache()
        self.env = self.env_for(self.language)

    def env_for(self, tag: str) -> Environment:
        """The templates in language ``tag``: its catalog (English labels when
        there is none) and its dates. One environment per language, so macros
        imported by a template see the same language as the page."""
        key = tag.lower()
        if key not in self._envs:
            self._envs[key] = template_environment(
                self.template_dir,
                tag,
                site=self.site,
                timezone=self.settings.timezone,
                absolute=self.absolute,
                stylesheet="/" + self.stylesheet_key,
                cards=self.cards,
            )
        return self._envs[key]

    @contextmanager
    def sharing_cards(self, *, keep: bool = False) -> Iterator[None]:
        """Within: a listing card is rendered once per entry and reused by every
        listing that shows the same entry (``CardCache``), for a batch of
        shared pages rendered together (a build, a rebuild step, a publish).
        ``keep``: the cards stay for the next batch (a warm publisher's next
        batch lists most of the same entries again), within the cache's
        bound."""
        self.cards.on = True
        try:
            yield
        finally:
            self.cards.on = False
            if not keep:
                self.cards.clear()

    def gettext(self, message: str, **values: Any) -> str:
        """A label in the site's language (headings the site plan builds)."""
        text = i18n.translations(self.language).gettext(message)
        return text % values if values else text

    def month_name(self, year: int, month: int) -> str:
        return i18n.locale(self.language).format_month(year, month)

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
        for path in sorted(LOCALE_DIR.rglob("*.mo")) + [LOCALE_DIR / "dates.json"]:
            h.update(path.relative_to(LOCALE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
        s = self.settings
        h.update(
            json.dumps(
                [s.site_url, s.site_title, s.intro, s.organisation, s.press_email,
                 s.press_phone, s.page_size, s.feed_size, s.default_image, s.api_url,
                 s.language, s.timezone]
            ).encode()
        )  # fmt: skip
        return h.hexdigest()[:16]

    def _render(self, template: str, language: str | None = None, **context: Any) -> bytes:
        env = self.env if language is None else self.env_for(language)
        text = env.get_template(template).render(**context)
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

    def entry(
        self, release: Release, rendered: RenderedRelease, *, source_key: str, source_digest: str
    ) -> Entry:
        """The index entry of ``release`` as rendered: the one way a publish, a
        rebuild and a build make it, so all three index the same bytes."""
        return Entry.from_release(
            release,
            source_key=source_key,
            site_url=self.settings.site_url,
            summary=rendered.summary,
            revision=rendered.revision,
            source_digest=source_digest,
        )

    def release(self, release: Release, versions: tuple[Version, ...] = ()) -> RenderedRelease:
        """The release page. ``versions``: its language versions (``language_versions``),
        itself included; links to them need a key shared by at least two."""
        context = self._release_context(release, versions)
        page = self._render("release.html", **context)
        return RenderedRelease(page, context["summary"], hashlib.sha256(page).hexdigest()[:16])

    def preview(
        self, release: Release, publish_at: datetime, versions: tuple[Version, ...] = ()
    ) -> bytes:
        """The release page as it will look at ``publish_at``, for staff only:
        same template (``preview.html`` extends ``release.html``) plus a
        visible banner and ``noindex``. Links stay site paths; the preview
        store points them somewhere a private page can reach."""
        context = self._release_context(release, versions)
        # served from the source bucket, not the site: the stylesheet travels
        # inline, with the banner's rules (which the public stylesheet lacks)
        css = self.stylesheet + (STATIC_DIR / "preview.css").read_bytes()
        inline = "data:text/css;base64," + base64.b64encode(css).decode("ascii")
        return self._render("preview.html", publish_at=publish_at, stylesheet=inline, **context)

    def _release_context(
        self, release: Release, versions: tuple[Version, ...] = ()
    ) -> dict[str, Any]:
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
            "articleSection": i18n.translations(release.language).gettext(release.kind_label),
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
        versions = i18n.linked_versions(release.slug, versions)
        return {
            "language": release.language,
            "versions": versions,
            "others": tuple(v for v in versions if v.slug != release.slug),
            "release": release,
            "body": Markup(body),
            "summary": summary,
            "canonical": canonical,
            "image_url": image_url,
            "json_ld": json_for_script(ld),
            "topics": [(topic_slug(t), t) for t in release.topics],
        }

    # Listings --------------------------------------------------------------------
    def front(self, entries: tuple[Entry, ...], older: tuple[str, str] | None = None) -> bytes:
        return self._render("front.html", entries=entries, older=older)

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
        years: tuple[tuple[int, str, int], ...] = (),
        total: int | None = None,
        months: tuple[tuple[str, str, int], ...] = (),
        pager: tuple[tuple[str, str], ...] = (),
    ) -> bytes:
        return self._render(
            "listing.html",
            years=years,
            months=months,
            pager=pager,
            total=len(entries) if total is None else total,
            path=path,
            heading=heading,
            description=intro
            or self.gettext(
                "%(heading)s from %(organisation)s",
                heading=heading,
                organisation=self.settings.organisation,
            ),
            entries=entries,
            nav=nav,
            intro=intro,
            feed=feed,
            more=more,
        )

    def archive_index(self, years: tuple[tuple[int, int], ...]) -> bytes:
        """``years``: (year, count), newest first; each year's page lists its months."""
        return self._render("archive_index.html", years=[(y, n, ()) for y, n in years])

    def topics_index(self, topics: tuple[tuple[str, str, int], ...]) -> bytes:
        """``topics``: (slug, name, count)."""
        return self._render("topics_index.html", topics=topics)

    def kinds_index(self, counts: tuple[tuple[str, int], ...]) -> bytes:
        t = i18n.translations(self.language)
        rows = [(k, t.gettext(KIND_PLURALS[k]), n) for k, n in counts]
        return self._render("kinds_index.html", counts=rows, nav="")

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
            entries=[(e, self.feed_content(e)) for e in entries],
            title=title,
            feed_id=self.settings.site_url + path,
            self_url=self.settings.site_url + path,
            alt_url=self.settings.site_url + alt_path,
            updated=rfc3339(updated),
        )

    def feed_content(self, e: Entry) -> str:
        """An entry's ``<content>``: its lead image (with caption and credit) and
        summary, as HTML; the page it links to has the full text."""
        return self.env_for(e.language).get_template("feed_content.html").render(e=e).strip()

    def urlset(self, urls: tuple[tuple[str, str], ...]) -> bytes:
        return self._render("urlset.xml", urls=urls)

    def sitemap_index(self, sitemaps: tuple[str, ...]) -> bytes:
        return self._render("sitemap_index.xml", sitemaps=sitemaps)

    def news_sitemap(self, entries: tuple[Entry, ...]) -> bytes:
        return self._render("news_sitemap.xml", entries=entries)
