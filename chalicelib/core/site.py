"""The shape of the public site: which shared objects exist and what each shows.

``plan(index)`` maps every shared key (front page, archives, topics, kinds,
feeds, sitemaps, ``index.json``, assets) to a ``Page`` spec: a small, hashable
description of its inputs. Two plans are compared key by key, so a publish
re-renders and rewrites only the objects whose inputs changed — a new release
touches its own month, kind, topics, the front page, feeds and sitemaps, never
the rest of a growing archive. Release pages are not in the plan; the publisher
writes them from the release itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .index import NEWEST, Entry, Index, month_file, public_index
from .index import months as index_months
from .model import KIND_LABELS, KIND_PLURALS
from .render import Renderer

KIND_PAGE_SIZE = 60
NEWS_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Page:
    """What a shared object shows: a renderer name and its (hashable) inputs."""

    kind: str
    args: tuple[Any, ...]


def _month_counts(entries: tuple[Entry, ...]) -> tuple[tuple[int, int, int], ...]:
    counts: dict[tuple[int, int], int] = {}
    for e in entries:
        counts[e.month] = counts.get(e.month, 0) + 1
    return tuple((y, m, n) for (y, m), n in sorted(counts.items(), reverse=True))


def plan(index: Index, renderer: Renderer) -> dict[str, Page]:
    s = renderer.settings
    entries = index.entries
    # the front page's path to what it no longer shows: the month of the newest
    # release that did not fit
    older = entries[s.page_size].month if len(entries) > s.page_size else None
    pages: dict[str, Page] = {
        "index.html": Page("front", (entries[: s.page_size], older)),
        "404.html": Page("404", ()),
        renderer.stylesheet_key: Page("stylesheet", ()),
        "favicon.svg": Page("favicon", (hashlib.sha256(renderer.favicon).hexdigest(),)),
        "feed.xml": Page("feed", (entries[: s.feed_size],)),
        "archive/index.html": Page("archive_index", (_month_counts(entries),)),
        "robots.txt": Page("robots", ()),
        "index.json": Page("index_json", (entries[:NEWEST], index_months(entries))),
    }
    by_month: dict[tuple[int, int], list[Entry]] = {}
    by_year: dict[int, list[Entry]] = {}
    by_kind: dict[str, list[Entry]] = {k: [] for k in KIND_LABELS}
    by_topic: dict[str, list[Entry]] = {}
    topic_names: dict[str, str] = {}
    for e in entries:
        by_month.setdefault(e.month, []).append(e)
        by_year.setdefault(e.published_at.year, []).append(e)
        by_kind[e.kind].append(e)
        for name, slug in zip(e.topics, e.topic_slugs, strict=True):
            by_topic.setdefault(slug, []).append(e)
            topic_names.setdefault(slug, name)  # newest entry's spelling wins
    months = sorted(by_month, reverse=True)
    for i, (year, month) in enumerate(months):
        later = months[i - 1] if i > 0 else None
        earlier = months[i + 1] if i + 1 < len(months) else None
        pages[f"archive/{year}/{month:02d}/index.html"] = Page(
            "archive_month", (year, month, tuple(by_month[(year, month)]), earlier, later)
        )
        pages[month_key(year, month)] = Page(
            "index_month", (f"{year:04d}-{month:02d}", tuple(by_month[(year, month)]))
        )
    for year, group in by_year.items():
        # a year: its months with their counts, and its newest releases
        pages[f"archive/{year}/index.html"] = Page(
            "archive_year",
            (year, tuple(group[:KIND_PAGE_SIZE]), _month_counts(tuple(group)), len(group)),
        )
    pages["kinds/index.html"] = Page(
        "kinds_index", (tuple((k, len(g)) for k, g in by_kind.items()),)
    )
    for kind, group in by_kind.items():
        # the newest of a kind, then one complete page per year of that kind
        kind_years: dict[int, list[Entry]] = {}
        for e in group:
            kind_years.setdefault(e.published_at.year, []).append(e)
        year_counts = tuple((y, len(g)) for y, g in kind_years.items())
        pages[f"kinds/{kind}/index.html"] = Page(
            "kind", (kind, tuple(group[:KIND_PAGE_SIZE]), year_counts, len(group))
        )
        pages[f"kinds/{kind}/feed.xml"] = Page("kind_feed", (kind, tuple(group[: s.feed_size])))
        for year, in_year in kind_years.items():
            pages[f"kinds/{kind}/{year}/index.html"] = Page(
                "kind_year", (kind, year, tuple(in_year), year_counts)
            )
    topics = tuple((slug, name, len(by_topic[slug])) for slug, name in sorted(topic_names.items()))
    pages["topics/index.html"] = Page("topics_index", (topics,))
    for slug, group in by_topic.items():
        name = topic_names[slug]
        pages[f"topics/{slug}/index.html"] = Page("topic", (slug, name, tuple(group)))
        pages[f"topics/{slug}/feed.xml"] = Page(
            "topic_feed", (slug, name, tuple(group[: s.feed_size]))
        )
    # sitemaps: an index over one sitemap of listing pages and one per year
    listing_paths = tuple(
        "/" + k[: -len("index.html")] for k in sorted(pages) if k.endswith("index.html")
    )
    pages["sitemaps/pages.xml"] = Page("sitemap_pages", (listing_paths,))
    for year, group in by_year.items():
        pages[f"sitemaps/releases-{year}.xml"] = Page("sitemap_year", (tuple(group),))
    years = tuple(sorted(by_year, reverse=True))
    pages["sitemap.xml"] = Page("sitemap_index", (years,))
    newest = entries[0].published_at if entries else None
    news = tuple(
        e for e in entries if newest is not None and newest - e.published_at <= NEWS_WINDOW
    )
    pages["news-sitemap.xml"] = Page("news_sitemap", (news[:1000],))
    return pages


def month_key(year: int, month: int) -> str:
    """The public month file of ``index.json`` version 2."""
    return f"index/{year:04d}-{month:02d}.json"


def changed_keys(old: dict[str, Page], new: dict[str, Page]) -> tuple[list[str], list[str]]:
    """Keys to (re)write and keys to delete, going from plan ``old`` to ``new``."""
    write = [k for k, page in new.items() if old.get(k) != page]
    delete = [k for k in old if k not in new]
    return sorted(write), sorted(delete)


def render_page(key: str, page: Page, renderer: Renderer, index: Index) -> bytes:
    return _RENDERERS[page.kind](renderer, index, *page.args)


def _front(
    r: Renderer, index: Index, entries: tuple[Entry, ...], older: tuple[int, int] | None
) -> bytes:
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
    index: Index,
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
    r: Renderer,
    index: Index,
    year: int,
    newest: tuple[Entry, ...],
    months: tuple[tuple[int, int, int], ...],
    total: int,
) -> bytes:
    return r.listing(
        path=f"/archive/{year}/",
        heading=r.gettext("Releases from %(period)s", period=str(year)),
        entries=newest,
        nav="archive",
        total=total,
        more=("/archive/", r.gettext("All months")),
        months=tuple(
            (f"/archive/{y}/{m:02d}/", r.month_name(y, m), n) for y, m, n in months
        ),
    )


def _kind(
    r: Renderer,
    index: Index,
    kind: str,
    group: tuple[Entry, ...],
    years: tuple[tuple[int, int], ...],
    total: int | None = None,
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


def _kind_year(
    r: Renderer,
    index: Index,
    kind: str,
    year: int,
    group: tuple[Entry, ...],
    years: tuple[tuple[int, int], ...],
) -> bytes:
    plural = r.gettext(KIND_PLURALS[kind])
    return r.listing(
        path=f"/kinds/{kind}/{year}/",
        heading=r.gettext("%(kinds)s from %(year)s", kinds=plural, year=str(year)),
        entries=group,
        nav=kind,
        feed=f"/kinds/{kind}/feed.xml",
        more=(f"/kinds/{kind}/", r.gettext("Latest of this kind")),
        years=tuple((y, f"/kinds/{kind}/{y}/", n) for y, n in years),
    )


def _kind_feed(r: Renderer, index: Index, kind: str, group: tuple[Entry, ...]) -> bytes:
    return r.feed(
        entries=group,
        title=f"{r.settings.site_title}: {r.gettext(KIND_PLURALS[kind])}",
        path=f"/kinds/{kind}/feed.xml",
        alt_path=f"/kinds/{kind}/",
    )


def _robots(r: Renderer, index: Index) -> bytes:
    base = r.settings.site_url
    return (
        f"User-agent: *\nAllow: /\n\nSitemap: {base}/sitemap.xml\n"
        f"Sitemap: {base}/news-sitemap.xml\n"
    ).encode()


def _topic(r: Renderer, index: Index, slug: str, name: str, group: tuple[Entry, ...]) -> bytes:
    return r.listing(
        path=f"/topics/{slug}/",
        heading=name,
        entries=group,
        nav="topics",
        intro=r.gettext("Releases about %(topic)s", topic=name),
        feed=f"/topics/{slug}/feed.xml",
        more=("/topics/", r.gettext("All topics")),
    )


def _topic_feed(r: Renderer, index: Index, slug: str, name: str, group: tuple[Entry, ...]) -> bytes:
    return r.feed(
        entries=group,
        title=f"{r.settings.site_title}: {name}",
        path=f"/topics/{slug}/feed.xml",
        alt_path=f"/topics/{slug}/",
    )


def _feed(r: Renderer, index: Index, entries: tuple[Entry, ...]) -> bytes:
    return r.feed(entries=entries, title=r.settings.site_title, path="/feed.xml", alt_path="/")


def _sitemap_pages(r: Renderer, index: Index, paths: tuple[str, ...]) -> bytes:
    return r.urlset(tuple((r.settings.site_url + p, "") for p in paths))


def _sitemap_year(r: Renderer, index: Index, group: tuple[Entry, ...]) -> bytes:
    return r.urlset(tuple((e.url, e.modified.isoformat()) for e in group))


def _sitemap_index(r: Renderer, index: Index, years: tuple[int, ...]) -> bytes:
    base = r.settings.site_url
    maps = (base + "/sitemaps/pages.xml",) + tuple(
        f"{base}/sitemaps/releases-{y}.xml" for y in years
    )
    return r.sitemap_index(maps)


_RENDERERS: dict[str, Callable[..., bytes]] = {
    "index_json": lambda r, index, newest, counts: public_index(
        newest, counts, r.settings.site_url
    ),
    "index_month": lambda r, index, month, group: month_file(month, group),
    "front": _front,
    "404": lambda r, index: r.not_found(),
    "stylesheet": lambda r, index: r.stylesheet,
    "favicon": lambda r, index, digest: r.favicon,
    "feed": _feed,
    "archive_index": lambda r, index, months: r.archive_index(months),
    "archive_month": _archive_month,
    "archive_year": _archive_year,
    "kinds_index": lambda r, index, counts: r.kinds_index(counts),
    "kind_feed": _kind_feed,
    "kind": _kind,
    "kind_year": _kind_year,
    "robots": _robots,
    "topics_index": lambda r, index, topics: r.topics_index(topics),
    "topic": _topic,
    "topic_feed": _topic_feed,
    "sitemap_pages": _sitemap_pages,
    "sitemap_year": _sitemap_year,
    "sitemap_index": _sitemap_index,
    "news_sitemap": lambda r, index, entries: r.news_sitemap(entries),
}
