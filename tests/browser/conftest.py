"""The browser tests' shared fixtures: one demo site and one Chromium for the
browser tests (the page, search and alert tests all use them; the demo's
publish of every sample is the slow part of these tests, so it is done once)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import serving_demo

from .test_pages import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    HOW_TO_INSTALL,
    ROOT,
    SAMPLES,
    SCHEDULED_SAMPLE,
    Site,
)


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    inbox = tmp_path_factory.mktemp("inbox")
    with serving_demo(SAMPLES, inbox=inbox, poll_interval=0.1, watch=True) as (demo, receipts):
        statuses = {r["source_key"]: r["status"] for r in receipts}
        assert statuses.pop(SCHEDULED_SAMPLE) == "scheduled", receipts
        assert set(statuses.values()) == {"published"}, receipts
        with urllib.request.urlopen(demo.url + "/index.json") as resp:
            releases = json.load(resp)["releases"]
        yield Site(demo.url, demo, releases, inbox)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """A launched Chromium, or the reason there is none (the tests then fail
    with that reason: a missing browser is a broken setup, not a skip)."""
    problem = None
    if not Path(CHROMIUM).is_file():
        problem = f"Chromium is not installed at {CHROMIUM}: {HOW_TO_INSTALL}"
    elif not AXE.is_file():
        problem = f"axe-core is missing ({AXE.relative_to(ROOT)}): {HOW_TO_INSTALL}"
    if problem:
        yield problem
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        yield f"Playwright for Python is not installed ({exc}): pip install -e '.[dev]'"
        return
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
