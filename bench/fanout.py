"""Fan-out rebuild throughput: ``newsroom rebuild --workers N`` on moto's server.

One corpus is uploaded once; each run renders every release again (``full``)
into an empty public bucket, with 1, 2 and 4 local worker processes (the same
processes ``newsroom rebuild --workers N`` starts), then once more with a
20 ms pause before every AWS request (a botocore hook) to model AWS's latency
instead of a local endpoint's. Timed: the render phase (start to the last
chunk recorded), the commit, the whole. From these: the cost of one chunk
(worker-seconds) and the projection to 1,000,000 releases at Lambda
concurrency 100.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from . import corpus

TITLE = "## Fan-out rebuild (`newsroom rebuild`, rebuild queue, workers)"
QUEUE = "bench-rebuild"
REGION = "us-east-1"


def _server() -> tuple[Any, str]:
    from newsroom.endpoint import atomic_moto_server_class

    server = atomic_moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def measure(size: int, workers: tuple[int, ...] = (1, 2, 4), delayed: tuple[int, ...] = (4,),
            delay_ms: float = 20.0, chunk_size: int = 200) -> dict[str, Any]:  # fmt: skip
    import boto3

    from chalicelib import service
    from chalicelib.keys import rebuild_key
    from chalicelib.rebuild import RebuildReport
    from chalicelib.settings import Settings
    from newsroom.rebuild import create_rebuild_queue, start_workers, stop_workers

    load_before = os.getloadavg()[0]
    server, endpoint = _server()
    saved = dict(os.environ)
    source = f"bench-source-{uuid.uuid4().hex[:6]}"
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
            NEWSROOM_SOURCE_BUCKET=source, NEWSROOM_REBUILD_QUEUE=QUEUE,
            NEWSROOM_SITE_URL="https://news.example.org",
        )  # fmt: skip
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        kw = {"endpoint_url": endpoint, "region_name": REGION}
        s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        s3.create_bucket(Bucket=source)
        for doc in corpus.generate(size):
            s3.put_object(
                Bucket=source, Key=f"releases/{doc['slug']}.json",
                Body=json.dumps(doc, ensure_ascii=False).encode(),
            )  # fmt: skip
        create_rebuild_queue(sqs, QUEUE, visibility_timeout=900)

        def run(n: int, delay: float) -> dict[str, Any]:
            public = f"bench-public-{uuid.uuid4().hex[:6]}"
            s3.create_bucket(Bucket=public)
            os.environ["NEWSROOM_PUBLIC_BUCKET"] = public
            rebuilder = service.rebuild_service(Settings.from_env())
            env = {**os.environ, "NEWSROOM_REQUEST_DELAY_MS": str(delay)}
            started = time.perf_counter()
            manifest = rebuilder.start(chunk_size, full=True)
            procs = start_workers(n, env)
            rendered_at = grouped_at = None
            report_key = rebuild_key(manifest.rebuild_id, "report.json")
            try:
                while rebuilder.source.head(report_key) is None:
                    if rendered_at is None and (
                        rebuilder.progress(manifest.rebuild_id).done >= manifest.chunks
                    ):
                        rendered_at = time.perf_counter()
                    if rendered_at is not None and grouped_at is None:
                        p = rebuilder.progress(manifest.rebuild_id)
                        if p.groups[1] and p.groups[0] >= p.groups[1]:
                            grouped_at = time.perf_counter()
                    time.sleep(1.0)
            finally:
                stop_workers(procs)
            end = time.perf_counter()
            total = end - started
            report = RebuildReport.from_bytes(rebuilder.source.get(report_key).body)  # type: ignore[union-attr]
            render = (rendered_at or end) - started
            shared = (grouped_at or end) - (rendered_at or end)
            t = report.timings
            return {
                "workers": n,
                "delay_ms": delay,
                "chunks": manifest.chunks,
                "months": report.months,
                "groups": report.groups,
                "total_s": total,
                "render_s": render,
                "shared_s": shared,
                "commit_s": end - (grouped_at or end),
                "written": report.written,
                "releases_per_s": size / total,
                "chunk_cost_s": render * n / max(1, manifest.chunks),
                "timings": t,
            }

        runs = []
        partial = os.environ.get("FANOUT_PARTIAL")  # each run's figures as soon as measured
        for n, delay in [(n, 0.0) for n in workers] + [(n, delay_ms) for n in delayed]:
            runs.append(run(n, delay))
            if partial:
                with open(partial, "a") as out:
                    out.write(json.dumps({**runs[-1], "size": size, "load": os.getloadavg()[0]})
                              + "\n")  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    return {
        "size": size,
        "chunk_size": chunk_size,
        "runs": runs,
        "cpus": os.cpu_count(),
        "load": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# a chunk, per release: GET the source, HEAD its page, PUT the slug claim, PUT the
# page, HEAD the source again (plus one PUT per month the chunk touches)
REQUESTS_PER_RELEASE = 5
# a month step, per release of the month: its share of the chunks' records (one
# GET each, at most), its marker, and on a first rebuild its two hints
MONTH_REQUESTS_PER_RELEASE = 4
IO_THREADS = 8  # RebuildService's requests in flight per step
SPAN_MONTHS = 240  # the corpus's span (twenty years); a million releases over the same span


def projection(f: dict[str, Any], releases: int = 1_000_000, concurrency: int = 100) -> dict:
    """1,000,000 releases at Lambda concurrency 100, from the per-message costs
    of a single-worker run (one invocation runs one message alone, as the
    single worker did). With a run at a request delay (``delay_ms``, about
    what a request to S3 from Lambda takes), its costs are used as measured;
    otherwise AWS's latency is added as requests × 20 ms ÷ requests in
    flight, since a local endpoint hides it."""
    single = [r for r in f["runs"] if r["workers"] == 1]
    zero = next((r for r in single if not r["delay_ms"]), f["runs"][0])
    delayed = next((r for r in single if r["delay_ms"]), None)
    one = delayed or zero
    t, t0 = one["timings"], zero["timings"]
    size = f["size"]
    lat = 0.020 / IO_THREADS
    chunks = -(-releases // f["chunk_size"])
    per_month = releases / SPAN_MONTHS
    months_here = max(1, one["months"])
    month_cpu = t0["month_sum"] / size  # seconds per release, in month steps (upper bound)
    if delayed is not None:
        chunk_cpu = zero["chunk_cost_s"]
        chunk = delayed["chunk_cost_s"]  # measured with the delay
        settle = t["settle"] + (chunks - one["chunks"]) * lat
        month_fixed = t["month_sum"] / months_here  # a month step of this corpus, delayed
        month = month_fixed + (per_month - size / months_here) * (
            month_cpu + MONTH_REQUESTS_PER_RELEASE * lat
        )
    else:
        chunk_cpu = zero["chunk_cost_s"]
        chunk = chunk_cpu + f["chunk_size"] * REQUESTS_PER_RELEASE * lat
        settle = t["settle"] + chunks * lat  # one small record per chunk
        month_fixed = 0.0
        month = month_cpu * per_month + per_month * MONTH_REQUESTS_PER_RELEASE * lat
    groups = max(1, one["groups"])
    group = t["group_sum"] / groups  # a topic or kind: bounded by the months it spans
    commit = t["commit"]
    waves = {
        "chunks": -(-chunks // concurrency),
        "months": -(-SPAN_MONTHS // concurrency),
        "groups": math.ceil(math.ceil(groups / 25) / concurrency),  # messages of 25
    }
    total = (waves["chunks"] * chunk + settle + waves["months"] * month
             + waves["groups"] * group * 25 + commit)  # fmt: skip
    return {"chunk_cpu": chunk_cpu, "chunk": chunk, "chunks": chunks, "per_month": per_month,
            "month_cpu": month_cpu, "month_fixed": month_fixed, "month": month,
            "group": group, "groups": groups, "settle": settle, "commit": commit,
            "waves": waves, "total_s": total, "releases": releases,
            "concurrency": concurrency, "delay_ms": delayed["delay_ms"] if delayed else 0,
            "chunks_here": one["chunks"], "months_here": months_here}  # fmt: skip


def section(f: dict[str, Any]) -> str:
    rows = [
        f"| {r['workers']} | {r['delay_ms']:g} | {r['chunks']} | {r['months']} | {r['groups']} | "
        f"{r['render_s']:.1f} | {r['shared_s']:.1f} | {r['commit_s']:.1f} | {r['total_s']:.1f} | "
        f"{r['releases_per_s']:.0f} |"
        for r in f["runs"]
    ]
    costs = [
        f"| {r['workers']} | {r['delay_ms']:g} | {r['chunk_cost_s']:.2f} | "
        f"{r['timings']['settle']:.2f} | "
        f"{r['timings']['month_sum'] / max(1, r['months']):.2f} "
        f"(max {r['timings']['month_max']:.2f}) | "
        f"{r['timings']['group_sum'] / max(1, r['groups']):.3f} | "
        f"{r['timings']['prune_sum']:.2f} | {r['timings']['commit']:.2f} |"
        for r in f["runs"]
    ]
    base = next((r for r in f["runs"] if r["workers"] == 1 and not r["delay_ms"]), None)
    scaling = ", ".join(
        f"{r['workers']} workers {base['total_s'] / r['total_s']:.2f}× "
        f"(render {base['render_s'] / r['render_s']:.2f}×)"
        for r in f["runs"]
        if base and not r["delay_ms"] and r["workers"] > 1
    )
    p = projection(f)
    w = p["waves"]
    largest = max(
        [("a chunk", p["chunk"]), ("settle", p["settle"]), ("a month step", p["month"]),
         ("a topic and kind message", p["group"] * 25), ("the commit", p["commit"])],
        key=lambda x: x[1],
    )  # fmt: skip
    return "\n".join(
        [
            TITLE,
            "",
            f"`python -m bench --only fanout` ({f['at']}): {f['size']:,} releases in chunks of "
            f"{f['chunk_size']}, every release rendered again (`full`) into an empty public "
            "bucket, on moto's server (one request at a time, as S3 applies each atomically) "
            f"on this {f['cpus']}-core machine"
            + (f" (load average {f['load'][0]} before, {f['load'][1]} after: other work shared "
               "the cores)" if f.get("load") else "")
            + ". "
            + (f"These figures are for {f['size']:,} releases, not the default 10,000 (whose "
               "runs take 15 to 25 minutes each here): the same corpus generator over the same "
               "twenty years, so a month holds fewer releases and each month step's fixed cost "
               "weighs more. "
               if f["size"] < 10_000 else "")
            + "Workers are the processes "
            "`newsroom rebuild --workers N` starts; each receives one message at a time and "
            "calls the service `render_releases` calls. *render* runs from the start to the "
            "last chunk recorded; *shared* from there to the last topic, kind and prune step "
            "(settle, one message per month, the topics and kinds in batches of 25, the "
            "prunes); *commit* is the one final message (the pages that list the whole site "
            "and the state's head)."
            + (" The delayed runs pause 20 ms before every AWS request (a botocore hook), as "
               "a request to S3 from Lambda takes about that long."
               if any(r["delay_ms"] for r in f["runs"]) else ""),
            "",
            "| workers | delay ms | chunks | months | topics+kinds | render s | shared s | "
            "commit s | total s | releases/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Speed-up over one worker: {scaling or 'n/a'}. What limits it here: two cores "
            "shared by the workers, the moto server (a thread of the bench process, serving "
            "one request at a time) and every other process on the machine; rendering is "
            "CPU-bound (Markdown, Jinja2), so past two workers the processes only take turns.",
            "",
            "What one message costs (seconds in the handler, from the steps' own timings in "
            "the rebuild's report; a chunk's cost is render × workers ÷ chunks):",
            "",
            "| workers | delay ms | chunk | settle | month (mean) | topic or kind | "
            "prunes (all) | commit |",
            "|---|---|---|---|---|---|---|---|",
            *costs,
            "",
            f"**Projection: {p['releases']:,} releases at Lambda concurrency "
            f"{p['concurrency']}** (`NEWSROOM_REBUILD_CONCURRENCY`), from the single worker's "
            "per-message costs (one invocation runs one message alone, as that worker did; "
            "the multi-worker runs measure this machine's contention)"
            + (f", measured with {p['delay_ms']:g} ms before every request (about what a "
               "request to S3 takes from Lambda), so AWS's latency is in the figures"
               if p["delay_ms"] else
               f". AWS's latency is added by arithmetic (requests × 20 ms ÷ {IO_THREADS} in "
               "flight), since a local endpoint hides it")
            + f". The archive is assumed to span {SPAN_MONTHS} months, as this "
            f"corpus does, so a month holds {p['per_month']:,.0f} releases (the densest "
            "case: a longer span gives smaller months):",
            "",
            *(
                [
                    f"- a chunk: {p['chunk']:.2f} s measured at {p['delay_ms']:g} ms a request "
                    f"({p['chunk_cpu']:.2f} s without the delay); {p['chunks']:,} chunks ÷ "
                    f"{p['concurrency']} = {w['chunks']} waves × {p['chunk']:.2f} s = "
                    f"{w['chunks'] * p['chunk']:.0f} s;",
                    f"- settle: {p['settle']:.1f} s (measured for {p['chunks_here']} chunks, plus "
                    f"one GET per further chunk: {p['chunks'] - p['chunks_here']:,} × 20 ms ÷ "
                    f"{IO_THREADS});",
                    f"- a month: {p['month_fixed']:.2f} s measured per month step here (about "
                    f"{f['size'] / p['months_here']:.1f} releases each, delayed) + "
                    f"{p['per_month'] - f['size'] / p['months_here']:,.0f} more releases × "
                    f"({p['month_cpu'] * 1000:.1f} ms of month-step time per release without "
                    "the delay, an upper bound since it counts each month's fixed cost again "
                    f"per release, + {MONTH_REQUESTS_PER_RELEASE} requests × 20 ms ÷ "
                    f"{IO_THREADS}) = {p['month']:.0f} s; {SPAN_MONTHS} months ÷ "
                    f"{p['concurrency']} = {w['months']} waves = "
                    f"{w['months'] * p['month']:.0f} s;",
                ]
                if p["delay_ms"] else
                [
                    f"- a chunk: {p['chunk_cpu']:.2f} s + {f['chunk_size']} × "
                    f"{REQUESTS_PER_RELEASE} requests × 20 ms ÷ {IO_THREADS} = "
                    f"{p['chunk']:.2f} s; {p['chunks']:,} chunks ÷ {p['concurrency']} = "
                    f"{w['chunks']} waves = {w['chunks'] * p['chunk']:.0f} s;",
                    f"- settle: {p['settle']:.1f} s ({p['chunks']:,} chunk records, one GET each "
                    f"× 20 ms ÷ {IO_THREADS}, plus what it took here);",
                    f"- a month: {p['month_cpu'] * 1000:.2f} ms per release (the month steps' "
                    "time here ÷ the releases, so each month's fixed cost is counted again per "
                    f"release: an upper bound) × {p['per_month']:,.0f} + "
                    f"{p['per_month']:,.0f} × {MONTH_REQUESTS_PER_RELEASE} requests × 20 ms ÷ "
                    f"{IO_THREADS} = {p['month']:.0f} s; {SPAN_MONTHS} months ÷ "
                    f"{p['concurrency']} = {w['months']} waves = "
                    f"{w['months'] * p['month']:.0f} s;",
                ]
            ),
            f"- a topic or kind: {p['group']:.3f} s (its newest months' summaries and its "
            "pages; it does not grow with the archive, only with the months it spans), 25 "
            f"a message: {p['group'] * 25:.1f} s, {w['groups']} wave(s);",
            f"- commit: {p['commit']:.1f} s here; it reads one record per month, topic and "
            "kind and renders the pages that list the whole site, so it grows with the months "
            "and topics, not the releases;",
            f"- total ≈ {p['total_s']:.0f} s ({p['total_s'] / 60:.1f} min). The largest "
            f"single invocation is {largest[0]}, {largest[1]:.0f} s, "
            + ("under Lambda's 15 minutes (900 s)" if largest[1] < 900 else
               "**over** Lambda's 15 minutes (900 s): a month that dense needs splitting")
            + "; a Lambda with 1,024 MB has about 0.6 of a vCPU, so CPU figures may be "
            "up to 1.7× longer there.",
            "",
            "What still grows with the archive, and how far: the start lists the source "
            "bucket and (for a rebuild that reuses unchanged pages) the release pages, one "
            "request per 1,000 keys (1,000 each at a million, about 20 s), and reads the "
            "committed state one month at a time (9.8 MB of month objects at 10,000 "
            "releases, so about 1 GB at a million, a month of about 4 MB in memory at a "
            "time), keeping the listing's ETag and the held slug of every source (2.5 MiB "
            "at 10,000, about 270 MiB at a million, measured with `tracemalloc` on dicts of "
            "the same shape; the start took 5 s at 10,000 over a committed state); settle "
            "reads one record per chunk (7.5 KB: the keys of the pages the chunk wrote; "
            "374 KB at 10,000, about 37 MB in 5,000 GETs at a million); each prune "
            "message lists a 36th of the release pages at most (about 28,000 at a million). "
            "So at a million the start is the invocation that grows most (a few minutes and "
            "under 1 GB of memory, within one Lambda's limits). Bounding it would need the "
            "per-source hint (`state/sources/<name>.json`, today the months that may hold "
            "the source's entry) to carry the slug the source holds, so that each chunk "
            "looks up its own sources (one GET each) instead of the start reading every "
            "month. "
            "The commit reads one record per month, topic and kind and lists the listing "
            "pages (months × topics), which grow with the time the archive spans and the "
            "number of topics, as the head of the private state does.",
            "",
        ]
    )
