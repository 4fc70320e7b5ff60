"""Markdown libraries compared on the generated corpus and the sample releases:
time per release body, and whether the sanitized HTML is the same."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import corpus

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "releases"


def measure(n: int) -> dict[str, Any]:
    from chalicelib.core import markup

    bodies = [d["body"] for d in corpus.generate(n, seed=11)]
    samples = [
        doc["body"]
        for doc in (json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json")))
        if doc.get("body_format", "markdown") == "markdown"
    ]
    out: dict[str, Any] = {"bodies": n, "samples": len(samples)}
    timings: dict[str, float] = {}
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # a dev dependency: the comparison is skipped without it
        MarkdownIt = None  # noqa: N806
    if MarkdownIt is not None:
        md = MarkdownIt("commonmark", {"typographer": False}).enable(["table", "strikethrough"])
        started = time.perf_counter()
        reference = [md.render(b) for b in bodies]
        timings["markdown-it-py"] = (time.perf_counter() - started) / n * 1000
    started = time.perf_counter()
    ours = [markup.markdown_html(b) for b in bodies]
    timings["cmarkgfm"] = (time.perf_counter() - started) / n * 1000
    started = time.perf_counter()
    for html in ours:
        markup.sanitize(html)
    timings["nh3 sanitize"] = (time.perf_counter() - started) / n * 1000
    out["ms_per_body"] = timings
    if MarkdownIt is not None:
        same = sum(
            markup.sanitize(a) == markup.sanitize(b) for a, b in zip(reference, ours, strict=True)
        )
        out["same_corpus"] = same
        out["same_samples"] = sum(
            markup.sanitize(md.render(b)) == markup.body_html(b, "markdown") for b in samples
        )
    return out
