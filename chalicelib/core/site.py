"""The shape of the public site: which shared objects exist and what each shows.

The plan maps every shared key (front page, archives, topics, kinds, feeds,
sitemaps, ``index.json``, assets) to a ``Page`` spec: a small, hashable
description of its inputs. Pages come in groups, each computed from one bounded
piece of a ``View`` (``core.view``):

- the site group: front page, feeds, ``index.json``, the archive, topic and
  kind indexes, the sitemap index — from the newest entries and the counts;
- a year: ``archive/<yyyy>/`` (its months with their counts);
- a month: ``archive/<yyyy>/<mm>/``, ``index/<yyyy>-<mm>.json``,
  ``sitemaps/<yyyy>-<mm>.xml``, and the month pages of each topic and kind
  with releases that month (``topics/<slug>/<yyyy>/<mm>/``,
  ``kinds/<kind>/<yyyy>/<mm>/``) — from that month's entries;
- a topic or kind: its front page (newest releases, counts by month) and feed.

No page lists every release of something that grows with the archive: a
growing listing is split into month pages, which stop changing once their
month is over. ``plan(view)`` is every group (a full build); ``plan_groups``
only the groups one change touches (a publish), so two plans are compared key
by key and a publish rewrites a bounded set of bounded objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .index import NEWEST, Entry, Index
from .model import KIND_LABELS
from .pages import render_page
from .render import Renderer
from .view import SLICE_SIZE, FullView, View, topic_name

KIND_PAGE_SIZE = SLICE_SIZE
NEWS_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Page:
    """What a shared object shows: a renderer name and its (hashable) inputs."""

    kind: str
    args: tuple[Any, ...]


@dataclass
class Groups:
    """The page groups a change touches (``site`` is always planned)."""

    years: set[int] = field(default_factory=set)
    months: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    everything: bool = False  # the whole site (a first commit)

    def add(self, entry: Entry) -> None:
        self.years.add(entry.published_at.year)
        self.months.add(entry.month_key)
        self.topics.update(entry.topic_slugs)
        self.kinds.add(entry.kind)


def _ym(month: str) -> tuple[int, int]:
    return int(month[:4]), int(month[5:7])


def _year_month_counts(months: Iterable[tuple[str, int]]) -> tuple[tuple[int, int, int], ...]:
    return tuple((*_ym(m), n) for m, n in months)


def _year_counts(months: Iterable[tuple[str, int]]) -> tuple[tuple[int, int], ...]:
    counts: dict[int, int] = {}
    for m, n in months:
        counts[_ym(m)[0]] = counts.get(_ym(m)[0], 0) + n
    return tuple(sorted(counts.items(), reverse=True))


def _years_of(months: tuple[tuple[str, int], ...]) -> dict[int, tuple[tuple[str, int], ...]]:
    out: dict[int, list[tuple[str, int]]] = {}
    for m, n in months:
        out.setdefault(_ym(m)[0], []).append((m, n))
    return {y: tuple(ms) for y, ms in out.items()}


def plan(view: View | Index, renderer: Renderer) -> dict[str, Page]:
    """Every shared page of the site (of a whole ``Index``, or a view)."""
    if isinstance(view, Index):
        view = FullView(view.entries)
    months = [m for m, _n in view.months]
    groups = Groups(
        years={_ym(m)[0] for m in months},
        months=set(months),
        topics={s for s, _name, _n in view.topics},
        kinds=set(KIND_LABELS),
    )
    return plan_groups(view, renderer, groups)


def plan_years(
    months: Iterable[tuple[str, int]], years: Iterable[int] | None = None
) -> dict[str, Page]:
    """``archive/<yyyy>/`` of every year of the site's (month, count) list, or
    of ``years`` only: each year's months with their counts (nothing for a
    year without a release)."""
    months = tuple(months)
    pages: dict[str, Page] = {}
    for year in sorted({_ym(m)[0] for m, _n in months} if years is None else years):
        in_year = tuple((m, n) for m, n in months if _ym(m)[0] == year)
        if in_year:
            pages[f"archive/{year}/index.html"] = Page(
                "archive_year", (year, _year_month_counts(in_year), sum(n for _m, n in in_year))
            )
    return pages


def plan_groups(view: View, renderer: Renderer, groups: Groups) -> dict[str, Page]:
    """The site group and the given groups, planned from ``view``."""
    pages = plan_site(view, renderer)
    all_months = [m for m, _n in view.months]
    counts = dict(view.months)
    pages.update(plan_years(view.months, groups.years))
    for month in sorted(groups.months):
        if month in counts:
            i = all_months.index(month)
            later = all_months[i - 1] if i > 0 else None
            earlier = all_months[i + 1] if i + 1 < len(all_months) else None
            pages.update(plan_month(view.month(month), month, earlier, later))
    for slug in sorted(groups.topics):
        pages.update(plan_topic(view, renderer, slug))
    for kind in sorted(groups.kinds):
        pages.update(plan_kind(view, renderer, kind))
    return pages


def plan_site(view: View, renderer: Renderer) -> dict[str, Page]:
    s = renderer.settings
    newest = view.newest
    older = newest[s.page_size].month if len(newest) > s.page_size else None
    years = tuple(sorted({_ym(m)[0] for m, _n in view.months}, reverse=True))
    topics = view.topics
    # sitemaps/pages.xml: the listing pages that are not a month's
    listing = ["/", "/archive/", "/kinds/", "/topics/"]
    listing += [f"/archive/{y}/" for y in years]
    listing += [f"/kinds/{k}/" for k in KIND_LABELS]
    listing += [f"/topics/{slug}/" for slug, _name, _n in topics]
    newest_at = newest[0].published_at if newest else None
    news = tuple(
        e for e in newest if newest_at is not None and newest_at - e.published_at <= NEWS_WINDOW
    )
    return {
        "index.html": Page("front", (newest[: s.page_size], older)),
        "404.html": Page("404", ()),
        renderer.stylesheet_key: Page("stylesheet", ()),
        "favicon.svg": Page("favicon", (hashlib.sha256(renderer.favicon).hexdigest(),)),
        "feed.xml": Page("feed", (newest[: s.feed_size],)),
        "archive/index.html": Page("archive_index", (_year_counts(view.months),)),
        "robots.txt": Page("robots", ()),
        "index.json": Page("index_json", (newest[:NEWEST], view.months)),
        "kinds/index.html": Page("kinds_index", (view.kinds,)),
        "topics/index.html": Page("topics_index", (topics,)),
        "sitemaps/pages.xml": Page("sitemap_pages", (tuple(sorted(listing)),)),
        "sitemap.xml": Page("sitemap_index", (tuple(m for m, _n in view.months),)),
        "news-sitemap.xml": Page("news_sitemap", (news,)),
    }


def plan_month(
    entries: tuple[Entry, ...], month: str, earlier: str | None, later: str | None
) -> dict[str, Page]:
    """The pages of one month: its archive page, month file and sitemap, and
    the month page of every topic and kind with a release that month."""
    year, mm = _ym(month)
    pages = {
        f"archive/{year}/{mm:02d}/index.html": Page(
            "archive_month",
            (year, mm, entries, earlier and _ym(earlier), later and _ym(later)),
        ),
        month_key(year, mm): Page("index_month", (month, entries)),
    }
    listing = [f"/archive/{year}/{mm:02d}/"]
    by_topic: dict[str, list[Entry]] = {}
    by_kind: dict[str, list[Entry]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
        for slug in dict.fromkeys(e.topic_slugs):
            by_topic.setdefault(slug, []).append(e)
    for slug, group in sorted(by_topic.items()):
        pages[f"topics/{slug}/{year}/{mm:02d}/index.html"] = Page(
            "topic_month", (slug, topic_name(group, slug), year, mm, tuple(group))
        )
        listing += [f"/topics/{slug}/{year}/{mm:02d}/", f"/topics/{slug}/{year}/"]
    for kind, group in sorted(by_kind.items()):
        pages[f"kinds/{kind}/{year}/{mm:02d}/index.html"] = Page(
            "kind_month", (kind, year, mm, tuple(group))
        )
        listing += [f"/kinds/{kind}/{year}/{mm:02d}/", f"/kinds/{kind}/{year}/"]
    pages[f"sitemaps/{month}.xml"] = Page("sitemap_month", (entries, tuple(sorted(listing))))
    return pages


def plan_topic(view: View, renderer: Renderer, slug: str) -> dict[str, Page]:
    topic = view.topic(slug)
    if not topic.months:
        return {}
    years = _years_of(topic.months)
    pages = {
        f"topics/{slug}/index.html": Page(
            "topic", (slug, topic.name, topic.newest, _year_counts(topic.months), topic.total)
        ),
        f"topics/{slug}/feed.xml": Page(
            "topic_feed", (slug, topic.name, topic.newest[: renderer.settings.feed_size])
        ),
    }
    for year, months in years.items():
        pages[f"topics/{slug}/{year}/index.html"] = Page(
            "topic_year", (slug, topic.name, year, months)
        )
    return pages


def plan_kind(view: View, renderer: Renderer, kind: str) -> dict[str, Page]:
    group = view.kind(kind)
    pages = {
        f"kinds/{kind}/index.html": Page(
            "kind", (kind, group.newest, _year_counts(group.months), group.total)
        ),
        f"kinds/{kind}/feed.xml": Page(
            "kind_feed", (kind, group.newest[: renderer.settings.feed_size])
        ),
    }
    for year, months in _years_of(group.months).items():
        pages[f"kinds/{kind}/{year}/index.html"] = Page("kind_year", (kind, year, months))
    return pages


def month_key(year: int, month: int) -> str:
    """The public month file of ``index.json`` version 2."""
    return f"index/{year:04d}-{month:02d}.json"


def _slugs(value: Any) -> list[str]:
    if isinstance(value, Entry):
        return [value.slug]
    if isinstance(value, tuple | list):
        return [s for v in value for s in _slugs(v)]
    return []


def shows_other_releases(old: Page, new: Page) -> bool:
    """Whether two versions of a page list different releases (by slug, as
    many times each). Every release a page lists is in its bytes by its
    link, so the bytes differ: the old version need not be rendered to know
    the page must be written (a wrong ``True`` would only rewrite a page
    with the same bytes)."""
    return sorted(_slugs(old.args)) != sorted(_slugs(new.args))


def changed_keys(old: dict[str, Page], new: dict[str, Page]) -> tuple[list[str], list[str]]:
    """Keys to (re)write and keys to delete, going from plan ``old`` to ``new``."""
    write = [k for k, page in new.items() if old.get(k) != page]
    delete = [k for k in old if k not in new]
    return sorted(write), sorted(delete)


__all__ = [
    "Groups",
    "Page",
    "changed_keys",
    "plan",
    "plan_groups",
    "render_page",
    "shows_other_releases",
]
