"""Rendering the shared pages the site plan (``core.site``) names, one function per kind of page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .index import Entry, month_file, public_index
from .model import KIND_PLURALS
from .render import Renderer

if TYPE_CHECKING:
    from .site import Page


def _ym(month: str) -> tuple[int, int]:
    return int(month[:4]), int(month[5:7])


def render_page(key: str, page: Page, renderer: Renderer, index: Any = None) -> bytes:
    return _RENDERERS[page.kind](renderer, *page.args)


def _front(r: Renderer, entries: tuple[Entry, ...], older: tuple[int, int] | None) -> bytes:
    link = None
    if older is not None:
        year, month = older
        link = (f"/archive/{year}/{month:02d}/", r.month_name(year, month))
    return r.front(entries, older=link)


def _month_link(r: Renderer, ym: tuple[int, int] | None, label: str) -> tuple[str, str] | None:
    if ym is None:
        return None
    return (f"/archive/{ym[0]}/{ym[1]:02d}/", f"{r.gettext(label)}: {r.month_name(*ym)}")


def _archive_month(
    r: Renderer,
    year: int,
    month: int,
    group: tuple[Entry, ...],
    earlier: tuple[int, int] | None = None,
    later: tuple[int, int] | None = None,
) -> bytes:
    return r.listing(
        path=f"/archive/{year}/{month:02d}/",
        heading=r.gettext("Releases from %(period)s", period=r.month_name(year, month)),
        entries=group,
        nav="archive",
        more=(f"/archive/{year}/", str(year)),
        pager=tuple(
            x for x in (_month_link(r, earlier, "Earlier"), _month_link(r, later, "Later")) if x
        ),
    )


def _archive_year(
    r: Renderer, year: int, months: tuple[tuple[int, int, int], ...], total: int
) -> bytes:
    return r.listing(
        path=f"/archive/{year}/",
        heading=r.gettext("Releases from %(period)s", period=str(year)),
        entries=(),
        nav="archive",
        total=total,
        more=("/archive/", r.gettext("All months")),
        months=tuple((f"/archive/{y}/{m:02d}/", r.month_name(y, m), n) for y, m, n in months),
    )


def _month_links(
    r: Renderer, base: str, months: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, str, int], ...]:
    return tuple((f"{base}{m[:4]}/{m[5:7]}/", r.month_name(*_ym(m)), n) for m, n in months)


def _kind(
    r: Renderer,
    kind: str,
    group: tuple[Entry, ...],
    years: tuple[tuple[int, int], ...],
    total: int,
) -> bytes:
    return r.listing(
        path=f"/kinds/{kind}/",
        heading=r.gettext(KIND_PLURALS[kind]),
        entries=group,
        nav=kind,
        total=total,
        feed=f"/kinds/{kind}/feed.xml",
        years=tuple((y, f"/kinds/{kind}/{y}/", n) for y, n in years),
    )


def _kind_year(r: Renderer, kind: str, year: int, months: tuple[tuple[str, int], ...]) -> bytes:
    plural = r.gettext(KIND_PLURALS[kind])
    return r.listing(
        path=f"/kinds/{kind}/{year}/",
        heading=r.gettext("%(kinds)s from %(year)s", kinds=plural, year=str(year)),
        entries=(),
        nav=kind,
        total=sum(n for _m, n in months),
        feed=f"/kinds/{kind}/feed.xml",
        more=(f"/kinds/{kind}/", r.gettext("Latest of this kind")),
        months=_month_links(r, f"/kinds/{kind}/", months),
    )


def _kind_month(r: Renderer, kind: str, year: int, month: int, group: tuple[Entry, ...]) -> bytes:
    plural = r.gettext(KIND_PLURALS[kind])
    return r.listing(
        path=f"/kinds/{kind}/{year}/{month:02d}/",
        heading=r.gettext("%(kinds)s from %(year)s", kinds=plural, year=r.month_name(year, month)),
        entries=group,
        nav=kind,
        feed=f"/kinds/{kind}/feed.xml",
        more=(f"/kinds/{kind}/", r.gettext("Latest of this kind")),
    )


def _kind_feed(r: Renderer, kind: str, group: tuple[Entry, ...]) -> bytes:
    return r.feed(
        entries=group,
        title=f"{r.settings.site_title}: {r.gettext(KIND_PLURALS[kind])}",
        path=f"/kinds/{kind}/feed.xml",
        alt_path=f"/kinds/{kind}/",
    )


def _robots(r: Renderer) -> bytes:
    base = r.settings.site_url
    return (
        f"User-agent: *\nAllow: /\n\nSitemap: {base}/sitemap.xml\n"
        f"Sitemap: {base}/news-sitemap.xml\n"
    ).encode()


def _topic(
    r: Renderer,
    slug: str,
    name: str,
    group: tuple[Entry, ...],
    years: tuple[tuple[int, int], ...],
    total: int,
) -> bytes:
    return r.listing(
        path=f"/topics/{slug}/",
        heading=name,
        entries=group,
        nav="topics",
        total=total,
        intro=r.gettext("Releases about %(topic)s", topic=name),
        feed=f"/topics/{slug}/feed.xml",
        more=("/topics/", r.gettext("All topics")),
        years=tuple((y, f"/topics/{slug}/{y}/", n) for y, n in years),
    )


def _topic_year(
    r: Renderer, slug: str, name: str, year: int, months: tuple[tuple[str, int], ...]
) -> bytes:
    return r.listing(
        path=f"/topics/{slug}/{year}/",
        heading=f"{name}: {year}",
        entries=(),
        nav="topics",
        total=sum(n for _m, n in months),
        intro=r.gettext("Releases about %(topic)s", topic=name),
        feed=f"/topics/{slug}/feed.xml",
        more=(f"/topics/{slug}/", name),
        months=_month_links(r, f"/topics/{slug}/", months),
    )


def _topic_month(
    r: Renderer, slug: str, name: str, year: int, month: int, group: tuple[Entry, ...]
) -> bytes:
    return r.listing(
        path=f"/topics/{slug}/{year}/{month:02d}/",
        heading=f"{name}: {r.month_name(year, month)}",
        entries=group,
        nav="topics",
        intro=r.gettext("Releases about %(topic)s", topic=name),
        feed=f"/topics/{slug}/feed.xml",
        more=(f"/topics/{slug}/", name),
    )


def _topic_feed(r: Renderer, slug: str, name: str, group: tuple[Entry, ...]) -> bytes:
    return r.feed(
        entries=group,
        title=f"{r.settings.site_title}: {name}",
        path=f"/topics/{slug}/feed.xml",
        alt_path=f"/topics/{slug}/",
    )


def _feed(r: Renderer, entries: tuple[Entry, ...]) -> bytes:
    return r.feed(entries=entries, title=r.settings.site_title, path="/feed.xml", alt_path="/")


def _sitemap_pages(r: Renderer, paths: tuple[str, ...]) -> bytes:
    return r.urlset(tuple((r.settings.site_url + p, "") for p in paths))


def _sitemap_month(r: Renderer, group: tuple[Entry, ...], paths: tuple[str, ...]) -> bytes:
    base = r.settings.site_url
    releases = tuple((e.url, e.modified.isoformat()) for e in group)
    return r.urlset(releases + tuple((base + p, "") for p in paths))


def _sitemap_index(r: Renderer, months: tuple[str, ...]) -> bytes:
    base = r.settings.site_url
    maps = (base + "/sitemaps/pages.xml",) + tuple(f"{base}/sitemaps/{m}.xml" for m in months)
    return r.sitemap_index(maps)


_RENDERERS: dict[str, Callable[..., bytes]] = {
    "index_json": lambda r, newest, counts: public_index(newest, counts, r.settings.site_url),
    "index_month": lambda r, month, group: month_file(month, group),
    "front": _front,
    "404": lambda r: r.not_found(),
    "stylesheet": lambda r: r.stylesheet,
    "favicon": lambda r, digest: r.favicon,
    "feed": _feed,
    "archive_index": lambda r, years: r.archive_index(years),
    "archive_month": _archive_month,
    "archive_year": _archive_year,
    "kinds_index": lambda r, counts: r.kinds_index(counts),
    "kind_feed": _kind_feed,
    "kind": _kind,
    "kind_month": _kind_month,
    "kind_year": _kind_year,
    "robots": _robots,
    "topics_index": lambda r, topics: r.topics_index(topics),
    "topic": _topic,
    "topic_month": _topic_month,
    "topic_year": _topic_year,
    "topic_feed": _topic_feed,
    "sitemap_pages": _sitemap_pages,
    "sitemap_month": _sitemap_month,
    "sitemap_index": _sitemap_index,
    "news_sitemap": lambda r, entries: r.news_sitemap(entries),
}
