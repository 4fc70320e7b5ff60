"""The benchmark suite runs (tiny sizes), so it cannot rot; and the parallel,
streaming build it measures gives the same bytes as a serial one. No timing
is asserted anywhere: benchmarks are not tests."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ is not installed

from bench import corpus  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402
from chalicelib.core.render import Renderer  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from newsroom import build  # noqa: E402
from newsroom.cli import main as cli  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_log_level() -> Iterator[None]:
    """The benchmarks quiet the ``newsroom`` logger for the whole process; put
    back the level the app configures, so later tests (test_logging) still see
    its INFO lines."""
    import app  # noqa: F401 - configures the ``newsroom`` logger, as in Lambda

    log = logging.getLogger("newsroom")
    level = log.level
    yield
    log.setLevel(level)


def test_quick_benchmark_writes_every_section(tmp_path: Path, env: dict[str, str]) -> None:
    out, raw = tmp_path / "performance.md", tmp_path / "figures.json"
    assert bench_main(["--quick", "--no-hugo", "--out", str(out), "--json", str(raw)]) == 0
    doc = out.read_text()
    for heading in ("## Goals", "## Markdown library", "## Cost of one publish",
                    "## Full build, no-op build, Hugo", "## No-op `newsroom rebuild`",
                    "## Cold start and package size",
                    "## E-mail alerts: one release to many subscribers",
                    "## Fan-out rebuild",
                    "## The publish queue: a burst"):  # fmt: skip
        assert heading in doc
    figures = json.loads(raw.read_text())
    for result in figures["publish"]:
        for case in result["cases"].values():
            # at least the source and the state's head read; page, head and receipt written
            assert case["ops"]["GetObject"] >= 2 and case["ops"]["PutObject"] >= 3
            assert "index.json" in case["put_keys"] and "state/head.json" in case["put_keys"]
            assert case["bytes_read"] > 0 and case["bytes_written"] > 0
    assert figures["build"][0]["noop"]["written"] == 0
    assert figures["rebuild"][0]["noop_written"] == 0
    fan = figures["fanout"]
    [run] = fan["runs"]  # --quick: two workers, no delay
    assert run["workers"] == 2 and run["delay_ms"] == 0
    assert run["written"] > 0  # it rendered a whole site
    assert figures["markdown"]["same_corpus"] == figures["markdown"]["bodies"]
    alerts = figures["alerts"]
    assert alerts["recipients"] == alerts["emails"] == alerts["subscribers"] == 40
    assert alerts["duplicates"] == 0
    # the queue path at concurrency 2: every upload live, nothing dead-lettered
    [burst] = figures["burst"]
    assert burst["completed"] and burst["lost"] == 0 and burst["dead_letter"] == 0


def test_alerts_only_run_updates_its_section_and_keeps_the_rest(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "performance.md"
    out.write_text(
        "# Performance\n\n## Cost of one publish\n\nkept\n\n## How to read these figures\n\nnotes\n"
    )
    args = ["--only", "alerts", "--alert-subscribers", "12", "--out", str(out)]
    assert bench_main(args) == 0
    assert bench_main(args) == 0
    doc = out.read_text()
    assert doc.count("## E-mail alerts") == 1
    assert "kept" in doc and "notes" in doc
    assert doc.index("## E-mail alerts") < doc.index("## How to read these figures")


def test_corpus_is_deterministic_and_valid() -> None:
    from chalicelib.core.model import parse_release

    a, b = corpus.generate(5), corpus.generate(5)
    assert a == b
    for doc in a:
        release = parse_release(json.dumps(doc).encode(), name=f"{doc['slug']}.json")
        assert len(release.body.split()) >= 550


def test_parallel_streaming_build_matches_serial(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    docs = corpus.generate(24)
    sources = [(f"releases/{d['slug']}.json", json.dumps(d).encode()) for d in docs]
    renderer = Renderer(Settings.from_env())
    now = datetime(2030, 1, 1, tzinfo=UTC)
    serial = build.build_site(sources, renderer, now=now, workers=1)
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 10)
    streamed: dict[str, bytes] = {}
    parallel = build.build_site(sources, renderer, now=now, workers=2, sink=streamed.__setitem__)
    assert sorted(parallel.streamed) == sorted(streamed)
    assert {**parallel.files, **streamed} == serial.files
    assert not set(parallel.files) & set(streamed)


def test_build_into_existing_folder_rewrites_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    src = corpus.write_sources(corpus.generate(6), tmp_path / "src")
    out = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(cli, ["build", str(src), "--out", str(out)])
    assert first.exit_code == 0, first.output
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = runner.invoke(cli, ["build", str(src), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert " 0 written" in again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
