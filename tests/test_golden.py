"""Golden output: a small fixture site, rendered and compared file for file.

A template or rendering-code change shows up here as a readable diff (the
`theme` fingerprint in index.json changes with any rendering module). When the
change is intended, regenerate the expected tree and review it in the commit:

    UPDATE_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import difflib
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from chalicelib.core.render import Renderer
from chalicelib.settings import Settings
from newsroom.build import build_site

HERE = Path(__file__).resolve().parent / "golden"
SETTINGS = Settings(
    site_url="https://news.example.org",
    site_title="Harbor Light Newsroom",
    organisation="Harbor Light Alliance",
    intro="Press releases, reports and statements.",
    press_email="press@harborlight.example",
    press_phone="+1 555 0100",
    page_size=2,
)


def render_fixture() -> dict[str, bytes]:
    sources = [
        (f"releases/{p.name}", p.read_bytes()) for p in sorted((HERE / "src").glob("*.json"))
    ]
    result = build_site(sources, Renderer(SETTINGS), now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert result.problems == []
    return result.files


def test_fixture_site_matches_the_expected_tree() -> None:
    files = render_fixture()
    expected_dir = HERE / "expected"
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for key, body in files.items():
            path = expected_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_bytes()
        for p in expected_dir.rglob("*")
        if p.is_file()
    }
    assert sorted(files) == sorted(expected), "the site's key set changed"
    for key in sorted(files):
        if files[key] != expected[key]:
            diff = "".join(
                difflib.unified_diff(
                    expected[key].decode(errors="replace").splitlines(keepends=True),
                    files[key].decode(errors="replace").splitlines(keepends=True),
                    f"expected/{key}",
                    f"rendered/{key}",
                )
            )
            raise AssertionError(f"{key} differs (UPDATE_GOLDEN=1 to accept):\n{diff[:4000]}")


def test_fixture_covers_what_the_golden_test_is_for() -> None:
    files = render_fixture()
    import json

    page = files["releases/water-quality-report/index.html"]
    assert b"<script>alert" not in page and b"onclick" not in page  # sanitized HTML body
    assert b"2023 &amp; found" in page
    assert (
        b'<html lang="fr" dir="ltr">' in files["releases/abidjan-digue/index.html"]
    )  # explicit slug, French
    # two releases at the same instant (14:00Z) are ordered by slug
    slugs = [r["slug"] for r in json.loads(files["index.json"])["releases"]]
    assert slugs == ["tide-gauge-network", "abidjan-digue", "water-quality-report"]
