"""Where a full build's CPU time goes, step by step, in one process.

``python -m bench.build_profile SRC_DIR`` times (CPU seconds of this process,
``time.process_time``) the steps ``newsroom build`` takes for every release of
SRC_DIR (a folder of release JSON, e.g. the anchor's ``corpus/releases``), one
after the other, the way its workers take them, then the shared pages, then
Pagefind on the search documents (CPU of the Pagefind process). It prints a
Markdown table for docs/performance.md. Steps are run whole (every release
through one step, then the next), so each is timed alone; the build itself
interleaves them over its worker processes.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_T0 = time.process_time()
from chalicelib.core.index import Entry, Index, source_digest  # noqa: E402
from chalicelib.core.markup import body_html  # noqa: E402
from chalicelib.core.model import parse_release  # noqa: E402
from chalicelib.core.render import Renderer  # noqa: E402
from chalicelib.core.site import plan, render_page  # noqa: E402
from chalicelib.search.indexer import Indexer  # noqa: E402
from chalicelib.search.records import document, record  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402

IMPORTS = time.process_time() - _T0


def _timed(rows: list[tuple[str, float]], name: str, fn: Callable[[], Any]) -> Any:
    start = time.process_time()
    out = fn()
    rows.append((name, time.process_time() - start))
    return out


def profile(src: Path) -> tuple[int, list[tuple[str, float]]]:
    rows: list[tuple[str, float]] = [("imports (parent only; workers are forked)", IMPORTS)]
    settings = Settings.from_env().with_site_url("https://news.example.org")

    def templates() -> Renderer:
        r = Renderer(settings)
        for name in r.env.list_templates():
            r.env.get_template(name)
        return r

    renderer = _timed(rows, "renderer and templates (parent only)", templates)
    paths = sorted(src.glob("*.json"))
    raws = _timed(rows, "read the source files", lambda: [p.read_bytes() for p in paths])
    releases = _timed(
        rows,
        "parse and validate",
        lambda: [parse_release(b, name=p.name) for b, p in zip(raws, paths, strict=True)],
    )
    # per release, one step after the other as a worker takes them (the body's
    # HTML is cached for the few latest bodies, as in the build)
    steps = ["Markdown and sanitizer (cmark-gfm, nh3)", "page context (excerpt, JSON-LD)",
             "release template (Jinja2)", "search record (body text)"]  # fmt: skip
    spent = dict.fromkeys(steps, 0.0)
    template = renderer.env.get_template("release.html")
    contexts, recs = [], []
    for r in releases:
        t0 = time.process_time()
        body_html(r.body, r.body_format)
        t1 = time.process_time()
        context = renderer._release_context(r)
        t2 = time.process_time()
        template.render(**context)
        t3 = time.process_time()
        recs.append(record(r, context["summary"]))
        t4 = time.process_time()
        for step, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[step] += dt
        contexts.append({"summary": context["summary"]})
    rows += list(spent.items())
    docs = _timed(rows, "search document (HTML for Pagefind)", lambda: [document(x) for x in recs])
    entries = _timed(
        rows,
        "index entry",
        lambda: [
            Entry.from_release(
                r, source_key=p.name, site_url=settings.site_url, summary=c["summary"],
                revision="0", source_digest=source_digest(b),
            ).json_text and None
            for r, c, p, b in zip(releases, contexts, paths, raws, strict=True)
        ],
    )  # fmt: skip
    del entries
    index = _timed(
        rows,
        "index and site plan",
        lambda: Index.build(
            [
                Entry.from_release(r, source_key=p.name, site_url=settings.site_url,
                                   summary=c["summary"], revision="0")
                for r, c, p in zip(releases, contexts, paths, strict=True)
            ]
        ),
    )  # fmt: skip
    planned = plan(index, renderer)
    def shared() -> None:
        with renderer.sharing_cards():  # as the build's workers render them
            for key, page in planned.items():
                render_page(key, page, renderer, index)

    _timed(rows, "shared pages (listings, feeds, sitemaps)", shared)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        indexer = Indexer()
        for rec, doc in sorted(zip(recs, docs, strict=True), key=lambda rd: rd[0]["url"]):
            indexer.add(rec["url"], doc)
        indexer.write(out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    pagefind = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rows.append(("Pagefind (its own process)", pagefind))
    return len(paths), rows


def table(count: int, rows: list[tuple[str, float]]) -> str:
    total = sum(s for _n, s in rows)
    lines = [f"| {count:,} releases, step | CPU s | ms per release |", "|---|---|---|"]
    lines += [f"| {name} | {s:.2f} | {1000 * s / count:.2f} |" for name, s in rows]
    lines.append(f"| **total** | **{total:.2f}** | {1000 * total / count:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.build_profile SRC_DIR", file=sys.stderr)
        return 2
    count, rows = profile(Path(args[0]))
    print(table(count, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
