"""Stress: 1,000 releases published by 32 parallel workers against a real local
S3 endpoint (the same atomic moto server as tests/test_concurrency.py).

Run it with ``pytest -m stress tests/test_stress.py -s``; it prints one JSON
line of figures (recorded in docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from typing import Any

import pytest
from invariants import link_problems
from support import public_tree
from test_concurrency import (  # noqa: F401  (fixtures)
    endpoint,
    front_slugs,
    full_build,
    index_slugs,
    run_parallel,
    s3,
    upload_releases,
)

RELEASES = int(os.environ.get("STRESS_RELEASES", "1000"))
WORKERS = int(os.environ.get("STRESS_WORKERS", "32"))
# Lambda retries a failed asynchronous invocation after about 1 and 2 minutes;
# the run scales that down (seconds), so a retried event meets a shorter queue.
RETRY_DELAY = float(os.environ.get("STRESS_RETRY_DELAY", "20"))


def listed_slugs(tree: dict[str, bytes]) -> set[str]:
    """Every public release's slug, as the month files list them."""
    return {
        r["slug"]
        for key, body in tree.items()
        if re.fullmatch(r"index/\d{4}-\d{2}\.json", key)
        for r in json.loads(body)["releases"]
    }


@pytest.mark.stress
def test_stress_publish(s3: Any, endpoint: str) -> None:  # noqa: F811
    keys = upload_releases(s3, "stress", RELEASES, random.Random(1))
    started = time.perf_counter()
    figures = run_parallel(
        WORKERS,
        [lambda p, k=k: p.sync(k) for k in keys],
        endpoint,
        stats=True,
        retry_delay=RETRY_DELAY,
    )
    wall = time.perf_counter() - started

    tree = public_tree(s3)
    slugs = index_slugs(tree)  # the newest 100 (index.json version 2)
    lost = RELEASES - len(listed_slugs(tree))
    report = {
        "releases": RELEASES,
        "workers": WORKERS,
        "lost_entries": lost,
        "index_conflicts_retried": figures["conflicts"],
        "lambda_retries": figures["lambda_retries"],
        "wall_seconds": round(wall, 1),
        "releases_per_second": round(RELEASES / wall, 2),
    }
    print("\nSTRESS " + json.dumps(report))
    assert lost == 0
    assert front_slugs(tree) == slugs[:12]
    assert link_problems(tree) == []
    assert tree == full_build(s3)
