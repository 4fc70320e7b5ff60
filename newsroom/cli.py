"""The ``newsroom`` command: the same services as the Lambda, for people."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from chalicelib.core.index import Index
from chalicelib.core.model import parse_release
from chalicelib.core.render import Renderer
from chalicelib.errors import InvalidRelease
from chalicelib.keys import MEDIA_PREFIX, RELEASES_PREFIX
from chalicelib.media import media_key_problem
from chalicelib.search import records_from_sources
from chalicelib.search import site_files as site_search
from chalicelib.settings import Settings
from chalicelib.storage import LocalStorage

from .build import FolderSink, build_site, file_etags, write_site


def _err(line: str) -> None:
    click.echo(line, err=True)


def _release_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.glob("*.json")))
        else:
            out.append(p)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Newsroom publisher: release JSON in, static newsroom out."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check release files; print FILE: loc: message for each problem (exit 1 if any)."""
    bad = 0
    for path in _release_files(list(files)):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            _err(f"{path}: (file): cannot be read ({exc.strerror})")
            bad += 1
            continue
        try:
            release = parse_release(raw, name=path.name)
        except InvalidRelease as exc:
            bad += 1
            for e in exc.errors:
                _err(f"{path}: {e.loc}: {e.msg}")
            continue
        note = ""
        if release.embargo_until is not None:
            note = f" (embargoed until {release.embargo_until.isoformat()})"
        click.echo(f"{path}: ok: {release.kind_label} {release.url_path}{note}")
    sys.exit(1 if bad else 0)


def _previous_index(out_dir: Path) -> Index | None:
    """The index a previous build left in OUT_DIR, so unchanged releases are
    not rendered again (anything unreadable means a full build)."""
    try:
        return Index.from_bytes((out_dir / "index.json").read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def collect_sources(src: Path) -> list[tuple[str, bytes, Path]]:
    """Release files of a folder: ``SRC/*.json`` or, if it mirrors the bucket,
    ``SRC/releases/*.json``. Keys are ``releases/<name>.json`` as in the bucket."""
    folder = src / "releases" if (src / "releases").is_dir() else src
    return [(RELEASES_PREFIX + p.name, p.read_bytes(), p) for p in sorted(folder.glob("*.json"))]


@main.command()
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--site-url", default=None, help="Absolute base URL (default: NEWSROOM_SITE_URL).")
@click.option("--workers", type=int, default=None, help="Render processes (default: all cores).")
def build(src_dir: Path, out_dir: Path, site_url: str | None, workers: int | None) -> None:
    """Render the whole site from a folder of release JSON into OUT_DIR."""
    settings = Settings.from_env().with_site_url(site_url)
    renderer = Renderer(settings)
    sources = collect_sources(src_dir)
    raws = {key: raw for key, raw, _path in sources}
    paths = {key: path for key, _raw, path in sources}
    # release pages go to the folder as they are rendered (FolderSink), the
    # shared pages and index.json after them (write_site)
    sink = FolderSink(LocalStorage(out_dir), str(out_dir))
    result = build_site(
        [(k, raw) for k, raw, _ in sources],
        renderer,
        now=datetime.now(UTC),
        workers=workers,
        sink=sink,
        previous=_previous_index(out_dir),
        present=lambda key: (out_dir / key).is_file(),
    )
    files = dict(result.files)
    files.update(site_search(records_from_sources(result.index.entries, raws), renderer))
    media = (src_dir / "media") if (src_dir / "media").is_dir() else (src_dir.parent / "media")
    if media.is_dir() and media.resolve() != (out_dir / "media").resolve():
        for p in sorted(media.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                key = MEDIA_PREFIX + p.relative_to(media).as_posix()
                if problem := media_key_problem(key):  # same allow-list as sync_media
                    _err(f"{p}: (file): {problem}; not copied")
                    continue
                files[key] = p.read_bytes()
    untouched = set(result.streamed) | set(result.reused)
    existing = file_etags(str(out_dir), skip=untouched)
    # prune only a folder that already holds a newsroom build
    prune = "index.json" in existing
    stats = write_site(
        files, LocalStorage(out_dir), existing=existing, prune=prune, keep=untouched.__contains__
    )
    stats.unchanged += len(result.reused)
    stats.written[:0] = sink.stats.written
    stats.unchanged += sink.stats.unchanged
    for problem in result.problems:
        _err(
            f"{paths.get(problem.source, problem.source)}: {problem.error.loc}: {problem.error.msg}"
        )
    for s in result.scheduled:
        click.echo(
            f"{paths.get(s.source_key, s.source_key)}: scheduled: embargoed until {s.embargo_until.isoformat()}"
        )
    click.echo(
        f"built {len(result.index.entries)} releases into {out_dir}: "
        f"{len(stats.written)} written, {stats.unchanged} unchanged, {len(stats.deleted)} removed"
        + (
            f"; {len({p.source for p in result.problems})} file(s) skipped"
            if result.problems
            else ""
        )
    )
    sys.exit(1 if result.problems else 0)


main.add_command(__import__("newsroom.demo", fromlist=["command"]).command)
main.add_command(__import__("newsroom.cli_schedule", fromlist=["schedule"]).schedule)
main.add_command(__import__("newsroom.ops", fromlist=["rebuild"]).rebuild)
main.add_command(__import__("newsroom.ops", fromlist=["publish"]).publish)

if __name__ == "__main__":  # pragma: no cover
    main()
main.add_command(__import__("newsroom.alerts_cli", fromlist=["subscribers"]).subscribers)
main.add_command(__import__("newsroom.alerts_cli", fromlist=["api_throttling"]).api_throttling)
