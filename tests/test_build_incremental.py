"""An incremental `newsroom build` (into a folder a build already filled) gives
exactly the site a full build gives, while skipping unchanged releases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from support import SAMPLES, dumps, make_release, public_samples

ROOT = Path(__file__).resolve().parent.parent


def build(src: Path, out: Path, *extra: str) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsroom.cli",
            "build",
            str(src),
            "--out",
            str(out),
            "--workers",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_incremental_build_equals_a_full_build_after_edits(tmp_path: Path) -> None:
    src, inc, full = tmp_path / "src", tmp_path / "inc", tmp_path / "full"
    shutil.copytree(SAMPLES, src)
    build(src, inc)
    # an edit, a deletion, a new release, a slug change and a new contender for a held slug
    doc = json.loads((src / "coastal-clinics-reopen.json").read_text())
    doc["title"] = "Clinics reopen: corrected figures"
    (src / "coastal-clinics-reopen.json").write_text(json.dumps(doc))
    (src / "rescue-ship-detention.json").unlink()
    (src / "brand-new.json").write_bytes(dumps(make_release(published_at="2026-09-01T10:00:00Z")))
    moved = json.loads((src / "tides-of-displacement.json").read_text())
    moved["slug"] = "tides-report"
    (src / "tides-of-displacement.json").write_text(json.dumps(moved))
    (src / "aaa-early-claim.json").write_bytes(
        dumps(make_release(slug="youth-climate-delegation", published_at="2001-01-01T00:00:00Z"))
    )
    out = build(src, inc)
    assert "unchanged" in out
    build(src, full)
    assert tree(inc) == tree(full)
    assert not (inc / "releases" / "rescue-ship-detention").exists()
    assert b"corrected figures" in (inc / "archive" / "2025" / "03" / "index.html").read_bytes()


def test_a_no_op_build_reuses_every_page_and_writes_nothing(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(SAMPLES, out_dir)
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()}
    out = build(SAMPLES, out_dir)
    assert " 0 written" in out and " 0 removed" in out
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()} == before


def test_a_missing_page_is_rendered_again(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(SAMPLES, out_dir)
    page = out_dir / "releases" / "coastal-clinics-reopen" / "index.html"
    good = page.read_bytes()
    page.unlink()
    build(SAMPLES, out_dir)
    assert page.read_bytes() == good


def test_a_theme_change_renders_everything_again(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(SAMPLES, out_dir, "--site-url", "https://a.example")
    build(SAMPLES, out_dir, "--site-url", "https://b.example")
    fresh = tmp_path / "fresh"
    build(SAMPLES, fresh, "--site-url", "https://b.example")
    assert tree(out_dir) == tree(fresh)
    assert b"https://a.example" not in (out_dir / "index.json").read_bytes()


def test_unchanged_sources_are_neither_parsed_nor_rendered() -> None:
    from datetime import datetime, timezone

    from chalicelib.core.render import Renderer
    from chalicelib.settings import Settings
    from newsroom.build import build_site

    renderer = Renderer(Settings(site_url="https://n.example"))
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    sources = [(f"releases/{p.name}", p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]
    first = build_site(sources, renderer, now=now)
    edited = [
        (k, raw.replace(b'"title": "', b'"title": "Edited: ', 1) if i == 0 else raw)
        for i, (k, raw) in enumerate(sources)
    ]
    again = build_site(edited, renderer, now=now, previous=first.index, present=lambda key: True)
    full = build_site(edited, renderer, now=now)
    assert again.index.to_bytes() == full.index.to_bytes()
    edited_page = f"releases/{first.index.by_source(sources[0][0]).slug}/index.html"
    reused_pages = [k for k in again.reused if k.startswith("releases/")]
    assert len(reused_pages) == len(public_samples(now)) - 1 and edited_page not in reused_pages
    assert edited_page in again.files
    for key, body in again.files.items():
        assert full.files[key] == body, key
    assert set(again.files) | set(again.reused) == set(full.files)
