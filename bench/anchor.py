"""The build anchor (Hugo against ``newsroom build`` with the shared script) and
the build's peak memory up to 100,000 releases.

``side_by_side.sh N RUNS`` (``../shared/bench`` from the repository root) is
the reference the build goals are judged by: it generates its own fixed-seed
corpus, times Hugo and ``newsroom build`` alternately and prints the ratio of
the median wall times. It is run twice per size: as is (the site with its
search index, what ``newsroom build`` makes by default) and with
``--no-search`` (the same work Hugo does: pages, listings, feeds, sitemaps).

Memory: ``newsroom build`` on the anchor's corpus, the sum of PSS
(proportional set size: pages shared between the parent and its forked
workers counted once) over the whole process tree, Pagefind included,
sampled every 5 ms; with search up to 10,000 releases and without it at
every size (Pagefind holds its whole index in memory, about 130 KiB per
release, so a search build of 100,000 releases needs about 13 GiB).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import proc

ROOT = Path(__file__).resolve().parent.parent
TITLE = "## Full build against the Hugo anchor, and peak memory"
SEARCH_MEMORY_UP_TO = 10_000  # larger search builds do not fit this machine's memory
_LINE = re.compile(
    r"N=(\d+)\s+hugo ([\d.]+) s (\d+) MiB \| newsroom build ([\d.]+) s (\d+) MiB \| ratio ([\d.]+)"
)


def anchor_dir() -> Path | None:
    """The shared anchor: ``NEWSROOM_ANCHOR``, else ``../shared/bench`` of the repository."""
    for candidate in (os.environ.get("NEWSROOM_ANCHOR"), ROOT.parent / "shared" / "bench",
                      ROOT.parent.parent / "shared" / "bench"):  # fmt: skip
        if candidate and (Path(candidate) / "side_by_side.sh").is_file():
            return Path(candidate)
    return None


def _newsroom_bin() -> str:
    return str(Path(sys.executable).with_name("newsroom"))


def side_by_side(size: int, runs: int, *extra: str) -> dict[str, Any]:
    """One run of the anchor script; ``extra`` options go to ``newsroom build``."""
    here = anchor_dir()
    if here is None:
        raise RuntimeError("the anchor (../shared/bench/side_by_side.sh) is not there")
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="newsroom-anchor-") as tmp:
        if extra:  # the script runs "$NEWSROOM_BIN build …": a wrapper adds the options
            wrapper = Path(tmp, "newsroom")
            wrapper.write_text(f'#!/bin/sh\nexec {_newsroom_bin()} "$@" {" ".join(extra)}\n')
            wrapper.chmod(0o755)
            env["NEWSROOM_BIN"] = str(wrapper)
        else:
            env["NEWSROOM_BIN"] = _newsroom_bin()
        run = subprocess.run(
            ["bash", str(here / "side_by_side.sh"), str(size), str(runs)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    found = _LINE.search(run.stdout)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"side_by_side.sh failed: {run.stdout[-800:]} {run.stderr[-800:]}")
    return {
        "size": size,
        "runs": runs,
        "options": " ".join(extra),
        "hugo_s": float(found.group(2)),
        "hugo_mib": int(found.group(3)),
        "newsroom_s": float(found.group(4)),
        "newsroom_mib": int(found.group(5)),
        "ratio": float(found.group(6)),
        "line": found.group(0),
    }


def memory(size: int, *extra: str) -> dict[str, Any]:
    """Peak PSS and wall time of one ``newsroom build`` of the anchor's corpus."""
    here = anchor_dir()
    if here is None:
        raise RuntimeError("the anchor (../shared/bench/gen_corpus.py) is not there")
    with tempfile.TemporaryDirectory(prefix="newsroom-memory-") as tmp:
        # NEWSROOM_CORPORA: a folder keeping generated corpora (c<N>/releases)
        # between runs; 100,000 releases take minutes to generate
        kept = os.environ.get("NEWSROOM_CORPORA")
        corpus = Path(kept, f"c{size}") if kept else Path(tmp, "corpus")
        if not (corpus / "releases").is_dir():
            subprocess.run(
                [sys.executable, str(here / "gen_corpus.py"), str(size), str(corpus)],
                check=True, capture_output=True,
            )  # fmt: skip
            shutil.rmtree(corpus / "content", ignore_errors=True)  # Hugo's copy is not needed
            shutil.rmtree(corpus / "json", ignore_errors=True)
        cmd = [_newsroom_bin(), "build", str(corpus / "releases"), "--out", str(Path(tmp, "out"))]
        cmd += ["--site-url", "https://news.example.org", *extra]
        m = proc.run(cmd)
        if m.returncode != 0:
            raise RuntimeError(f"newsroom build failed: {m.stderr[-2000:]}")
    return {
        "size": size,
        "options": " ".join(extra),
        "wall_s": m.wall,
        "cpu_s": m.cpu,
        "peak_pss_mib": m.peak_pss_mib,
        "peak_rss_mib": m.peak_mib,
        "load": proc.load_average()[0],
    }


def measure(sizes: list[int], runs: int, memory_sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"anchor": [], "memory": []}
    for size in sizes:
        for extra in ((), ("--no-search",)):
            out["anchor"].append(side_by_side(size, runs, *extra))
            print(out["anchor"][-1]["line"], extra, flush=True)
    for size in memory_sizes:
        for extra in ((), ("--no-search",)) if size <= SEARCH_MEMORY_UP_TO else (("--no-search",),):
            out["memory"].append(memory(size, *extra))
            print(f"memory {size}: {out['memory'][-1]}", flush=True)
    out["load"] = proc.load_average()
    return out


def section(f: dict[str, Any]) -> str:
    def mib_goal(size: int) -> int:
        return 300 if size <= 10_000 else 1024

    rows = [
        f"| {a['size']:,} | {a['options'] or '(default: with search)'} | {a['hugo_s']:.2f} s | "
        f"{a['newsroom_s']:.2f} s | **{a['ratio']:.2f}** | {a['hugo_mib']} / {a['newsroom_mib']} MiB |"
        for a in f.get("anchor", [])
    ]
    mem = [
        f"| {m['size']:,} | {m['options'] or '(default: with search)'} | {m['wall_s']:.1f} s | {m['cpu_s']:.1f} s | "
        f"**{m['peak_pss_mib']:.0f} MiB** | {mib_goal(m['size'])} MiB | "
        f"{'met' if m['peak_pss_mib'] < mib_goal(m['size']) else 'missed'} | {m['load']:.1f} |"
        for m in f.get("memory", [])
    ]
    return "\n".join(
        [
            TITLE,
            "",
            "Goal: `newsroom build` at most 1.0× Hugo's wall time at 1,000 and 10,000 "
            "releases, measured with the shared anchor from the repository root "
            "(`bash ../shared/bench/side_by_side.sh N RUNS`, medians, alternating runs); "
            "peak memory (PSS over the process tree) under 300 MiB at 10,000 and 1 GiB "
            "at 100,000. `python -m bench --only anchor` runs this section alone "
            "(`--anchor-sizes`, `--memory-sizes`, `--runs`).",
            "",
            "| releases | newsroom build options | Hugo | newsroom build | ratio | "
            "largest process (Hugo / ours) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "| releases | options | wall | CPU | peak PSS (tree) | goal | | load |",
            "|---|---|---|---|---|---|---|---|",
            *mem,
            "",
            f"Load average at the end: {f['load'][0]:.1f} on 2 cores (other work shared the "
            "machine: ratios are what the anchor is for, absolute times move with the load).",
        ]
    )
