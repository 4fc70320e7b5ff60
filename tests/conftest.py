"""Fixtures: the environment, moto S3 with both buckets, the app, alert
resources and the SES outbox. Helpers live in ``support.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws
from support import BASE_ENV, PUBLIC, SOURCE

from chalicelib import service
from newsroom.endpoint import atomic_moto_requests

# The longest units, started first: with `make test`'s processes (one unit
# each at a time, handed out in this order) none is left with one long file
# at the end while the others idle. Longest first by `pytest --durations`; the
# rest follow in file order, and the judges come last (`make test` runs them
# alone, after the rest): Lighthouse scores the page load, and next to the
# heaviest tests it measured their CPU time (performance 0.99), not the pages'.
LONGEST_FIRST = (
    "tests/test_rebuild.py",
    "tests/browser/",
    "tests/test_bench_smoke.py",
    "tests/test_concurrency.py",
    "tests/test_faults.py",
    "tests/test_rebuild_cli.py",
    "tests/test_confidentiality.py",
    "tests/test_demo.py",
    "tests/test_packaging.py",
    "tests/test_search_updater.py",
    "tests/test_sweep.py",
    "tests/test_properties.py",
)
LAST = "tests/test_judges.py"
BROWSER = "tests/browser/"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(LAST):
            return len(LONGEST_FIRST) + 1
        found = [i for i, p in enumerate(LONGEST_FIRST) if item.nodeid.startswith(p)]
        return found[0] if found else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a file's own order stays


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` as `make test` runs it, with two changes: the browser
    folder is one unit (its demo site and Chromium, package fixtures, are then
    made once, not once per process), and units go out in the order above
    (xdist's own order, most tests first, handed the longest file out last)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndBrowser(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return BROWSER if path.startswith(BROWSER) else path

    config.option.loadscopereorder = False
    return FilesAndBrowser(config, log)


@pytest.fixture(autouse=True)
def fresh_services() -> None:
    """Each test builds its own clients and services (none cached by an earlier test)."""
    service.reset()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("NEWSROOM_") or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(BASE_ENV)


@pytest.fixture
def aws(env: dict[str, str]) -> Iterator[Any]:
    """moto S3 with the two buckets; each moto request made atomic (as real S3 is)."""
    with atomic_moto_requests(), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=SOURCE)
        s3.create_bucket(Bucket=PUBLIC)
        yield s3


@pytest.fixture
def app_module(aws: Any) -> Any:
    import app

    return app


@pytest.fixture
def alerts(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """aws plus the alert resources (table, queue, verified sender) and settings;
    the alert queue's URL."""
    from alerts_support import ALERT_ENV, create_alert_resources

    for name, value in ALERT_ENV.items():
        monkeypatch.setenv(name, value)
    return create_alert_resources()


@pytest.fixture
def client(app_module: Any, alerts: str, tmp_path: Path) -> Client:
    """The Chalice test client over the app, with the alert resources. Its
    project dir holds no .chalice/config.json, so the test's environment
    stays (the dev stage would point at real buckets)."""
    return Client(app_module.app, project_dir=str(tmp_path))


@pytest.fixture
def outbox() -> Iterator[Any]:
    """Every SES SendEmail request the handlers make, as sent (moto keeps only
    the HTML part and no headers)."""
    from alerts_support import Outbox

    box = Outbox()
    client = service.aws_client("sesv2")
    box.attach(client)
    try:
        yield box
    finally:
        box.detach(client)
