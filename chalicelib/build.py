"""Whole-site rendering: every source at once, for ``newsroom build`` and ``rebuild``.

The same parser, renderer and site plan as the publisher, so a local build and
the Lambda path give the same keys and bytes. One bad file is reported and
skipped; the rest goes on. Release pages render in parallel processes when
there are many of them (Markdown is most of the cost).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from .errors import FieldError, InvalidRelease, SlugConflict
from .index import INDEX_KEY, Entry, Index
from .model import Release, parse_release
from .receipts import Scheduled
from .render import Renderer
from .settings import Settings
from .site import cache_control, content_type, plan, release_key, render_page
from .storage import Storage, md5_etag

PARALLEL_THRESHOLD = 400


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


def _render_chunk(
    args: tuple[Settings, list[tuple[str, bytes]]],
) -> list[tuple[str, bytes, str, str]]:
    settings, items = args
    renderer = Renderer(settings)
    out = []
    for key, raw in items:
        release = parse_release(raw, name=key)
        r = renderer.release(release)
        out.append((key, r.page, r.summary, r.revision))
    return out


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


def build_site(
    sources: Iterable[tuple[str, bytes]],
    renderer: Renderer,
    *,
    now: datetime,
    workers: int | None = None,
    current: Index | None = None,
) -> SiteBuild:
    """Render the whole public tree from ``(source_key, bytes)`` pairs.

    ``current`` is the live index when re-rendering a published site: as in the
    publisher, whoever holds a slug there keeps it, and a live release whose
    source has since become invalid stays listed (its page is not re-rendered:
    ``kept``) rather than disappearing."""
    parsed, problems = parse_sources(sources)
    result = SiteBuild(problems=problems)
    # the earliest-published file keeps a contested slug; ties by source key
    parsed.sort(key=lambda p: (p[2].published_at.timestamp(), p[0]))
    holders: dict[str, str] = {}
    kept: list[Entry] = []
    if current is not None:
        invalid = {p.source for p in problems}
        kept = [e for e in current.entries if e.source_key in invalid]
        holders.update((e.slug, e.source_key) for e in kept)
        for key, _raw, release in parsed:
            if not release.is_embargoed(now) and current.slug_holder(release.slug) == key:
                holders[release.slug] = key
        result.kept = sorted(release_key(e.slug) for e in kept)
    live: list[tuple[str, bytes, Release]] = []
    for key, raw, release in parsed:
        if release.is_embargoed(now):
            result.scheduled.append(Scheduled(key, release.slug, release.embargo_until))  # type: ignore[arg-type]
            continue
        holder = holders.get(release.slug)
        if holder is not None and holder != key:
            conflict = SlugConflict(release.slug, holder, key)
            result.problems.extend(Problem(key, e) for e in conflict.errors)
            continue
        holders[release.slug] = key
        live.append((key, raw, release))

    rendered = _render_all(live, renderer, workers)
    entries = []
    for key, _raw, release in live:
        page, summary, revision = rendered[key]
        result.files[release_key(release.slug)] = page
        entries.append(
            Entry.from_release(
                release,
                source_key=key,
                site_url=renderer.settings.site_url,
                summary=summary,
                revision=revision,
            )
        )
    index = Index.build(entries + kept).with_theme(renderer.theme)
    result.index = index
    for key, page in plan(index, renderer).items():
        result.files[key] = render_page(key, page, renderer, index)
    result.files[INDEX_KEY] = index.to_bytes()
    result.problems.sort(key=lambda p: p.source)
    return result


def _render_all(
    live: list[tuple[str, bytes, Release]], renderer: Renderer, workers: int | None
) -> dict[str, tuple[bytes, str, str]]:
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(live) < PARALLEL_THRESHOLD:
        out = {}
        for key, _raw, release in live:
            r = renderer.release(release)
            out[key] = (r.page, r.summary, r.revision)
        return out
    chunk = max(50, len(live) // (workers * 4))
    jobs = [
        (renderer.settings, [(k, raw) for k, raw, _ in live[i : i + chunk]])
        for i in range(0, len(live), chunk)
    ]
    out = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for results in pool.map(_render_chunk, jobs):
            for key, page, summary, revision in results:
                out[key] = (page, summary, revision)
    return out


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
    keep: Callable[[str], bool] = lambda key: key.startswith("media/"),
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
                storage.put(
                    key, body, content_type=content_type(key), cache_control=cache_control(key)
                )
            stats.written.append(key)
        if progress:
            progress(n, total)
    if prune:
        for key in sorted(existing):
            if key not in files and not keep(key):
                storage.delete(key)
                stats.deleted.append(key)
    return stats


def file_etags(root: str) -> dict[str, str]:
    """Key -> MD5 ETag of every file under ``root`` (the local twin of a listing)."""
    out: dict[str, str] = {}
    if not os.path.isdir(root):
        return out
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                out[key] = '"' + hashlib.md5(fh.read(), usedforsecurity=False).hexdigest() + '"'
    return out
