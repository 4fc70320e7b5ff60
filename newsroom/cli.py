"""The ``newsroom`` command: the same services as the Lambda, for people."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from chalicelib.core.index import Index
from chalicelib.core.markup import body_html
from chalicelib.core.model import Release, parse_release
from chalicelib.core.render import Renderer
from chalicelib.errors import InvalidRelease
from chalicelib.keys import MEDIA_PREFIX, RELEASES_PREFIX
from chalicelib.media import media_key_problem
from chalicelib.search import records_from_sources
from chalicelib.search import site_files as site_search
from chalicelib.settings import Settings
from chalicelib.storage import LocalStorage

from .build import FolderSink, SiteBuild, build_site, file_etags, write_site


def _err(line: str) -> None:
    click.echo(line, err=True)


def json_files(folder: Path) -> list[Path]:
    """Release files of a folder: every ``*.json`` in any case (``UPPER.JSON`` too),
    hidden files and editor backups left out."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".json" and not p.name.startswith(".")
    )


def _release_files(paths: list[Path]) -> list[Path]:
    """A folder means its ``*.json`` files and those of its ``releases/``."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(json_files(p))
            out.extend(json_files(p / "releases"))
        else:
            out.append(p)
    return out


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Newsroom publisher: release JSON in, static newsroom out."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check release files without publishing anything.

    FILES are release JSON files or folders; a folder means every *.json file
    in it (any case) and in its releases/ folder. Prints one line per valid
    file, and FILE: loc: message on stderr for each problem, including two
    files claiming one slug. Exits 1 if anything is wrong or nothing was checked.
    """
    bad = 0
    paths = _release_files(list(files))
    holders: dict[str, tuple[float, Path]] = {}
    valid: list[tuple[Path, Release]] = []
    for path in paths:
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
        valid.append((path, release))
    # as the publisher decides: the earliest published keeps a contested slug
    for path, release in sorted(valid, key=lambda v: (v[1].published_at.timestamp(), str(v[0]))):
        slug = release.slug
        if slug in holders:
            bad += 1
            _err(f"{path}: slug: {slug!r} is already claimed by {holders[slug][1]}")
            continue
        holders[slug] = (release.published_at.timestamp(), path)
    for path, release in valid:
        if holders.get(release.slug, (0, None))[1] != path:
            continue
        note = ""
        if release.embargo_until is not None:
            note = f" (embargoed until {release.embargo_until.isoformat()})"
        click.echo(f"{path}: ok: {release.kind_label} {release.url_path}{note}")
    if not paths:
        _err(f"{', '.join(map(str, files))}: (file): no release files (*.json) found")
        sys.exit(1)
    click.echo(f"checked {_plural(len(paths), 'file')}: {_plural(bad, 'problem')}")
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
    return [(RELEASES_PREFIX + p.name, p.read_bytes(), p) for p in json_files(folder)]


_MEDIA_LINK = re.compile(r"""(?:href|src)=["'](/media/[^"'#?]+)""")


def media_references(release: Release) -> list[tuple[str, str]]:
    """``(loc, /media/path)`` for every site media path the release points at."""
    refs = []
    if release.image is not None and release.image.url.startswith("/media/"):
        refs.append(("image.url", release.image.url))
    for i, a in enumerate(release.attachments):
        if a.url.startswith("/media/"):
            refs.append((f"attachments.{i}.url", a.url))
    for path in _MEDIA_LINK.findall(body_html(release.body, release.body_format)):
        refs.append(("body", path))
    return refs


@main.command()
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    metavar="OUT_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site into (created if missing; a previous build there is updated).",
)
@click.option(
    "--site-url",
    default=None,
    help="Absolute base URL of the published site, for canonical links, feeds and sitemaps "
    "(default: NEWSROOM_SITE_URL).",
)
@click.option("--workers", type=int, default=None, help="Render processes (default: all cores).")
def build(src_dir: Path, out_dir: Path, site_url: str | None, workers: int | None) -> None:
    """Render the whole site from SRC_DIR into the --out folder.

    SRC_DIR holds release JSON (or a releases/ folder of it), with its media/
    beside it if present. Invalid files are reported as FILE: loc: message and
    skipped (exit 1).
    """
    settings = Settings.from_env().with_site_url(site_url)
    if not site_url and not os.environ.get("NEWSROOM_SITE_URL", "").strip():
        _err(
            f"warning: no --site-url (or NEWSROOM_SITE_URL): canonical links, feeds and "
            f"sitemaps will point at {settings.site_url}"
        )
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
    _warn_missing_media(sources, result, media)
    skipped = len({p.source for p in result.problems})
    click.echo(
        f"built {_plural(len(result.index.entries), 'release')} into {out_dir}: "
        f"{len(stats.written)} written, {stats.unchanged} unchanged, {len(stats.deleted)} removed"
        + (f"; {_plural(skipped, 'file')} skipped" if skipped else "")
    )
    sys.exit(1 if result.problems else 0)


def _warn_missing_media(
    sources: list[tuple[str, bytes, Path]], result: SiteBuild, media: Path
) -> None:
    """A live release pointing at a /media/ file the media folder does not hold
    would show a broken image or link: say so (the build still succeeds)."""
    live = {e.source_key for e in result.index.entries}
    missing = 0
    for key, raw, path in sources:
        if key not in live:
            continue
        try:
            release = parse_release(raw, name=key)
        except InvalidRelease:
            continue
        for loc, ref in media_references(release):
            if not media.is_dir():
                missing += 1
            elif not (media / ref[len("/media/") :]).is_file():
                _err(f"{path}: {loc}: warning: {ref} is not in {media}; the link will be broken")
    if missing:
        _err(
            f"warning: {_plural(missing, 'link')} to /media/ files, but no media folder "
            f"at {media}; those links will be broken"
        )


main.add_command(__import__("newsroom.demo", fromlist=["command"]).command)
main.add_command(__import__("newsroom.cli_schedule", fromlist=["schedule"]).schedule)
main.add_command(__import__("newsroom.ops", fromlist=["rebuild"]).rebuild)
main.add_command(__import__("newsroom.ops", fromlist=["publish"]).publish)

if __name__ == "__main__":  # pragma: no cover
    main()
main.add_command(__import__("newsroom.alerts_cli", fromlist=["subscribers"]).subscribers)
main.add_command(__import__("newsroom.alerts_cli", fromlist=["api_throttling"]).api_throttling)
