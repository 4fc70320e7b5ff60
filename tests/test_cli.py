"""`newsroom validate` and `newsroom build`: the same parser and renderer as the Lambda."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from support import SAMPLES, dumps, make_release, public_samples

ROOT = Path(__file__).resolve().parent.parent


def newsroom(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsroom.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_help_works_on_every_command() -> None:
    out = newsroom("--help")
    assert out.returncode == 0
    for cmd in ["validate", "build"]:
        assert cmd in out.stdout
        assert newsroom(cmd, "--help").returncode == 0


def test_validate_accepts_the_samples() -> None:
    out = newsroom("validate", *[str(p) for p in sorted(SAMPLES.glob("*.json"))])
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "ok" in out.stdout


def test_validate_reports_file_loc_message_on_stderr(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(dumps(make_release()))
    bad = tmp_path / "bad.json"
    bad.write_bytes(
        dumps(make_release(image={"url": "javascript:x"}, published_at="2018-12-19T10:00:00"))
    )
    out = newsroom("validate", str(good), str(bad))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert f"{bad}: image.url: must start with https://" in out.stderr
    assert any(line.startswith(f"{bad}: image.alt: ") for line in lines)
    assert any(line.startswith(f"{bad}: published_at: ") for line in lines)
    assert str(good) not in out.stderr


def test_validate_reports_unreadable_and_broken_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{")
    out = newsroom("validate", str(broken), str(tmp_path / "missing.json"))
    assert out.returncode == 1
    assert f"{broken}: (file): is not valid JSON" in out.stderr
    assert "missing.json: (file): cannot be read" in out.stderr


def test_build_renders_the_full_tree_and_skips_invalid_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SAMPLES, src)
    (src / "broken.json").write_bytes(dumps(make_release(kind="blog")))
    out_dir = tmp_path / "out"
    out = newsroom(
        "build", str(src), "--out", str(out_dir), "--site-url", "https://news.example.org"
    )
    assert out.returncode == 1
    problems = [line for line in out.stderr.splitlines() if "warning: " not in line]
    assert problems == [
        f"{src / 'broken.json'}: kind: must be one of: press-release, report, statement, campaign-update, victory"
    ]
    index = json.loads((out_dir / "index.json").read_text())
    slugs = [r["slug"] for r in index["releases"]]
    assert len(slugs) == len(public_samples(datetime.now(UTC)))
    for name in [
        "index.html",
        "feed.xml",
        "sitemap.xml",
        "404.html",
        "archive/index.html",
        "topics/index.html",
    ]:
        assert (out_dir / name).is_file(), name
    # every release page is reachable by links from the front page (via the archive)
    front = (out_dir / "index.html").read_text()
    archive = (out_dir / "archive/index.html").read_text()
    reachable = front
    for month in Path(out_dir / "archive").glob("*/*/index.html"):
        # the archive links each year, each year page its months
        year = month.parent.parent
        assert f'href="/{year.relative_to(out_dir).as_posix()}/"' in archive
        year_page = (year / "index.html").read_text()
        assert f'href="/{month.parent.relative_to(out_dir).as_posix()}/"' in year_page
        reachable += month.read_text()
    assert "/archive/" in front
    for slug in slugs:
        assert (out_dir / "releases" / slug / "index.html").is_file()
        assert f'href="/releases/{slug}/"' in reachable
    assert (
        "https://news.example.org/releases/"
        in (out_dir / "sitemaps")
        .joinpath(
            sorted(
                p.name for p in (out_dir / "sitemaps").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].xml")
            )[0]
        )
        .read_text()
    )


def test_build_is_deterministic_and_a_rebuild_writes_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert newsroom("build", str(SAMPLES), "--out", str(a)).returncode == 0
    assert newsroom("build", str(SAMPLES), "--out", str(b), "--workers", "1").returncode == 0
    files_a = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert files_a == files_b
    again = newsroom("build", str(SAMPLES), "--out", str(a))
    assert again.returncode == 0 and " 0 written" in again.stdout
    # the search bundle was kept, not indexed again: what it was made from is
    # private state beside the folder, never in it
    state = json.loads((tmp_path / ".a.newsroom-search.json").read_text())
    assert state and all(set(v) == {"inputs", "files"} for v in state.values())
    assert not any("newsroom-search" in p.name for p in a.rglob("*"))


def test_build_prunes_pages_of_removed_releases(tmp_path: Path) -> None:
    src, out_dir = tmp_path / "src", tmp_path / "out"
    shutil.copytree(SAMPLES, src)
    assert newsroom("build", str(src), "--out", str(out_dir)).returncode == 0
    (src / "rescue-ship-detention.json").unlink()
    assert newsroom("build", str(src), "--out", str(out_dir)).returncode == 0
    assert not (out_dir / "releases" / "rescue-ship-detention").exists()


def test_validate_a_folder_checks_its_json_in_any_case_and_its_releases(tmp_path: Path) -> None:
    (tmp_path / "releases").mkdir()
    (tmp_path / "LOUD.JSON").write_bytes(dumps(make_release(slug="loud")))
    (tmp_path / "releases" / "inner.json").write_bytes(dumps(make_release(slug="inner")))
    (tmp_path / "notes.txt").write_text("not a release")
    out = newsroom("validate", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert f"{tmp_path / 'LOUD.JSON'}: ok" in out.stdout
    # valid, but the source bucket takes only .json: the author learns it now
    assert (
        f"{tmp_path / 'LOUD.JSON'}: (file): warning: uploaded as it is, it is not published: "
        "a release file's name must end in .json (lower case); rename it to LOUD.json"
    ) in out.stderr.splitlines()
    assert f"{tmp_path / 'releases' / 'inner.json'}: ok" in out.stdout
    assert "checked 2 files: 0 problems" in out.stdout
    samples = newsroom("validate", str(ROOT / "samples"))
    assert samples.returncode == 0, samples.stderr
    assert f"checked {len(list(SAMPLES.glob('*.json')))} files" in samples.stdout


def test_validate_fails_when_nothing_was_checked(tmp_path: Path) -> None:
    out = newsroom("validate", str(tmp_path))
    assert out.returncode == 1
    assert out.stderr.strip() == f"{tmp_path}: (file): no release files (*.json) found"


def test_validate_catches_two_files_claiming_one_slug(tmp_path: Path) -> None:
    first = tmp_path / "a.json"
    first.write_bytes(dumps(make_release(slug="same", published_at="2018-01-01T00:00:00Z")))
    second = tmp_path / "b.json"
    second.write_bytes(dumps(make_release(slug="same", published_at="2017-01-01T00:00:00Z")))
    out = newsroom("validate", str(tmp_path))
    assert out.returncode == 1
    # the earliest published keeps the slug, as on the site
    assert out.stderr.strip() == f"{first}: slug: 'same' is already claimed by {second}"
    assert f"{second}: ok" in out.stdout


def test_build_picks_up_upper_case_json_like_validate(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "LOUD.JSON").write_bytes(dumps(make_release(slug="loud")))
    out = newsroom("build", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "releases" / "loud" / "index.html").is_file()
    assert "built 1 release into" in out.stdout  # and no "1 releases"


def test_build_warns_about_a_missing_site_url_and_missing_media(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "media").mkdir(parents=True)
    (src / "media" / "there.jpg").write_bytes(b"\xff\xd8\xff")
    doc = make_release(image={"url": "/media/gone.jpg", "alt": "A photo"})
    doc["body"] = "See [the report](/media/report.pdf) and ![a chart](/media/there.jpg)."
    (src / "r.json").write_bytes(dumps(doc))
    out = newsroom("build", str(src), "--out", str(tmp_path / "out"))
    assert out.returncode == 0
    assert "warning: no --site-url (or NEWSROOM_SITE_URL)" in out.stderr
    assert f"{src / 'r.json'}: image.url: warning: /media/gone.jpg is not in" in out.stderr
    assert f"{src / 'r.json'}: body: warning: /media/report.pdf is not in" in out.stderr
    assert "there.jpg" not in out.stderr
    quiet = newsroom(
        "build", str(src), "--out", str(tmp_path / "o2"), "--site-url", "https://x.example"
    )
    assert "site-url" not in quiet.stderr


def test_build_help_names_the_out_option() -> None:
    out = newsroom("build", "--help")
    assert "--out OUT_DIR" in out.stdout and "Folder to write the site into" in out.stdout
    assert "--site-url" in out.stdout


POISON = [
    "lone-surrogate-body.json",
    "noncharacter-title.json",
    "control-character-topic.json",
    "slug-trailing-newline.json",
    "deep-nesting.json",
    "huge-number.json",
]
ADVERSARIAL = ROOT / "tests" / "adversarial"


def test_validate_names_the_field_of_every_poison_file(tmp_path: Path) -> None:
    paths = [str(ADVERSARIAL / name) for name in POISON]
    out = newsroom("validate", *paths)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    for path, loc in zip(
        paths, ["body", "title", "topics.2", "slug", "(file)", "(file)"], strict=True
    ):
        assert f"{path}: {loc}: " in out.stderr, out.stderr


def test_build_skips_poison_files_and_builds_the_rest(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import feedparser

    src = tmp_path / "src"
    src.mkdir()
    (src / "good.json").write_bytes(dumps(make_release(topics=["Water"])))
    for name in [*POISON, "character-references-body.json"]:
        shutil.copy(ADVERSARIAL / name, src / name)
    out = newsroom("build", str(src), "--out", str(tmp_path / "out"))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    for name in POISON:
        assert f"{src / name}: " in out.stderr
    site = tmp_path / "out"
    assert (site / "releases/good/index.html").is_file()
    assert (site / "releases/character-references-body/index.html").is_file()
    for xml in site.rglob("*.xml"):
        ET.fromstring(xml.read_bytes())
    assert not feedparser.parse((site / "feed.xml").read_bytes()).bozo
    assert "built 2 releases" in out.stdout
