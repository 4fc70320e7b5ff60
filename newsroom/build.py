"""Whole-site rendering: every source at once, for ``newsroom build`` and ``rebuild``.

The same parser, renderer and site plan as the publisher, so a local build and
the Lambda path give the same keys and bytes. One bad file is reported and
skipped; the rest goes on. Release pages render in parallel processes when
there are many of them (Markdown is most of the cost).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing as mp
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from chalicelib.core.i18n import Version, language_versions
from chalicelib.core.index import Entry, Index, source_digest
from chalicelib.core.index import months as index_months
from chalicelib.core.model import Release, parse_release
from chalicelib.core.render import RenderedRelease, Renderer
from chalicelib.core.site import Page, plan, render_page
from chalicelib.errors import FieldError, InvalidRelease, SlugConflict
from chalicelib.keys import INDEX_KEY, MEDIA_PREFIX, put_public, release_key
from chalicelib.receipts import Scheduled
from chalicelib.storage import Storage, md5_etag

from .build_search import SearchPieces, piece_hints

PARALLEL_THRESHOLD = 400
CHUNK = 100  # releases per task sent to a render worker


@dataclass
class Problem:
    source: str
    error: FieldError

    def line(self) -> str:
        return f"{self.source}: {self.error.loc}: {self.error.msg}"


@dataclass
class SiteBuild:
    files: dict[str, bytes] = field(default_factory=dict)
    index: Index = field(default_factory=Index)
    problems: list[Problem] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    # release pages listed in the index but not re-rendered (see ``current``)
    kept: list[str] = field(default_factory=list)
    # release pages handed to ``build_site(sink=...)`` instead of kept in ``files``
    streamed: list[str] = field(default_factory=list)
    # objects left as the previous build wrote them (see ``previous``)
    reused: list[str] = field(default_factory=list)


# What forked render workers work on: set in the parent just before the fork,
# inherited by the children, never pickled. Tasks are then only index ranges or
# keys, and only the rendered bytes travel back.
_SHARED: dict[str, Any] = {}


def _started() -> None:
    return None


def _fork_pool(workers: int, **shared: Any) -> ProcessPoolExecutor:
    _SHARED.clear()
    _SHARED.update(shared)
    # freezing the collector keeps the children's garbage collection from
    # touching (and so copying) every object they share with the parent
    gc.collect()
    gc.freeze()
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"))
        pool.submit(_started).result()  # a fork pool starts all its workers at once
        return pool
    finally:
        gc.unfreeze()
        _SHARED.clear()


def _render_range(bounds: tuple[int, int]) -> list[tuple[bytes, str, str]]:
    renderer: Renderer = _SHARED["renderer"]
    out = []
    versions = _SHARED["versions"]
    for _key, _raw, release in _SHARED["live"][bounds[0] : bounds[1]]:
        r = renderer.release(release, versions.get(release.translation_key or "", ()))
        out.append((r.page, r.summary, r.revision))
    return out


def _render_keys(keys: list[str]) -> list[tuple[str, bytes]]:
    renderer, pages, index = _SHARED["renderer"], _SHARED["pages"], _SHARED["index"]
    with renderer.sharing_cards():
        return [(key, render_page(key, pages[key], renderer, index)) for key in keys]


def parse_sources(
    sources: Iterable[tuple[str, bytes]],
) -> tuple[list[tuple[str, bytes, Release]], list[Problem]]:
    parsed, problems = [], []
    for key, raw in sources:
        try:
            parsed.append((key, raw, parse_release(raw, name=key)))
        except InvalidRelease as exc:
            problems.extend(Problem(key, e) for e in exc.errors)
    return parsed, problems


def _has_translation_key(raw: bytes) -> bool:
    return b'"translation_key"' in raw


def _versions_may_change(
    parsed: list[tuple[str, bytes, Release]], reusable: dict[str, Entry], seen: set[str]
) -> bool:
    """A new or changed source is a language version, or a source has gone."""
    return any(r.translation_key for _k, _raw, r in parsed) or any(k not in seen for k in reusable)


def build_site(
    sources: Iterable[tuple[str, bytes]],
    renderer: Renderer,
    *,
    now: datetime,
    workers: int | None = None,
    current: Index | None = None,
    sink: Callable[[str, bytes], None] | None = None,
    previous: Index | None = None,
    present: Callable[[str], bool] = lambda key: False,
    listed: Iterable[str] = (),
) -> SiteBuild:
    """Render the whole public tree from ``(source_key, bytes)`` pairs.

    ``current`` is the live index when re-rendering a published site: as in the
    publisher, whoever holds a slug there keeps it, and a live release whose
    source has since become invalid stays listed (its page is not re-rendered:
    ``kept``) rather than disappearing.

    ``sink`` receives each release page as soon as it is rendered, instead of
    ``files`` holding it (``streamed`` lists those keys): a 10,000-release build
    then never holds every page in memory at once.

    ``previous`` is the index the output already holds (an incremental build):
    under the same theme, a source whose bytes match its entry's digest is
    neither parsed nor rendered — its entry is reused and its page left as it is
    — and a shared object whose plan inputs did not change is not rendered
    either, as long as ``present(key)`` says the object is there (``reused``
    lists both). The result is the same site as a full build. ``listed`` names
    sources the caller found unchanged without reading them (their listing's
    ETag equals the entry's digest); they are reused the same way."""
    reusable: dict[str, Entry] = {}
    if previous is not None and previous.theme == renderer.theme:
        reusable = {e.source_key: e for e in previous.entries if e.source_digest}
    to_parse: list[tuple[str, bytes]] = []
    reused: list[Entry] = []
    reused_raw: dict[str, bytes] = {}
    sources_seen: set[str] = set()
    for key, raw in sources:
        sources_seen.add(key)
        old = reusable.get(key)
        if (
            old is not None
            and old.source_digest == source_digest(raw)
            and present(release_key(old.slug))
        ):
            reused.append(old)
            reused_raw[key] = raw
        else:
            to_parse.append((key, raw))
    sources_seen.update(listed)
    for key in listed:
        old = reusable.get(key)
        if old is None or not present(release_key(old.slug)):
            raise ValueError(f"{key} was listed as unchanged but has no reusable entry")
        reused.append(old)
    parsed, problems = parse_sources(to_parse)
    if reused and _versions_may_change(parsed, reusable, sources_seen):
        # a release page links to its language versions, which index entries
        # cannot name: when a version may have appeared, changed or gone,
        # every reusable source that is a version is rendered again
        again = {k for k, raw in reused_raw.items() if _has_translation_key(raw)}
        if again:
            reused = [e for e in reused if e.source_key not in again]
            more, more_problems = parse_sources((k, reused_raw[k]) for k in sorted(again))
            parsed += more
            problems += more_problems
    result = SiteBuild(problems=problems)
    # the earliest-published file keeps a contested slug; ties by source key
    parsed.sort(key=lambda p: (p[2].published_at.timestamp(), p[0]))
    reused.sort(key=lambda e: (e.published_at.timestamp(), e.source_key))
    holders: dict[str, str] = {}
    kept: list[Entry] = []
    if current is not None:
        invalid = {p.source for p in problems}
        kept = [e for e in current.entries if e.source_key in invalid]
        holders.update((e.slug, e.source_key) for e in kept)
        for key, _raw, release in parsed:
            if not release.is_scheduled(now) and current.slug_holder(release.slug) == key:
                holders[release.slug] = key
        for entry in reused:
            if current.slug_holder(entry.slug) == entry.source_key:
                holders[entry.slug] = entry.source_key
        result.kept = sorted(release_key(e.slug) for e in kept)
    live: list[tuple[str, bytes, Release]] = []
    reused_live: list[Entry] = []
    candidates = [((r.published_at.timestamp(), k), (k, raw, r), None) for k, raw, r in parsed]
    candidates += [((e.published_at.timestamp(), e.source_key), None, e) for e in reused]
    for _order, item, entry in sorted(candidates, key=lambda c: c[0]):
        if entry is not None:
            key, slug = entry.source_key, entry.slug
        else:
            key, _raw, release = item  # type: ignore[misc]
            slug = release.slug
            if release.is_scheduled(now):
                result.scheduled.append(Scheduled(key, slug, release.publication_instant))
                continue
        holder = holders.get(slug)
        if holder is not None and holder != key:
            conflict = SlugConflict(slug, holder, key)
            result.problems.extend(Problem(key, e) for e in conflict.errors)
            continue
        holders[slug] = key
        if entry is not None:
            reused_live.append(entry)
            result.reused.append(release_key(slug))
        else:
            live.append(item)  # type: ignore[arg-type]

    workers = workers if workers is not None else (os.cpu_count() or 1)
    parallel = workers > 1 and len(live) >= PARALLEL_THRESHOLD
    entries = []
    # language versions among everything that will be live, found as the
    # publisher finds them: from what index entries carry (so a build and the
    # Lambda path stay byte-identical)
    items = [r for _k, _raw, r in live] + reused_live
    versions = {
        k: language_versions(k, items, renderer.settings.site_url)
        for k in {i.translation_key for i in items}
        if k
    }
    for (key, raw, release), parts in zip(
        live, _render_all(live, renderer, workers if parallel else 1, versions), strict=True
    ):
        rendered = RenderedRelease(*parts)
        if sink is not None:
            sink(release_key(release.slug), rendered.page)
            result.streamed.append(release_key(release.slug))
        else:
            result.files[release_key(release.slug)] = rendered.page
        entries.append(
            renderer.entry(release, rendered, source_key=key, source_digest=source_digest(raw))
        )
    del live, parsed
    index = Index.build(entries + reused_live + kept).with_theme(renderer.theme)
    result.index = index
    pages = plan(index, renderer)
    if reusable:
        before = plan(previous, renderer)  # type: ignore[arg-type]
        same = [k for k, page in pages.items() if before.get(k) == page and present(k)]
        result.reused.extend(same)
        for key in same:
            del pages[key]
    if parallel:
        result.files.update(_render_pages_parallel(pages, renderer, index, workers))
    else:
        with renderer.sharing_cards():
            for key, page in pages.items():
                result.files[key] = render_page(key, page, renderer, index)
    result.problems.sort(key=lambda p: p.source)
    return result


def _render_all(
    live: list[tuple[str, bytes, Release]],
    renderer: Renderer,
    workers: int,
    versions: dict[str, tuple[Version, ...]] | None = None,
) -> Iterator[tuple[bytes, str, str]]:
    """``(page, summary, revision)`` per release, in order; with workers, chunks
    stream back as they finish (a few in flight per worker), so the parent
    writes pages while the workers render."""
    versions = versions or {}
    if workers <= 1:
        for _key, _raw, release in live:
            r = renderer.release(release, versions.get(release.translation_key or "", ()))
            yield r.page, r.summary, r.revision
        return
    chunk = max(20, min(CHUNK, len(live) // (workers * 4) or 1))
    pool = _fork_pool(workers, renderer=renderer, live=live, versions=versions)
    try:
        pending: deque[Future[list[tuple[bytes, str, str]]]] = deque()
        for i in range(0, len(live), chunk):
            pending.append(pool.submit(_render_range, (i, i + chunk)))
            if len(pending) >= 3 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def _render_pages_parallel(
    pages: dict[str, Page], renderer: Renderer, index: Index, workers: int
) -> dict[str, bytes]:
    """Shared pages across the workers, balanced by how many entries each shows."""
    buckets = _balanced(pages, workers * 2)
    pool = _fork_pool(workers, renderer=renderer, pages=pages, index=index)
    try:
        out: dict[str, bytes] = {}
        for f in [pool.submit(_render_keys, b) for b in buckets if b]:
            out.update(f.result())
    finally:
        pool.shutdown()
    return {key: out[key] for key in pages}


@dataclass
class WriteStats:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)


def write_site(
    files: dict[str, bytes],
    storage: Storage,
    *,
    existing: dict[str, str],
    prune: bool,
    keep: Callable[[str], bool] = lambda key: key.startswith(MEDIA_PREFIX),
    last: str | None = INDEX_KEY,
    put: Callable[[str, bytes], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WriteStats:
    """Write what differs from ``existing`` (key -> ETag); ``last`` goes last (the
    index is the commit point); with ``prune``, delete keys the site no longer has."""
    stats = WriteStats()
    order = sorted(k for k in files if k != last) + ([last] if last in files else [])
    total = len(order)
    for n, key in enumerate(order, 1):
        body = files[key]
        if existing.get(key) == md5_etag(body):
            stats.unchanged += 1
        else:
            if put is not None:
                put(key, body)
            else:
                put_public(storage, key, body)
            stats.written.append(key)
        if progress:
            progress(n, total)
    if prune:
        for key in sorted(existing):
            if key not in files and not keep(key):
                storage.delete(key)
                stats.deleted.append(key)
    return stats


def file_etags(root: str, skip: Iterable[str] = ()) -> dict[str, str]:
    """Key -> MD5 ETag of every file under ``root`` (the local twin of a listing);
    keys in ``skip`` are listed with an empty ETag, without reading them."""
    skipped = set(skip)
    out: dict[str, str] = {}
    if not os.path.isdir(root):
        return out
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            if key in skipped:
                out[key] = ""
                continue
            with open(path, "rb") as fh:
                out[key] = md5_etag(fh.read())
    return out


class FolderSink:
    """A ``build_site(sink=...)`` that writes each page into a folder at once,
    unless the file there already holds the same bytes (a no-op rebuild reads
    but never rewrites)."""

    def __init__(self, storage: Storage, root: str) -> None:
        self.storage = storage
        self.root = root
        self.stats = WriteStats()

    def __call__(self, key: str, body: bytes) -> None:
        path = os.path.join(self.root, *key.split("/"))
        try:
            if os.path.getsize(path) == len(body):
                with open(path, "rb") as fh:
                    if fh.read() == body:
                        self.stats.unchanged += 1
                        return
        except OSError:
            pass
        put_public(self.storage, key, body)
        self.stats.written.append(key)


# ----------------------------------------------------------------- folder builds
# ``newsroom build`` into a folder, for archives of 100,000 releases: the parent
# never holds the sources nor the pages. Forked workers read, parse, render and
# write each release page themselves and send back only its index entry; the
# parent settles contested slugs, builds the index and plans the shared pages,
# which a second set of forked workers renders and writes; ``index.json`` goes
# last. Every worker is a fork of a parent that has already imported and
# compiled everything, so nothing is imported twice.


@dataclass
class FolderBuild:
    index: Index = field(default_factory=Index)
    problems: list[Problem] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    # pieces of the search bundle indexed a second time: the guess at them
    # made before rendering was wrong (build_search.py)
    search_again: int = 0
    # pieces of the search bundle kept as the folder held them (their
    # documents unchanged), and what the next build compares with
    search_kept: int = 0
    search_state: dict[str, dict[str, str]] = field(default_factory=dict)


def _write_file(root: str, key: str, body: bytes, fresh: bool) -> bool:
    """Write ``body`` at ``key`` under ``root``; False when the file already
    held those bytes (an unchanged file is read, never rewritten). In a fresh
    folder the file is written in place; over an earlier build through a
    temporary file, so a reader never meets half a page."""
    path = os.path.join(root, key)
    if not fresh:
        try:
            if os.path.getsize(path) == len(body):
                with open(path, "rb") as fh:
                    if fh.read() == body:
                        return False
        except OSError:
            pass
    target = path if fresh else f"{path}.{os.getpid()}.tmp"
    try:
        fh = open(target, "wb")  # noqa: SIM115
    except FileNotFoundError:
        try:
            os.mkdir(os.path.dirname(path))  # a release page's folder: its parent is there
        except (FileNotFoundError, FileExistsError):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        fh = open(target, "wb")  # noqa: SIM115
    with fh:
        fh.write(body)
    if not fresh:
        os.replace(target, path)
    return True


def _page_of(key: str, path: str, *, reuse: bool = True) -> tuple[Any, ...]:
    """One source file in a worker: ``("live", key, entry, written,
    translation_key, doc)`` (the page's bytes instead of ``written`` when
    another file held the slug), ``("reused", key, slug, doc)``,
    ``("scheduled", key, Scheduled)`` or ``("problem", key, [FieldError])``;
    ``doc`` is where the release's search document was written (or None)."""
    renderer: Renderer = _SHARED["renderer"]
    root: str = _SHARED["root"]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return ("problem", key, [FieldError("(file)", f"cannot be read ({exc.strerror})")])
    digest = source_digest(raw)
    old = _SHARED["reusable"].get(key) if reuse else None
    reused = (
        old is not None
        and old.source_digest == digest
        and os.path.isfile(os.path.join(root, release_key(old.slug)))
    )
    if reused and (_SHARED["search"] is None or _SHARED["lazy_docs"]):
        # its page stays; its search document, if a piece needs it at all,
        # is made from the source by the search thread (``SearchPieces``)
        return ("reused", key, old.slug, None)  # type: ignore[union-attr]
    try:
        release = parse_release(raw, name=key)
    except InvalidRelease as exc:
        return ("problem", key, exc.errors)
    if reused:
        # the page stays as it is; only its search record is made again
        doc = _search_document(release, old.summary)  # type: ignore[union-attr]
        return ("reused", key, old.slug, doc)  # type: ignore[union-attr]
    if release.is_scheduled(_SHARED["now"]):
        return ("scheduled", key, Scheduled(key, release.slug, release.publication_instant))
    try:
        rendered = renderer.release(release)
    except Exception as exc:  # noqa: BLE001 - one file that cannot be rendered is that file's problem
        return ("problem", key, [FieldError("(file)", f"cannot be rendered ({exc!r:.200})")])
    held = _SHARED["held"].get(release.slug)
    if release.translation_key:
        # its page links to its language versions, known once every file is
        # read: it is rendered again then (``_versioned_pages``)
        written: bool | bytes | None = None
    elif held is not None and held != key:
        # another file held the slug in the last build: the parent decides, so
        # a claimant that loses again never overwrites the holder's page
        written = rendered.page
    else:
        written = _write_file(root, release_key(release.slug), rendered.page, _SHARED["fresh"])
    entry = renderer.entry(release, rendered, source_key=key, source_digest=digest)
    entry.json_text  # noqa: B018 - encoded here, in parallel, not in the parent
    doc = _search_document(release, rendered.summary)
    return ("live", key, entry, written, release.translation_key, doc)


# this process's file of search documents: [path, descriptor, size]
_DOCS: list[Any] = ["", -1, 0]


def _search_document(release: Release, summary: str) -> tuple[str, int, int] | None:
    """Append the release's search document to this process's documents file
    in the scratch folder, where only the parent looks; ``(path, offset,
    length)``. One file per process, not one per release: thousands of small
    files and folders cost the file system more than indexing them costs."""
    from chalicelib.search.records import document, record

    if _SHARED["search"] is None:
        return None
    body = document(record(release, summary)).encode("utf-8")
    path = os.path.join(_SHARED["search"], f"docs-{os.getpid()}")
    if _DOCS[0] != path:  # this process's first document of this build
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _DOCS[:] = [path, fd, os.fstat(fd).st_size]
    offset = _DOCS[2]
    # unbuffered: a pool worker ends without flushing buffers
    os.write(_DOCS[1], body)
    _DOCS[2] += len(body)
    return path, offset, len(body)


def _pages_of(items: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    return [_page_of(key, path) for key, path in items]


def _versioned_pages(items: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """Pages of language versions, with the links to the other versions:
    ``(key, revision, written)`` each."""
    renderer: Renderer = _SHARED["renderer"]
    out = []
    for key, path in items:
        with open(path, "rb") as fh:
            release = parse_release(fh.read(), name=key)
        versions = _SHARED["versions"].get(release.translation_key or "", ())
        rendered = renderer.release(release, versions)
        written = _write_file(
            _SHARED["root"], release_key(release.slug), rendered.page, _SHARED["fresh"]
        )
        out.append((key, rendered.revision, written))
    return out


def _shared_pages(keys: list[str]) -> tuple[int, int]:
    """Render and write shared pages in a worker: (written, unchanged)."""
    renderer, pages, index = _SHARED["renderer"], _SHARED["pages"], _SHARED["index"]
    written = 0
    with renderer.sharing_cards():
        for key in keys:
            body = render_page(key, pages[key], renderer, index)
            written += _write_file(_SHARED["root"], key, body, _SHARED["fresh"])
    return written, len(keys) - written


# the pages of one month (the archive's, each topic's and each kind's) list
# the same entries: they go to one worker, one after the other, so each
# entry's card is rendered once (``Renderer.sharing_cards``)
_MONTH_PAGE = re.compile(r"(?:^|/)(\d{4}/\d{2})/index\.html$")


def _balanced(pages: dict[str, Page], buckets: int) -> list[list[str]]:
    """Keys in ``buckets`` groups of about equal work (entries shown), the
    pages of one month in the same group, month after month."""

    def weight(page: Page) -> int:
        return 1 + sum(len(a) for a in page.args if isinstance(a, tuple))

    units: dict[str, list[str]] = {}
    for key in sorted(pages):
        month = _MONTH_PAGE.search(key)
        units.setdefault(month.group(1) if month else key, []).append(key)
    loads_of = {u: sum(weight(pages[k]) for k in keys) for u, keys in units.items()}
    groups: list[list[str]] = [[] for _ in range(buckets)]
    loads = [0] * buckets
    for unit in sorted(units, key=lambda u: (-loads_of[u], u)):
        i = loads.index(min(loads))
        groups[i].append(unit)
        loads[i] += loads_of[unit]
    return [[k for u in sorted(g) for k in units[u]] for g in groups if g]


def _run_with_parent(
    fn: Callable[[Any], Any], tasks: list[Any], workers: int, **shared: Any
) -> list[Any]:
    """``fn`` over ``tasks``, the first here and the others in ``workers - 1``
    forked workers at the same time. For the shared pages: every worker that
    renders listings touches (and so copies) most of the index it inherited;
    the parent touching its own copies nothing, which saves one copy of the
    index (about a third of the peak at 100,000 releases)."""
    if workers <= 1 or len(tasks) <= 1:
        return list(_run(fn, tasks, 1, **shared))
    pool = _fork_pool(workers - 1, **shared)
    try:
        futures = [pool.submit(fn, task) for task in tasks[1:]]
        _SHARED.update(shared)
        try:
            mine = fn(tasks[0])
        finally:
            _SHARED.clear()
        return [mine, *(f.result() for f in futures)]
    finally:
        pool.shutdown(cancel_futures=True)


def _run(fn: Callable[[Any], Any], tasks: list[Any], workers: int, **shared: Any) -> Iterator[Any]:
    """``fn`` over ``tasks``: in forked workers that inherit ``shared``, or here."""
    if workers > 1 and len(tasks) > 1:
        pool = _fork_pool(workers, **shared)
        try:
            yield from pool.map(fn, tasks)
        finally:
            pool.shutdown(cancel_futures=True)
        return
    _SHARED.clear()
    _SHARED.update(shared)
    try:
        yield from map(fn, tasks)
    finally:
        _SHARED.clear()


def build_folder(
    files: list[tuple[str, str]],
    renderer: Renderer,
    root: str,
    *,
    now: datetime,
    workers: int | None = None,
    previous: Index | None = None,
    media: Iterable[tuple[str, str]] = (),
    search: bool = True,
    previous_search: Mapping[str, Mapping[str, str]] | None = None,
) -> FolderBuild:
    """Build the whole site from ``(source_key, path)`` pairs into the folder
    ``root`` (see the section comment). ``previous`` is the index a build left
    there: under the same theme, a release whose source is unchanged and whose
    page is present is neither parsed nor rendered, nor is a shared page whose
    inputs did not change. ``media`` ``(key, path)`` files are copied. Objects an
    earlier build left that the site no longer has are removed. ``search``
    false leaves out the search page and bundle. ``previous_search`` is the
    ``search_state`` the build that left the folder returned: a piece of the
    search bundle whose documents and files are unchanged is kept, not indexed
    again."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    parallel = workers if len(files) >= PARALLEL_THRESHOLD else 1
    fresh = not os.path.isdir(root) or not os.listdir(root)
    built_before = os.path.isfile(os.path.join(root, INDEX_KEY))
    os.makedirs(os.path.join(root, "releases"), exist_ok=True)
    reusable: dict[str, Entry] = {}
    if previous is not None and previous.theme == renderer.theme:
        reusable = {e.source_key: e for e in previous.entries if e.source_digest}
    # templates compiled once, before the fork; nothing re-checks their files
    renderer.env.auto_reload = False
    for name in renderer.env.list_templates():
        renderer.env.get_template(name)
    held = {e.slug: e.source_key for e in previous.entries} if previous is not None else {}
    scratch = tempfile.mkdtemp(prefix="newsroom-search-")
    pieces: SearchPieces | None = None
    try:
        shared = {
            "search": scratch if search else None,
            "renderer": renderer,
            "root": root,
            "fresh": fresh,
            "now": now,
            "reusable": reusable,
            "held": held,
            # over an earlier build with search, an unchanged source's search
            # document is made only if its piece is indexed again
            "lazy_docs": bool(search and not fresh and previous_search),
        }

        result = FolderBuild()
        if search:
            # sources rendered piece by piece, so that Pagefind indexes the
            # first piece while the workers render the next (build_search.py)
            hints = piece_hints(files)
            planned: dict[str, list[tuple[str, str]]] = {}
            for key, (piece, url) in hints.items():
                planned.setdefault(piece, []).append((url, key))
            rank = {piece: n for n, piece in enumerate(sorted(planned))}
            files = sorted(files, key=lambda f: (rank.get(hints.get(f[0], ("",))[0], -1), f[0]))
            pieces = SearchPieces(
                os.path.join(root, "pagefind") if fresh else os.path.join(scratch, "out"),
                fresh,
                planned,
                site=os.path.join(root, "pagefind"),
                previous=None if fresh else previous_search,
                theme=renderer.theme,
            )
            pieces.start()
        size = max(8, min(CHUNK, len(files) // (parallel * 8) or 1))
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        candidates: list[tuple[float, str, Entry, bool | bytes | None]] = []
        keys_of: dict[str, str | None] = {}  # source key -> translation_key
        docs: dict[str, tuple[str, int, int]] = {}  # source key -> its search document
        paths_of = dict(files)
        for outcomes in _run(_pages_of, chunks, parallel, **shared):
            for outcome in outcomes:
                kind, key = outcome[0], outcome[1]
                if kind == "live":
                    candidates.append(
                        (outcome[2].published_at.timestamp(), key, outcome[2], outcome[3])
                    )
                    keys_of[key] = outcome[4]
                    if outcome[5] is not None:
                        docs[key] = outcome[5]
                    if pieces is not None:
                        pieces.arrive(key, outcome[2].path, outcome[5], outcome[2].source_digest)
                elif kind == "reused":
                    entry = reusable[key]
                    doc = outcome[3]
                    if doc is None and pieces is not None:
                        doc = pieces.from_source(key, paths_of[key], entry.summary)
                    if doc is not None:
                        docs[key] = doc
                    candidates.append((entry.published_at.timestamp(), key, entry, False))
                    keys_of[key] = getattr(entry, "translation_key", None)
                    if pieces is not None:
                        pieces.arrive(key, entry.path, doc, entry.source_digest)
                elif kind == "scheduled":
                    result.scheduled.append(outcome[2])
                else:
                    result.problems.extend(Problem(key, e) for e in outcome[2])
        if pieces is not None:
            pieces.close()

        # the earliest-published file keeps a contested slug; ties by source key
        holders: dict[str, str] = {}
        versioned: list[str] = []  # language versions: rendered once all are known
        contested: set[str] = set()
        entries: list[Entry] = []
        for _ts, key, entry, written in sorted(candidates, key=lambda c: (c[0], c[1])):
            holder = holders.get(entry.slug)
            if holder is not None:
                conflict = SlugConflict(entry.slug, holder, key)
                result.problems.extend(Problem(key, e) for e in conflict.errors)
                if written is True:  # it wrote over the holder's page
                    contested.add(entry.slug)
                continue
            holders[entry.slug] = key
            entries.append(entry)
            if keys_of[key]:
                versioned.append(key)
                continue
            if isinstance(written, bytes):
                written = _write_file(root, release_key(entry.slug), written, fresh)
            result.written += written
            result.unchanged += not written
        del candidates
        if contested:
            # a losing claimant may have written its page after the holder did
            paths = dict(files)
            _SHARED.update(shared)
            try:
                for slug in sorted(contested):
                    outcome = _page_of(holders[slug], paths[holders[slug]], reuse=False)
                    if outcome[0] == "live" and isinstance(outcome[3], bytes):
                        _write_file(root, release_key(slug), outcome[3], fresh)
                    if outcome[0] == "live":
                        entries = [outcome[2] if e.slug == slug else e for e in entries]
                        if outcome[5] is not None:
                            docs[holders[slug]] = outcome[5]
                            if pieces is not None:
                                pieces.digests[outcome[5]] = outcome[2].source_digest
            finally:
                _SHARED.clear()

        if versioned:
            # as build_site does: versions found among everything live, from
            # what index entries carry, so the build and the Lambda path agree
            live = [
                SimpleNamespace(
                    translation_key=keys_of[e.source_key],
                    slug=e.slug,
                    url=e.url,
                    published_at=e.published_at,
                    language=e.language,
                )
                for e in entries
            ]
            versions = {
                k: language_versions(k, live, renderer.settings.site_url)
                for k in {v.translation_key for v in live}
                if k
            }
            paths = dict(files)
            todo = [(key, paths[key]) for key in versioned]
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            revisions: dict[str, str] = {}
            for done in _run(_versioned_pages, chunks, parallel, **shared, versions=versions):
                for key, revision, written in done:
                    revisions[key] = revision
                    result.written += written
                    result.unchanged += not written
            entries = [
                replace(e, revision=revisions[e.source_key], _json_text=None)
                if e.source_key in revisions
                else e
                for e in entries
            ]
        index = Index.build(entries).with_theme(renderer.theme)
        del entries
        result.index = index
        pages = plan(index, renderer)
        keys = {release_key(e.slug) for e in index.entries} | set(pages) | {INDEX_KEY}
        # if the plan holds index.json it is rendered like any page, but written last
        index_page = pages.pop(INDEX_KEY, None)
        index_body = (
            index.to_bytes()
            if index_page is None
            else render_page(INDEX_KEY, index_page, renderer, index)
        )
        if reusable:
            before = plan(previous, renderer)  # type: ignore[arg-type]
            same = [
                k
                for k, p in pages.items()
                if before.get(k) == p and os.path.isfile(os.path.join(root, k))
            ]
            result.unchanged += len(same)
            for key in same:
                del pages[key]
        # the real pieces: what the plan got wrong is indexed again while the
        # workers render the shared pages
        if pieces is not None:
            from chalicelib.search.pieces import pieces_of

            of = pieces_of(dict(index_months(index.entries)))
            final: dict[str, list[tuple[str, tuple[str, int, int]]]] = {}
            for e in index.entries:
                if e.source_key in docs:
                    final.setdefault(of.get(e.month_key, e.month_key[:4]), []).append(
                        (e.path, docs[e.source_key])
                    )
            pieces.finalize(final)
        groups = _balanced(pages, parallel)
        for written, unchanged in _run_with_parent(
            _shared_pages, groups, parallel, **shared, pages=pages, index=index
        ):
            result.written += written
            result.unchanged += unchanged
        bundle: Iterable[tuple[str, bytes | None]] = ()
        if search:
            from chalicelib.search import page_files

            # one file at a time: the bundle of 100,000 releases is large
            bundle = itertools.chain(pieces.finish(), page_files(renderer).items())  # type: ignore[union-attr]
        for key, body in bundle:
            keys.add(key)
            written = True if body is None else _write_file(root, key, body, fresh)
            result.written += written
            result.unchanged += not written
        if pieces is not None:
            keys.update(pieces.kept)
            result.unchanged += len(pieces.kept)
            result.search_again = pieces.again
            result.search_kept = pieces.reused
        referenced = index.media_keys()  # media follow releases, as in the bucket
        for key, path in sorted(media):
            if key not in referenced:
                continue
            keys.add(key)
            with open(path, "rb") as fh:
                written = _write_file(root, key, fh.read(), fresh)
            result.written += written
            result.unchanged += not written
        # the index is the commit point: written last
        written = _write_file(root, INDEX_KEY, index_body, fresh)
        result.written += written
        result.unchanged += not written
        if built_before:
            # only a folder that holds a newsroom build is pruned
            for dirpath, _dirs, names in os.walk(root, topdown=False):
                for name in names:
                    key = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                    if key not in keys:
                        os.unlink(os.path.join(dirpath, name))
                        result.removed.append(key)
                if dirpath != root and not os.listdir(dirpath):
                    os.rmdir(dirpath)  # a removed page's folder goes with it
        result.removed.sort()
        result.problems.sort(key=lambda p: p.source)
        if pieces is not None:
            result.search_state = pieces.state()  # the pieces as the folder now holds them
        return result

    finally:
        if pieces is not None:
            pieces.drop()  # a Pagefind still running (the build failed) stops
        if _DOCS[0].startswith(scratch + os.sep):
            os.close(_DOCS[1])  # documents the parent wrote itself
            _DOCS[:] = ["", -1, 0]
        shutil.rmtree(scratch, ignore_errors=True)
