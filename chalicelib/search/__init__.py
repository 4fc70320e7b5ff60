"""Full-text search over every public release, on Pagefind.

- ``records``: the search record of a release and the HTML Pagefind indexes.
- ``bundle``: records in, one Pagefind index out, deterministic.
- ``pieces``: the bundle (``pagefind/…``) as one index per year, built one
  after the other, with the manifest the search page starts from.
- ``corpus``: the per-month search corpus in the source bucket, kept by a
  commit listener, so the Lambda path never reads release pages.
- ``updater``: ``update_search``, which rebuilds and uploads the bundle when the
  site changed.

``site_files`` is what ``newsroom build`` adds to a site: the search page and
the bundle. Only public releases reach it (the caller passes the live index).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.model import parse_release
from ..errors import InvalidRelease
from ..keys import SEARCH_PAGE_KEY
from .bundle import ENTRY_KEY, PREFIX
from .indexer import SearchIndexError
from .pieces import MANIFEST_KEY, build_bundle
from .records import record

__all__ = [
    "ENTRY_KEY",
    "MANIFEST_KEY",
    "PREFIX",
    "SEARCH_PAGE_KEY",
    "SearchIndexError",
    "build_bundle",
    "page_files",
    "records_from_sources",
    "site_files",
]


def records_from_sources(entries: Iterable[Any], sources: Mapping[str, bytes]) -> list[dict]:
    """Records of the index's (public) entries, parsed from their sources."""
    out = []
    for entry in entries:
        raw = sources.get(entry.source_key)
        if raw is None:
            continue
        try:
            release = parse_release(raw, name=entry.source_key)
        except InvalidRelease:  # a kept entry whose source went bad: not searchable
            continue
        if release.slug == entry.slug:
            out.append(record(release, entry.summary))
    return out


def page_files(renderer: Any) -> dict[str, bytes]:
    """The search page and its script (``search/…``)."""
    return {
        renderer.search_script_key: renderer.search_script,
        SEARCH_PAGE_KEY: renderer.search_page(),
    }


def site_files(
    records: Iterable[dict[str, Any]], renderer: Any, counts: Mapping[str, int] | None = None
) -> dict[str, bytes]:
    """The search page, its script and the bundle of ``records`` (``counts``:
    public releases per month, which decide the pieces; by default the records')."""
    files = build_bundle(records, counts)
    files.update(page_files(renderer))
    return files
