"""Full builds (``newsroom build``) against Hugo on the same corpus, the no-op
rebuild of a folder, and the no-op ``newsroom rebuild`` against moto."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import corpus, proc

BUILT = re.compile(r"built (\d+) releases into .*?: (\d+) written, (\d+) unchanged, (\d+) removed")


def newsroom_cmd(src: Path, out: Path, workers: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "newsroom.cli", "build", str(src), "--out", str(out)]
    cmd += ["--site-url", corpus.SITE_URL]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def hugo_cmd(site: Path, out: Path) -> list[str]:
    return ["hugo", "--quiet", "-s", str(site), "-d", str(out)]


def ensure_hugo(install: bool) -> str | None:
    """Path of ``hugo``, installing Debian's package when missing (if allowed)."""
    found = shutil.which("hugo")
    if found or not install:
        return found
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "hugo"], env=env, check=False, capture_output=True
    )
    return shutil.which("hugo")


def hugo_version() -> str:
    try:
        return subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def _summary(runs: list[proc.Measured], pages: int) -> dict[str, Any]:
    wall = statistics.median(r.wall for r in runs)
    return {
        "wall_s": wall,
        "cpu_s": statistics.median(r.cpu for r in runs),
        "peak_rss_mib": statistics.median(r.peak_mib for r in runs),
        "peak_pss_mib": statistics.median(r.peak_pss_mib for r in runs),
        "pages": pages,
        "pages_per_s": pages / wall if wall else 0.0,
        "walls": [round(r.wall, 2) for r in runs],
    }


def _count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def measure(size: int, runs: int, work: Path, hugo: str | None) -> dict[str, Any]:
    """Full build, Hugo (interleaved, same corpus), then no-op builds."""
    docs = corpus.generate(size)
    src = corpus.write_sources(docs, work / f"src-{size}")
    site = corpus.write_hugo_site(docs, work / f"hugo-{size}") if hugo else None
    del docs
    out, hout = work / f"out-{size}", work / f"hugo-out-{size}"
    ours, theirs = [], []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        m = proc.run(newsroom_cmd(src, out))
        if m.returncode != 0:
            raise RuntimeError(f"newsroom build failed: {m.stderr[-2000:]}")
        ours.append(m)
        if site is not None:
            shutil.rmtree(hout, ignore_errors=True)
            h = proc.run(hugo_cmd(site, hout))
            if h.returncode != 0:
                raise RuntimeError(f"hugo failed: {h.stderr[-2000:]}")
            theirs.append(h)
    result: dict[str, Any] = {"size": size, "runs": runs}
    result["newsroom"] = _summary(ours, _count_files(out))
    result["newsroom_cmd"] = " ".join(newsroom_cmd(Path(f"SRC-{size}"), Path(f"OUT-{size}")))
    if site is not None:
        result["hugo"] = _summary(theirs, _count_files(hout))
        result["hugo_cmd"] = " ".join(hugo_cmd(Path(f"HUGO-{size}"), Path("OUT")))
        result["ratio"] = result["newsroom"]["wall_s"] / result["hugo"]["wall_s"]
        result["cpu_ratio"] = result["newsroom"]["cpu_s"] / result["hugo"]["cpu_s"]
        shutil.rmtree(hout, ignore_errors=True)
    # no-op: the same sources into the folder the last full build left
    noop, written = [], []
    for _ in range(runs):
        m = proc.run(newsroom_cmd(src, out))
        noop.append(m)
        match = BUILT.search(m.stdout)
        written.append(int(match.group(2)) if match else -1)
    result["noop"] = _summary(noop, _count_files(out))
    result["noop"]["written"] = max(written)
    result["noop"]["fraction"] = result["noop"]["wall_s"] / result["newsroom"]["wall_s"]
    return result


def measure_rebuild(size: int, runs: int) -> dict[str, Any]:
    """``newsroom rebuild``'s engine (the rebuild service the render function
    runs) against in-process moto S3 and SQS, its queue drained in this process:
    a first rebuild publishes everything, then runs with nothing changed."""

    import boto3
    from moto import mock_aws

    from chalicelib.core.render import Renderer
    from chalicelib.keys import rebuild_key
    from chalicelib.rebuild import RebuildReport, RebuildService, SqsQueue
    from chalicelib.settings import Settings
    from chalicelib.storage import S3Storage
    from newsroom.endpoint import atomic_moto_requests
    from newsroom.rebuild import create_rebuild_queue, work

    from .publish import PUBLIC, SOURCE, environment

    # moto's in-process backend is not thread-safe: one request at a time, as
    # the test suite does (each rebuild step uses a few threads of S3 requests)
    with atomic_moto_requests(), environment(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        create_rebuild_queue(sqs, "bench-rebuild")
        for doc in corpus.generate(size):
            s3.put_object(
                Bucket=SOURCE,
                Key=f"releases/{doc['slug']}.json",
                Body=json.dumps(doc, ensure_ascii=False).encode(),
            )

        def rebuild() -> tuple[float, Any]:
            settings = Settings.from_env()
            svc = RebuildService(
                S3Storage(s3, SOURCE), S3Storage(s3, PUBLIC), Renderer(settings),
                SqsQueue(sqs, "bench-rebuild"),
            )  # fmt: skip
            started = time.perf_counter()
            manifest = svc.start()
            report_key = rebuild_key(manifest.rebuild_id, "report.json")

            def finished() -> bool:
                return svc.source.head(report_key) is not None

            work(svc.handle, sqs, "bench-rebuild", stop=finished, wait_seconds=0)
            elapsed = time.perf_counter() - started
            report = RebuildReport.from_bytes(svc.source.get(report_key).body)  # type: ignore[union-attr]
            return elapsed, report

        full_s, full = rebuild()
        times, written = [], []
        for _ in range(runs):
            t, report = rebuild()
            times.append(t)
            written.append(report.written + len(report.deleted))
    noop = statistics.median(times)
    return {
        "size": size,
        "full_s": full_s,
        "full_written": full.written,
        "noop_s": noop,
        "noop_written": max(written),
        "fraction": noop / full_s,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
