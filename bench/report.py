"""Plain-text tables for the terminal and the docs/performance.md document."""

from __future__ import annotations

from typing import Any

GOAL_REQUESTS = 12
GOAL_HANDLER_RATIO = 2.0
GOAL_BUILD_RATIO = 1.0
GOAL_BUILD_MIB = 300
GOAL_NOOP_FRACTION = 0.25
GOAL_COLD_RATIO = 1.3
GOAL_ZIP_MB = 5.0


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def _ok(met: bool) -> str:
    return "met" if met else "**missed**"


def _noop_rows(what: str, size: int, written: int, fraction: float) -> list[list[str]]:
    """The two goals of a no-op ``what`` (build or rebuild) of ``size`` releases."""
    return [
        [f"no-op {what} {size:,}: zero objects rewritten", str(written), _ok(written == 0)],
        [f"no-op {what} {size:,}: ≤ 25% of a full {what}", f"{fraction:.0%}",
         _ok(fraction <= GOAL_NOOP_FRACTION)],
    ]  # fmt: skip


def markdown_table(m: dict[str, Any]) -> str:
    rows = [[name, f"{ms:.3f}"] for name, ms in m["ms_per_body"].items()]
    text = _table(["library", "ms per ~600-word body"], rows)
    if "same_corpus" in m:
        text += (
            f"\n\nSanitized HTML identical to markdown-it-py's: {m['same_corpus']}/{m['bodies']} "
            f"generated bodies, {m['same_samples']}/{m['samples']} sample releases."
        )
    return text


def publish_table(results: list[dict[str, Any]]) -> str:
    from .publish import section

    return section(results)


def build_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        n = r["newsroom"]
        rows.append(
            [
                f"{r['size']:,}",
                "newsroom build",
                f"{n['wall_s']:.2f}",
                f"{n['cpu_s']:.2f}",
                f"{n['pages_per_s']:,.0f}",
                f"{n['peak_pss_mib']:.0f}",
                f"{n['peak_rss_mib']:.0f}",
                f"{n['pages']:,}",
            ]
        )
        if "hugo" in r:
            h = r["hugo"]
            rows.append(
                [
                    f"{r['size']:,}",
                    "hugo",
                    f"{h['wall_s']:.2f}",
                    f"{h['cpu_s']:.2f}",
                    f"{h['pages_per_s']:,.0f}",
                    f"{h['peak_pss_mib']:.0f}",
                    f"{h['peak_rss_mib']:.0f}",
                    f"{h['pages']:,}",
                ]
            )
            rows.append(
                [f"{r['size']:,}", "ratio newsroom / hugo", f"{r['ratio']:.2f}",
                 f"{r['cpu_ratio']:.2f}", "", "", "", ""]
            )  # fmt: skip
        o = r["noop"]
        rows.append(
            [
                f"{r['size']:,}",
                f"no-op build ({o['written']} written)",
                f"{o['wall_s']:.2f}",
                f"{o['cpu_s']:.2f}",
                "",
                f"{o['peak_pss_mib']:.0f}",
                f"{o['peak_rss_mib']:.0f}",
                f"{o['fraction']:.0%} of full",
            ]
        )
    return _table(
        ["releases", "what", "wall s", "CPU s", "pages/s", "peak PSS MiB", "peak RSS MiB",
         "files"],
        rows,
    )  # fmt: skip


def rebuild_table(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"{r['size']:,}",
            f"{r['full_s']:.2f}",
            f"{r['full_written']:,}",
            f"{r['noop_s']:.2f}",
            r["noop_written"],
            f"{r['fraction']:.0%}",
        ]
        for r in results
    ]
    return _table(
        ["releases", "first rebuild s", "objects written", "no-op rebuild s",
         "objects written", "no-op / first"],
        rows,
    )  # fmt: skip


def cold_table(f: dict[str, Any]) -> str:
    c = f["cold"]
    rows = [
        ["import app", f"{c['app_ms']:.0f} ms"],
        ["import boto3", f"{c['boto3_ms']:.0f} ms"],
        ["ratio", f"{c['ratio']:.2f}×"],
    ]
    if "zip" in f and "mb" in f["zip"]:
        rows.append(["deployment.zip", f"{f['zip']['mb']:.2f} MB"])
    return _table(["cold start", "value"], rows)


def _goals(f: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    if f.get("publish") and len(f["publish"]) > 1:
        from .publish import GOAL, MEASURES, ratios

        p = f["publish"]
        for (case, m), ratio in ratios(p).items():
            if m != "handler_ms_delayed":
                rows.append(
                    [f"publish ({case}): {dict(MEASURES)[m]} at {p[-1]['archive']:,} ≤ "
                     f"{GOAL}× at {p[0]['archive']:,}", f"{ratio:.2f}×", _ok(ratio <= GOAL)]
                )  # fmt: skip
    for b in f.get("build", []):
        if "ratio" in b:
            rows.append(
                [f"full build {b['size']:,}: wall ≤ Hugo's", f"{b['ratio']:.2f}×",
                 _ok(b["ratio"] <= GOAL_BUILD_RATIO)]
            )  # fmt: skip
        mib = b["newsroom"]["peak_pss_mib"]
        rows.append(
            [f"full build {b['size']:,}: peak memory (PSS, process tree) < {GOAL_BUILD_MIB} MiB",
             f"{mib:.0f} MiB", _ok(mib < GOAL_BUILD_MIB)]
        )  # fmt: skip
        rows += _noop_rows("build", b["size"], b["noop"]["written"], b["noop"]["fraction"])
    for r in f.get("rebuild", []):
        rows += _noop_rows("rebuild", r["size"], r["noop_written"], r["fraction"])
    if "cold" in f:
        c = f["cold"]["ratio"]
        rows.append(["cold start: import app ≤ 1.3× import boto3", f"{c:.2f}×",
                     _ok(c <= GOAL_COLD_RATIO)])  # fmt: skip
    if "alerts" in f:
        a = f["alerts"]
        rows.append(
            [f"alerts: {a['subscribers']:,} subscribers, every message delivered twice: duplicates",
             str(a["duplicates"]), _ok(a["duplicates"] == 0 and a["recipients"] == a["subscribers"])]
        )  # fmt: skip
    if "zip" in f and "mb" in f["zip"]:
        mb = f["zip"]["mb"]
        rows.append(["deployment zip < 5 MB", f"{mb:.2f} MB", _ok(mb < GOAL_ZIP_MB)])
    return rows


NOTES = """\
## How to read these figures

- **Wall time on a shared machine.** The figures come from one run of the
  command above on a 2-core machine. Wall time moves with whatever else runs;
  the load average before and after the run is printed at the top. CPU time
  (user + system of the whole process tree) moves much less and is shown
  beside every wall time. Hugo and `newsroom build` run interleaved, run for
  run, so both see the same conditions and their ratio is the fairer figure.
- **Peak memory of a process tree.** `newsroom build` forks render workers.
  The kernel's `ru_maxrss` only reports the largest single process, so the
  benchmark samples `/proc` every 5 ms for the command and all its
  descendants. *RSS* sums each process's resident pages and so counts a page
  that a forked worker still shares with its parent twice; *PSS* splits every
  shared page between the processes sharing it, which is the memory the tree
  really occupies. The goal is judged on PSS; both are shown. Hugo is a single
  process (with threads), so its PSS and RSS are nearly the same.
- **Hugo's site** is built from the same generated corpus: `content/releases/*.md`
  with front matter, a paginated home page and section (12 per page), RSS
  (20 items, like our feeds), a sitemap and single pages; no taxonomies. Our
  build does more per release corpus: topic, kind, month and year archive
  pages, Atom feeds per topic, yearly sitemaps, a news sitemap and index.json.
- **Handler time** is measured in one process against moto's in-memory S3,
  so it includes moto's own work for every request (parsing, hashing,
  storing); real S3 adds network latency per request and removes moto's CPU.

## Why a publish costs what it costs

One publish of a new release (the figures under "Cost of one publish")
reads the source file, the state's head, the embargo schedule, two hints
(which months hold the source's entry and the slug's holder: absent for a
new release), the record of its translation key if it has one, and the
state objects of its month, kind and topics; it writes the head three times
(the slug claim, the commit, and once more when the listeners have been told),
the changed state objects under new names, the two hints, the release page,
the shared pages of the groups it touches (front page, feeds, `index.json`,
the archive and its year and month pages, the month's file and sitemap, the
kind's and each topic's front page, feed, year and month pages, the topic and
kind indexes, the news sitemap), the search corpus of its month and its
receipt; and it deletes the state objects the commit replaced. None of that
depends on the size of the archive, so the request count is the same at every
size. Each topic adds its object and four pages.

What grows is the length of a few lists: the months in `index.json` (the
contract requires them), in the head and on the year pages grow with the time
the archive spans, and a month's objects and pages with the releases of that
month. At a constant density the first grow by a few bytes a month, which is
why bytes read and written are 1.3× at 100,000 releases (987 months) what they
are at 100 (two months). Handler time is dominated by rendering the twenty-odd
pages and by moto's work per request, both constant; it varies from run to
run with the machine's load more than with the archive.

Under a theme the state was not committed with (templates or core code
changed, and `newsroom rebuild` not run yet) a publish cannot compare old and
new bytes, so it rewrites every page of the groups it touches, including every
year page of its topics and kind: one run of this benchmark, with a source
file changed while it ran, measured 237 requests at 100,000 releases that
way. Run the rebuild after every deploy that changes the theme.

## Where the build's time and memory go, and what was changed

- **Markdown** was the largest cost: markdown-it-py took about 1.3 ms per
  600-word body; cmark-gfm takes under 0.1 ms with the same sanitized output
  (table above). `cmarkgfm`'s own Python wrapper leaks the document tree and
  the output string on every call (about 50 KB a call: a 10,000-release build
  grew by half a gigabyte); `chalicelib/core/markup.py` calls the C functions
  itself and frees both.
- **Both cores**: release pages render in forked worker processes that read
  the parsed releases they inherit from the parent (tasks are index ranges,
  nothing is re-parsed or pickled on the way in); the shared pages (topic,
  kind and month listings, feeds, sitemaps) are spread over the workers by
  size. Parsing and validating the sources, building the index and writing
  the files stay in the parent.
- **Streaming**: each release page goes to the output folder as soon as its
  chunk comes back, so the build never holds 10,000 pages at once.
- **Memory**: what remains is mostly the parsed releases and the index held by
  the parent, plus each worker's own interpreter and the pages it touches
  (a forked worker's writes copy the shared pages it touches).
- **No-op builds** rewrite nothing and render almost nothing: every
  `index.json` entry records a digest of its source file, so a build into a
  folder that already holds the site reuses the entry and leaves the page of
  every release whose source bytes (and theme: templates, stylesheet,
  settings) are unchanged, and renders only shared pages whose inputs
  changed. What remains is reading and hashing the sources, planning the site
  and writing `index.json`; at 1,000 releases Python's start-up is a good
  part of it. `newsroom rebuild` reuses the same way, and the digest is the
  MD5 that S3 reports as a single-part upload's ETag, so an unchanged source
  is recognised from the bucket listing and not even downloaded; a no-op
  rebuild then costs the listings, `index.json`, the plan and the comparison.
"""


def document(f: dict[str, Any], *, quick: bool = False) -> str:
    m = f["machine"]
    out = ["# Performance", ""]
    if quick:
        out += ["*A `--quick` smoke run with tiny sizes: these figures mean nothing.*", ""]
    out += [
        "Measured with one command from the repository root:",
        "",
        "```",
        "make bench            # = .venv/bin/python -m bench",
        "```",
        "",
        f"Options: `--quick` (tiny sizes), `--publish-sizes`, `--build-sizes`, "
        f"`--rebuild-sizes`, `--runs`, "
        f"`--only markdown,publish,build,rebuild,cold,alerts,search,anchor,fanout,burst`, "
        f"`--burst-archive`, `--burst-uploads`, `--burst-delays`, "
        f"`--no-hugo`, `--json FILE`. This run: `{f.get('command') or 'python -m bench'}`, "
        f"started {f['started']}.",
        "",
        f"Machine: {m['cpus']} cores, Python {m['python']}, {m['platform']}. "
        f"Load average before: {m['load_before'][0]:.2f}, after: {m['load_after'][0]:.2f}.",
        "",
    ]
    goals = _goals(f)
    if goals:
        out += ["## Goals", "", _table(["goal", "measured", ""], goals), ""]
    if "markdown" in f:
        out += ["## Markdown library", "", markdown_table(f["markdown"]), "",
                "The build uses cmark-gfm (through `cmarkgfm`, called directly so that its "
                "document tree and output are freed), with the table and double-tilde "
                "strikethrough extensions; every body still goes through nh3.", ""]  # fmt: skip
    if f.get("publish"):
        out += [publish_table(f["publish"]), ""]
    if f.get("build"):
        out += [
            "## Full build, no-op build, Hugo",
            "",
            f"Hugo: `{f.get('hugo_version') or 'not installed'}`. "
            "Corpus: `bench/corpus.py`, fixed seed, about 600 words of CommonMark per "
            "release (headings, bullet and numbered lists, a block quote, links, emphasis).",
            "",
            build_table(f["build"]),
            "",
            "Commands (SRC, OUT are temporary folders):",
            "",
            "```",
            *sorted({b["newsroom_cmd"] for b in f["build"]}),
            *sorted({b["hugo_cmd"] for b in f["build"] if "hugo_cmd" in b}),
            "```",
            "",
            "The no-op build is the same command again into the folder the full build "
            "left: nothing is rewritten (a file is only written when its bytes differ), "
            "but every page is still rendered to find that out.",
            "",
        ]
    if f.get("anchor"):
        from .anchor import section

        out += [section(f["anchor"]), ""]
    if f.get("fanout"):
        from .fanout import section as fanout_section

        out += [fanout_section(f["fanout"]), ""]
    if f.get("rebuild"):
        out += [
            "## No-op `newsroom rebuild`",
            "",
            "The rebuild service (what `newsroom rebuild` and `render_releases` run) against moto's "
            "in-process S3 and SQS (its queue drained in one process), requests made one at a time "
            "as in the test suite. The first "
            "rebuild publishes the whole site; the next ones find nothing to change.",
            "",
            rebuild_table(f["rebuild"]),
            "",
        ]
    if "cold" in f:
        c = f["cold"]
        out += [
            "## Cold start and package size",
            "",
            cold_table(f),
            "",
            "```",
            c["app_cmd"],
            c["boto3_cmd"],
            f.get("zip", {}).get("cmd", ""),
            "```",
            "",
            f"Import time is the sum of the top-level cumulative times `-X importtime` "
            f"reports, median of {c['runs']} runs. `import app` does not import boto3 "
            "(the client is built on the first event), so the two columns are what each "
            "costs alone.",
            "",
        ]
    if f.get("burst"):
        from .burst import section as burst_section

        out += [burst_section(f["burst"]), ""]
    if "alerts" in f:
        out += [alerts_section(f["alerts"]), ""]
    if "search" in f:
        out += [search_section(f["search"]), ""]
    out += [NOTES]
    return "\n".join(out)


ALERTS_TITLE = "## E-mail alerts: one release to many subscribers"
SEARCH_TITLE = "## Search: bundle, query, publish to findable"


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KB"


def search_section(f: dict[str, Any]) -> str:
    """The search figures (bench/search.py); also spliced alone into an existing
    document by ``python -m bench --only search``."""
    build_rows = [
        [f"{b['releases']:,}", f"{b['seconds']:.1f}", f"{b['bytes'] / 1024 / 1024:.1f} MB",
         f"{b['files']:,}", f"{b['fragments']:,}", f"{b['index_chunks']:,}"]
        for b in f["build"]
    ]  # fmt: skip
    out = [
        SEARCH_TITLE,
        "",
        "`bench/search.py`. **Bundle**: the search records of the bench corpus, indexed "
        "by `build_bundle` (the Pagefind binary's service mode fed one small page per release "
        "in URL order, then the canonical renaming that makes it deterministic).",
        "",
        _table(
            ["releases", "build s", "bundle", "files", "fragments", "index chunks"],
            build_rows,
        ),
        "",
    ]
    q = f.get("query", {})
    if "skipped" in q:
        out += [f"Query: not measured ({q['skipped']}).", ""]
    elif q:
        out += [
            f"**One query** at {q['releases']:,} releases: Chromium opens `/search/`, types "
            f"`{q['query']}`, and waits for the first page of results ({q['results_shown']} "
            f"shown, {q['seconds_to_results']:.2f} s on 127.0.0.1). Bytes the browser "
            "received after the page itself, as served (no HTTP compression on this server):",
            "",
            _table(
                ["what", "bytes"],
                [
                    [
                        "the search page, its script and stylesheet (before typing)",
                        _kb(q["page_bytes"]),
                    ],
                    [
                        "Pagefind's JavaScript (module and worker)",
                        f"{_kb(q['js_bytes'])} ({_kb(q['js_gzip_bytes'])} gzipped, as CloudFront serves it)",
                    ],
                    ["Pagefind's WebAssembly (already compressed)", _kb(q["wasm_bytes"])],
                    [
                        "index: entry, metadata, filters, word chunks, result fragments",
                        _kb(q["index_bytes"]),
                    ],
                    [
                        f"**total of {q['requests']} requests, page included**",
                        f"**{_kb(q['total_bytes'])}**",
                    ],
                ],
            ),  # fmt: skip
            "",
            "The script and WebAssembly are the same for every query and cached (a week for "
            "the content-named chunks, revalidated for the entry point); a second query costs "
            "only the word chunks and fragments it needs.",
            "",
        ]
    lam = f.get("lambda", {})
    if lam:
        out += [
            f"**Lambda path** at {lam['releases']:,} releases (moto in-process, "
            "`SearchUpdater.run()` as `update_search` calls it):",
            "",
            _table(
                ["run", "seconds", "objects uploaded", "deleted"],
                [
                    [
                        "first run, empty public bucket",
                        f"{lam['first_seconds']:.1f}",
                        f"{lam['first_uploaded']:,}",
                        "0",
                    ],
                    [
                        "after one publish",
                        f"{lam['publish_seconds']:.1f}",
                        f"{lam['publish_uploaded']:,} ({_kb(lam['publish_uploaded_bytes'])})",
                        str(lam["publish_deleted"]),
                    ],
                    ["nothing changed", f"{lam['idle_seconds']:.2f}", "0", "0"],
                ],
            ),  # fmt: skip
            "",
            f"A release is findable at the end of the first `update_search` run after its "
            f"publish: at worst one schedule period (5 minutes) plus one run, "
            f"**{lam['findable_worst_seconds']:.0f} s**, on average "
            f"{lam['findable_mean_seconds']:.0f} s. The run reads every month of the corpus "
            "and of the public index (Pagefind rebuilds the whole index), but uploads only the "
            "files whose bytes changed.",
        ]
    return "\n".join(out)


def alerts_section(a: dict[str, Any]) -> str:
    """The alerts figures (bench/alerts.py); also spliced alone into an existing
    document by ``python -m bench --only alerts``."""
    ops = ", ".join(f"{op} {n:,}" for op, n in a["by_operation"].items())
    rows = [
        [f"{a['subscribers']:,}", f"{a['emails']:,}", str(a["duplicates"]),
         f"{a['seconds']:.1f}", f"{a['emails_per_second']:.1f}",
         f"{a['queue_messages']:,}", f"{a['requests_per_recipient']:.2f}"]
    ]  # fmt: skip
    return "\n".join(
        [
            ALERTS_TITLE,
            "",
            "`bench/alerts.py`: confirmed subscribers in moto's in-process DynamoDB, the "
            "publisher's listener announces one new release, then every message of the alert "
            "queue is handed to the real `send_alerts` handler **twice** (SQS event JSON) until "
            "the queue is empty. E-mails are counted per recipient from what moto's SES accepted.",
            "",
            _table(
                [
                    "subscribers",
                    "e-mails accepted",
                    "duplicates",
                    "seconds",
                    "e-mails/s",
                    "queue messages",
                    "AWS requests per recipient",
                ],
                rows,
            ),  # fmt: skip
            "",
            f"Requests by operation (both deliveries of every message): {ops}.",
            "",
            "Per recipient, the first delivery costs one conditional PutItem (the "
            "exactly-once record), one SES SendEmail and one UpdateItem (its outcome); the "
            "second delivery costs one PutItem that fails its condition. Reading the "
            "subscribers costs one BatchGetItem per 50 recipients and one Query per 1 MB page "
            "of each of the 16 partitions. The time is moto's (about 50 ms of CPU per "
            "recipient, mostly its request parsing); on AWS the rate is bounded by the SES "
            "sending quota (14 e-mails/s for a new production account), not by the handler.",
        ]
    )


def splice(document_text: str, title: str, section: str) -> str:
    """``document_text`` with the section headed ``title`` replaced by
    ``section`` (or inserted before the notes), the rest untouched."""
    start = document_text.find(title)
    if start < 0:
        notes = document_text.find("## How to read these figures")
        at = notes if notes >= 0 else len(document_text)
        return document_text[:at] + section + "\n\n" + document_text[at:]
    end = document_text.find("\n## ", start + len(title))
    end = len(document_text) if end < 0 else end + 1
    return document_text[:start] + section + "\n\n" + document_text[end:].lstrip("\n")
