"""Search: bundle build time and size, bytes per query, and publish-to-findable.

- **Build**: the search records of the bench corpus (``corpus.generate``), then
  ``build_bundle`` (the Pagefind binary over one small page per record), timed.
- **Query**: the search page and the 10,000-release bundle served from a folder
  on 127.0.0.1; Debian's Chromium (Playwright) opens ``/search/``, types one
  word, waits for the first page of results, and every response is counted.
- **Lambda path**: the corpus (per month) and the public month files in moto's
  in-process S3; ``SearchUpdater.run()`` (what ``update_search`` calls) first
  on an empty public bucket, then after one more release was published. A
  release is findable at the end of the first run after its publish, so at
  worst one schedule period (5 minutes) plus that run.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.core.markup import body_html, excerpt_source
from chalicelib.core.model import parse_release
from chalicelib.core.text import excerpt
from chalicelib.search import build_bundle, page_files
from chalicelib.search.records import month_of, record

from . import corpus

SCHEDULE_SECONDS = 300
QUERY = "harbour"
CHROMIUM = os.environ.get("NEWSROOM_CHROMIUM", "/usr/bin/chromium")


@functools.lru_cache(maxsize=4)
def records(n: int) -> tuple[dict[str, Any], ...]:
    out = []
    for doc in corpus.generate(n):
        release = parse_release(json.dumps(doc).encode(), name=f"releases/{doc['slug']}.json")
        summary = release.summary or excerpt(
            excerpt_source(body_html(release.body, release.body_format))
        )
        out.append(record(release, summary))
    return tuple(out)


_BUNDLES: dict[int, dict[str, bytes]] = {}


def measure_build(n: int) -> dict[str, Any]:
    recs = list(records(n))
    started = time.perf_counter()
    files = build_bundle(recs)
    seconds = time.perf_counter() - started
    _BUNDLES[n] = files
    return {
        "releases": n,
        "seconds": seconds,
        "files": len(files),
        "bytes": sum(len(b) for b in files.values()),
        "fragments": sum(1 for k in files if "/fragment/" in k),
        "index_chunks": sum(1 for k in files if "/index/" in k),
    }


def measure_query(n: int, query: str = QUERY) -> dict[str, Any]:
    """Bytes one query costs a first-time visitor of ``/search/`` (page included)."""
    from chalicelib.core.render import Renderer
    from chalicelib.settings import Settings

    if not Path(CHROMIUM).is_file():
        return {"skipped": f"no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    renderer = Renderer(Settings())
    files = dict(_BUNDLES.get(n) or build_bundle(list(records(n))))
    files.update(page_files(renderer))
    files[renderer.stylesheet_key] = renderer.stylesheet
    with tempfile.TemporaryDirectory(prefix="newsroom-bench-search-") as tmp:
        for key, body in files.items():
            path = Path(tmp, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        handler = functools.partial(_QuietHandler, directory=tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        seen: list[tuple[str, int]] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox"]
                )
                page = browser.new_page()
                page.on("response", lambda r: seen.append((r.url[len(base) :], len(r.body()))))
                page.goto(base + "/search/")
                page_only = sum(b for _, b in seen)
                started = time.perf_counter()
                page.fill("#q", query)
                page.wait_for_function(
                    "() => /found/.test(document.getElementById('status').textContent)",
                    timeout=30000,
                )
                seconds = time.perf_counter() - started
                results = page.locator("#results > li").count()
                page.wait_for_timeout(300)  # late responses of the same query
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
        by_key: dict[str, int] = {}
        for url, size in seen:
            by_key[url.split("?")[0]] = by_key.get(url.split("?")[0], 0) + size
        code = {k: v for k, v in by_key.items() if k.endswith(".js")}
        js_gzip = sum(
            len(gzip.compress(files[k.lstrip("/")])) for k in code if k.lstrip("/") in files
        )
        wasm = sum(v for k, v in by_key.items() if k.endswith(".pagefind"))
        data = sum(
            v
            for k, v in by_key.items()
            if k.startswith("/pagefind/") and not k.endswith((".js", ".pagefind"))
        )
        return {
            "releases": n,
            "query": query,
            "results_shown": results,
            "seconds_to_results": seconds,
            "page_bytes": page_only,
            "requests": len(seen),
            "total_bytes": sum(by_key.values()),
            "js_bytes": sum(code.values()),
            "js_gzip_bytes": js_gzip,
            "wasm_bytes": wasm,
            "index_bytes": data,
        }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def measure_lambda(n: int) -> dict[str, Any]:
    """``update_search`` over moto: a full first run, then one publish later."""
    import boto3
    from moto import mock_aws

    from chalicelib.core.render import Renderer
    from chalicelib.search.corpus import SearchCorpus
    from chalicelib.search.updater import SearchUpdater
    from chalicelib.settings import Settings
    from chalicelib.storage import S3Storage

    recs = list(records(n + 1))
    new, recs = recs[-1], recs[:-1]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="src")
        s3.create_bucket(Bucket="pub")
        source, public = S3Storage(s3, "src"), S3Storage(s3, "pub")
        SearchCorpus(source).replace_all(recs)
        _list_months(s3, recs)
        updater = SearchUpdater(source, public, Renderer(Settings()))
        started = time.perf_counter()
        first = updater.run()
        first_seconds = time.perf_counter() - started
        # one publish: the listener adds the record, the site lists it
        SearchCorpus(source).replace_all([*recs, new])
        _list_months(s3, [*recs, new], only=month_of(new))
        started = time.perf_counter()
        after = updater.run()
        after_seconds = time.perf_counter() - started
        started = time.perf_counter()
        idle = updater.run()
        idle_seconds = time.perf_counter() - started
        uploaded_bytes = sum(
            s3.head_object(Bucket="pub", Key=k)["ContentLength"] for k in after.uploaded
        )
    return {
        "releases": n,
        "first_seconds": first_seconds,
        "first_uploaded": len(first.uploaded),
        "publish_seconds": after_seconds,
        "publish_uploaded": len(after.uploaded),
        "publish_uploaded_bytes": uploaded_bytes,
        "publish_deleted": len(after.deleted),
        "idle_seconds": idle_seconds,
        "idle_changed": idle.changed,
        "findable_worst_seconds": SCHEDULE_SECONDS + after_seconds,
        "findable_mean_seconds": SCHEDULE_SECONDS / 2 + after_seconds,
    }


def _list_months(s3: Any, recs: list[dict[str, Any]], only: str | None = None) -> None:
    """The public month files (``index/<yyyy>-<mm>.json``) listing ``recs``, and
    ``index.json`` with their counts (which decide the search pieces)."""
    months: dict[str, list[dict[str, str]]] = {}
    for r in recs:
        months.setdefault(month_of(r), []).append({"slug": r["slug"]})
    for month, entries in months.items():
        if only is None or month == only:
            body = json.dumps({"version": 2, "month": month, "releases": entries}).encode()
            s3.put_object(Bucket="pub", Key=f"index/{month}.json", Body=body)
    counts = [{"month": m, "count": len(e)} for m, e in sorted(months.items(), reverse=True)]
    body = json.dumps({"version": 2, "releases": [], "months": counts}).encode()
    s3.put_object(Bucket="pub", Key="index.json", Body=body)


def measure(sizes: list[int], query_size: int, lambda_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"build": []}
    for n in sizes:
        out["build"].append(measure_build(n))
        print(f"search: bundle of {n} done", flush=True)
    out["query"] = measure_query(query_size)
    print("search: query done", flush=True)
    out["lambda"] = measure_lambda(lambda_size)
    print("search: update_search done", flush=True)
    return out
