"""``python -m bench``: run every benchmark, print a table, write docs/performance.md.

python -m bench                 # the full suite (about 10-15 minutes on 2 cores)
python -m bench --quick         # tiny sizes, a smoke run (seconds)
python -m bench --publish-sizes 100,1000 --build-sizes 1000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import (
    alerts,
    anchor,
    build,
    burst,
    coldstart,
    fanout,
    markdown,
    proc,
    publish,
    report,
    search,
)

ROOT = Path(__file__).resolve().parent.parent


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    p.add_argument("--publish-sizes", type=_sizes, default=[100, 10000, 100000])
    p.add_argument("--publish-runs", type=int, default=5, help="publishes timed per size and case")
    p.add_argument("--build-sizes", type=_sizes, default=[1000, 10000])
    p.add_argument("--rebuild-sizes", type=_sizes, default=None, help="default: build sizes")
    p.add_argument("--runs", type=int, default=3, help="runs per build measurement (median)")
    p.add_argument("--no-hugo", action="store_true", help="skip the Hugo comparison")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install hugo")
    p.add_argument("--no-zip", action="store_true", help="skip chalice package")
    p.add_argument(
        "--only",
        default="",
        help="comma list: markdown,publish,build,rebuild,cold,alerts,search,anchor,fanout,burst",
    )
    p.add_argument("--burst-archive", type=int, default=10000, help="releases already public")
    p.add_argument("--burst-uploads", type=int, default=1000, help="releases uploaded at once")
    p.add_argument(
        "--burst-delays", type=_sizes, default=[0, 20], help="ms added to each handler request"
    )
    p.add_argument(
        "--burst-batches", type=_sizes, default=None,
        help="batch sizes (most messages a batch) to run the burst with (default: the app's)",
    )  # fmt: skip
    p.add_argument("--fanout-size", type=int, default=10000, help="releases for the fan-out rebuild")
    p.add_argument("--fanout-workers", type=_sizes, default=None,
                   help="worker counts without delay (default 1,2,4)")  # fmt: skip
    p.add_argument("--fanout-delayed", type=_sizes, default=None,
                   help="worker counts with the 20 ms delay (default 4)")  # fmt: skip
    p.add_argument("--alert-subscribers", type=int, default=10000)
    p.add_argument("--search-sizes", type=_sizes, default=[1000, 10000])
    p.add_argument("--anchor-sizes", type=_sizes, default=[1000, 10000])
    p.add_argument("--memory-sizes", type=_sizes, default=[10000, 100000])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    p.add_argument("--json", type=Path, default=None, help="also write raw figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.publish_sizes, args.publish_runs = [5, 10], 2
        # as small as each section still runs every step it measures (the
        # corpus gives a month per release, so the size is the month count)
        args.build_sizes, args.runs = [12], 1
        args.no_install, args.no_zip = True, True
        args.alert_subscribers = 40
        args.search_sizes = [12]
        args.anchor_sizes, args.memory_sizes = [12], [12]
        args.fanout_size = 6
        args.fanout_workers, args.fanout_delayed = [2], []  # one run shows the section works
        args.burst_archive, args.burst_uploads, args.burst_delays = 10, 10, [0]
    if args.rebuild_sizes is None:
        args.rebuild_sizes = args.build_sizes
    return args


def _save(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Write what is measured so far (a long run stopped midway keeps its figures)."""
    figures["machine"]["load_after"] = proc.load_average()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    alone = {"alerts": (report.ALERTS_TITLE, report.alerts_section)}
    alone["search"] = (report.SEARCH_TITLE, report.search_section)
    alone["anchor"] = (anchor.TITLE, anchor.section)
    alone["publish"] = (publish.TITLE, publish.section)
    alone["fanout"] = (fanout.TITLE, fanout.section)
    alone["burst"] = (burst.TITLE, burst.section)
    only = args.only.strip()
    if only in alone and args.out.exists() and only in figures:
        # one section measured: update it, keep the other figures
        title, section = alone[only]
        args.out.write_text(report.splice(args.out.read_text(), title, section(figures[only])))
    else:
        args.out.write_text(report.document(figures, quick=args.quick))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


def run(args: argparse.Namespace) -> dict[str, Any]:
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    logging.getLogger("newsroom").setLevel(logging.WARNING)
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": proc.load_average(),
        },
        "command": "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:] else "",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if wanted("markdown"):
        figures["markdown"] = markdown.measure(50 if args.quick else 1000)
        print(report.markdown_table(figures["markdown"]), flush=True)
        _save(args, figures)
    if wanted("publish"):
        figures["publish"] = []
        for size in args.publish_sizes:
            figures["publish"].append(publish.measure(size, runs=args.publish_runs))
            print(f"publish: archive {size} done", flush=True)
        print(report.publish_table(figures["publish"]), flush=True)
        _save(args, figures)
    with tempfile.TemporaryDirectory(prefix="newsroom-bench-") as tmp:
        if wanted("build"):
            hugo = None if args.no_hugo else build.ensure_hugo(not args.no_install)
            figures["hugo_version"] = build.hugo_version() if hugo else ""
            figures["build"] = []
            for size in args.build_sizes:
                figures["build"].append(build.measure(size, args.runs, Path(tmp), hugo))
                print(f"build: {size} done", flush=True)
            print(report.build_table(figures["build"]), flush=True)
            _save(args, figures)
    if wanted("rebuild"):
        figures["rebuild"] = [build.measure_rebuild(s, args.runs) for s in args.rebuild_sizes]
        print(report.rebuild_table(figures["rebuild"]), flush=True)
        _save(args, figures)
    if wanted("cold"):
        figures["cold"] = coldstart.measure_imports(1 if args.quick else 7)
        if not args.no_zip:
            figures["zip"] = coldstart.measure_zip()
        print(report.cold_table(figures), flush=True)
    if wanted("alerts"):
        figures["alerts"] = alerts.measure(args.alert_subscribers)
        print(report.alerts_section(figures["alerts"]), flush=True)
    if wanted("anchor") and anchor.anchor_dir() is not None and not args.no_hugo:
        figures["anchor"] = anchor.measure(args.anchor_sizes, args.runs, args.memory_sizes)
        print(anchor.section(figures["anchor"]), flush=True)
        _save(args, figures)
    if wanted("fanout"):
        small = args.fanout_size < 1000
        figures["fanout"] = fanout.measure(
            args.fanout_size,
            workers=tuple((1, 2, 4) if args.fanout_workers is None else args.fanout_workers),
            delayed=tuple((4,) if args.fanout_delayed is None else args.fanout_delayed),
            chunk_size=8 if small else 200,
        )
        print(fanout.section(figures["fanout"]), flush=True)
        _save(args, figures)
    if wanted("search"):
        sizes = args.search_sizes
        figures["search"] = search.measure(sizes, query_size=max(sizes), lambda_size=max(sizes))
        print(report.search_section(figures["search"]), flush=True)
    if wanted("burst"):
        delays = tuple(float(d) for d in args.burst_delays)
        batches = tuple(args.burst_batches or (burst.BATCH_SIZE,))
        figures["burst"] = burst.measure(
            args.burst_archive, args.burst_uploads, delays, singles=1 if args.quick else 5,
            batch_sizes=batches,
        )  # fmt: skip  (a single publish waits out the batching window, 2 s, each)
        print(burst.section(figures["burst"]), flush=True)
        _save(args, figures)
    figures["machine"]["load_after"] = proc.load_average()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args)
    _save(args, figures)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
