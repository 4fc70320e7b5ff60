"""Judges no one here wrote, over the whole built sample site.

- the W3C Nu HTML Checker (npm ``vnu-jar``, run with Debian's Java): 0 errors
  on every HTML page;
- Lighthouse (npm ``lighthouse@12.2.3``, Debian's Chromium, mobile profile):
  100 in performance, accessibility, best practices and SEO on the front page,
  an English and an Arabic release, a topic, the archive and the search page
  (a page short of 100 is measured three times and judged on the median; on a
  host Lighthouse itself calls too slow for its mobile profile, performance
  alone may be 90 to 99, and the test prints it);
- feedparser and an XML parser over every feed and sitemap.

The site is built once with ``newsroom build`` and served from its folder on
127.0.0.1 (a port the system picks). ``make browser-deps`` installs the npm
packages into the repository's node_modules.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
LIGHTHOUSE = ROOT / "node_modules" / "lighthouse"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOW_TO_INSTALL = (
    "run `make browser-deps` (npm vnu-jar and lighthouse@12.2.3, Debian java and chromium)"
)
ATOM = "{http://www.w3.org/2005/Atom}"
# Lighthouse warns below this benchmark index that the host CPU is too slow
# for its mobile profile (SLOW_CPU_BENCHMARK_INDEX_THRESHOLD in its source)
SLOW_HOST_BENCHMARK = 1000
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class _Site(SimpleHTTPRequestHandler):
    """The built folder served as the CDN serves the bucket: each object's own
    Content-Type and Cache-Control (``chalicelib.keys``), text gzipped."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        from chalicelib.keys import cache_control, content_type

        path = urlsplit(self.path).path
        key = path.lstrip("/")
        if key == "" or key.endswith("/"):
            key += "index.html"
        file = Path(self.directory) / key
        if not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        ctype = content_type(key)
        gzip_it = "gzip" in self.headers.get("Accept-Encoding", "") and (
            ctype.startswith(("text/", "application/json", "application/xml",
                              "application/atom+xml", "image/svg+xml", "text/javascript"))
            or key.endswith((".js", ".css", ".json"))
        )  # fmt: skip
        if gzip_it:
            body = gzip.compress(body, mtime=0)
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", cache_control(key))
            if gzip_it:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@dataclass
class Built:
    root: Path
    url: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Site, directory=str(out)))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proc = subprocess.run(
        [sys.executable, "-m", "newsroom.cli", "build", "samples", "--out", str(out),
         "--site-url", url],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Built(out, url)
    finally:
        server.shutdown()
        server.server_close()


# The W3C Nu HTML Checker ---------------------------------------------------------------
def test_every_page_passes_the_nu_html_checker(built: Built) -> None:
    if not VNU.is_file() or not shutil.which("java"):
        pytest.fail(f"the Nu HTML Checker is missing ({VNU.relative_to(ROOT)}): {HOW_TO_INSTALL}")
    pages = sorted(built.root.rglob("*.html"))
    assert len(pages) > 40
    proc = subprocess.run(
        ["java", "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, pages)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    messages = json.loads(proc.stderr or proc.stdout or '{"messages": []}')["messages"]
    errors = [
        f"{urlsplit(m.get('url', '')).path.replace(str(built.root), '')}:{m.get('lastLine')}: "
        f"{m.get('message')}"
        for m in messages
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]
    assert errors == [], "\n".join(errors)


# Lighthouse --------------------------------------------------------------------------------
LIGHTHOUSE_PAGES = {
    "front": "/",
    "release (English)": "/releases/coastal-clinics-reopen/",
    "release (Arabic)": "/releases/coastal-clinics-reopen-ar/",
    "topic": "/topics/coastal-communities/",
    "archive": "/archive/",
    "search": "/search/",
}


def test_lighthouse_scores_100_in_every_category(built: Built) -> None:
    if not LIGHTHOUSE.is_dir() or not Path(CHROMIUM).exists():
        pytest.fail(f"Lighthouse or Chromium is missing: {HOW_TO_INSTALL}")
    paths = [p for p in LIGHTHOUSE_PAGES.values() if (built.root / p.lstrip("/")).exists()]
    assert "/search/" in paths or not (built.root / "search").exists()
    runs: dict[str, list[dict]] = {built.url + p: [] for p in paths}
    # Lighthouse's own advice: a single run is noisy (another process on the
    # machine shows up as blocking time); a page short of 100 is measured
    # twice more and judged on the median of its three runs
    for _attempt in range(3):
        todo = [u for u, rs in runs.items() if not rs or not _perfect(_median(rs))]
        if not todo or any(len(rs) >= 3 for u, rs in runs.items() if u in todo):
            break
        for r in _lighthouse(todo):
            runs[r["url"]].append(r)
    low, slow_host = [], []
    for url, rs in runs.items():
        scores = _median(rs)
        if _perfect(scores):
            continue
        worst = min(rs, key=lambda r: sum(v or 0 for v in r["scores"].values()))
        line = f"{url}: median of {len(rs)} runs {scores}\n    " + "\n    ".join(worst["failing"])
        # Lighthouse's own verdict on the host: below this benchmark index it
        # warns that the CPU is slower than its mobile profile assumes, and
        # blocking time on pages without scripts measures the machine's other
        # load, not the page. Only then may performance (and nothing else) be
        # short of 100, and not by much; the other three categories never.
        bench = statistics.median(r["benchmarkIndex"] or 0 for r in rs)
        others_perfect = all(v == 1 for k, v in scores.items() if k != "performance")
        if others_perfect and bench < SLOW_HOST_BENCHMARK and scores["performance"] >= 0.9:
            slow_host.append(f"{line}\n    (benchmark index {bench:.0f})")
        else:
            low.append(line)
    if slow_host:
        print("\nLighthouse on a slow host, performance below 100:\n" + "\n".join(slow_host))
    assert low == [], "\n".join(low)


def _lighthouse(urls: list[str]) -> list[dict]:
    proc = subprocess.run(
        ["node", str(ROOT / "tests" / "judges" / "lighthouse.mjs"), *urls],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "CHROME_PATH": CHROMIUM},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["url"] for r in results] == urls
    for r in results:
        assert not r["error"], f"{r['url']}: {r['error']}"
    return results


def _median(runs: list[dict]) -> dict[str, float]:
    return {k: statistics.median(r["scores"][k] or 0 for r in runs) for k in runs[0]["scores"]}


def _perfect(scores: dict[str, float]) -> bool:
    return len(scores) == 4 and all(v == 1 for v in scores.values())


# Feeds and sitemaps ------------------------------------------------------------------------
def test_every_feed_parses_with_feedparser_and_an_xml_parser(built: Built) -> None:
    feeds = sorted(built.root.rglob("feed.xml"))
    assert (built.root / "feed.xml") in feeds
    assert any("kinds" in f.parts for f in feeds) and any("topics" in f.parts for f in feeds)
    for path in feeds:
        raw = path.read_bytes()
        root = ET.fromstring(raw)
        assert root.tag == ATOM + "feed", path
        parsed = feedparser.parse(raw)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.feed.title and parsed.feed.links
        for entry in parsed.entries:
            assert entry.title and entry.link.startswith(built.url + "/releases/"), path
            assert entry.get("content"), f"{path}: {entry.link} has no content"
            assert entry.get("language") or entry.content[0].get("language"), entry.link


def test_every_sitemap_parses_and_lists_pages_that_exist(built: Built) -> None:
    maps = [built.root / "sitemap.xml", built.root / "news-sitemap.xml"]
    maps += sorted((built.root / "sitemaps").glob("*.xml"))
    locs = []
    for path in maps:
        root = ET.fromstring(path.read_bytes())
        assert root.tag in (SITEMAP + "urlset", SITEMAP + "sitemapindex"), path
        locs += [loc.text or "" for loc in root.iter(SITEMAP + "loc")]
    assert len(locs) > 30
    for loc in locs:
        assert loc.startswith(built.url + "/"), loc
        target = built.root / urlsplit(loc).path.lstrip("/")
        assert target.is_file() or (target / "index.html").is_file(), loc
