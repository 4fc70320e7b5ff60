"""The ``newsroom`` command: the same services as the Lambda, for people."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from chalicelib.core.index import Index

# Commands import what they need when they run: ``newsroom build`` starts in
# the time Python and the renderer's own imports take, nothing more.


def _err(line: str) -> None:
    click.echo(line, err=True)


def json_files(folder: Path) -> list[Path]:
    """Release files of a folder: every ``*.json`` in any case (``UPPER.JSON`` too),
    hidden files left out."""
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


class _LazyGroup(click.Group):
    """Subcommands defined in other modules, imported only when used (or listed)."""

    LAZY = {
        "demo": "newsroom.demo:command",
        "schedule": "newsroom.cli_schedule:schedule",
        "rebuild": "newsroom.rebuild:rebuild",
        "search-corpus": "newsroom.search_cli:search_corpus",
        "publish": "newsroom.ops:publish",
        "subscribers": "newsroom.alerts_cli:subscribers",
        "api-throttling": "newsroom.alerts_cli:api_throttling",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            module, attr = self.LAZY[cmd_name].split(":")
            self.add_command(getattr(__import__(module, fromlist=[attr]), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    from chalicelib.core.model import Release, parse_release
    from chalicelib.errors import InvalidRelease
    from chalicelib.keys import RELEASES_PREFIX
    from chalicelib.receipts import misnamed_release

    bad = 0
    paths = _release_files(list(files))
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
        if advice := misnamed_release(RELEASES_PREFIX + path.name):
            # valid here (a folder's *.JSON builds), but the bucket would refuse it
            _err(f"{path}: (file): warning: uploaded as it is, it {advice}")
    # as the publisher decides: the earliest published keeps a contested slug
    holders: dict[str, Path] = {}
    for path, release in sorted(valid, key=lambda v: (v[1].published_at.timestamp(), str(v[0]))):
        if release.slug in holders:
            bad += 1
            _err(f"{path}: slug: {release.slug!r} is already claimed by {holders[release.slug]}")
            continue
        holders[release.slug] = path
    for path, release in valid:
        if holders.get(release.slug) != path:
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


def build_state_path(out_dir: Path) -> Path:
    """Where a build keeps its private index (source keys and digests of every
    entry): beside OUT_DIR, never in it, since the public tree must not carry
    private state and must be the same tree the Lambda path gives."""
    out = out_dir.resolve()
    return out.parent / f".{out.name}.newsroom-build.json"


def search_state_path(out_dir: Path) -> Path:
    """Where a build keeps the digests of its search bundle's pieces (what
    each was indexed from, and the files it left), beside OUT_DIR as the index
    is: the next build keeps a piece whose both still hold."""
    out = out_dir.resolve()
    return out.parent / f".{out.name}.newsroom-search.json"


def _previous_search(out_dir: Path) -> dict[str, Any] | None:
    if not (out_dir / "index.json").is_file():
        return None
    try:
        state = json.loads(search_state_path(out_dir).read_bytes())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _previous_index(out_dir: Path) -> Index | None:
    """The index a previous build of OUT_DIR left, so unchanged releases are
    not rendered again (anything unreadable, or no such build, means a full build)."""
    if not (out_dir / "index.json").is_file():
        return None
    from chalicelib.core.index import Index

    try:
        return Index.from_bytes(build_state_path(out_dir).read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_templates(renderer: Any) -> None:
    """Keep the compiled templates between runs (Jinja's bytecode cache, keyed
    by each template's source), so a build does not compile them again: about
    60 ms of a small build's start. Without a writable cache folder, none."""
    from jinja2 import FileSystemBytecodeCache

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "newsroom", "templates")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK):
        renderer.env.bytecode_cache = FileSystemBytecodeCache(folder)


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
@click.option(
    "--no-search",
    is_flag=True,
    help="Leave out the search page and its index (a quicker build of a site without search).",
)
def build(
    src_dir: Path, out_dir: Path, site_url: str | None, workers: int | None, no_search: bool
) -> None:
    """Render the whole site from SRC_DIR into the --out folder.

    SRC_DIR holds release JSON (or a releases/ folder of it), with its media/
    beside it if present. Invalid files are reported as FILE: loc: message and
    skipped (exit 1).
    """
    from chalicelib.core.render import Renderer
    from chalicelib.keys import MEDIA_PREFIX, RELEASES_PREFIX
    from chalicelib.media import media_key_problem
    from chalicelib.settings import Settings

    from .build import build_folder

    settings = Settings.from_env().with_site_url(site_url)
    if not site_url and not os.environ.get("NEWSROOM_SITE_URL", "").strip():
        _err(
            f"warning: no --site-url (or NEWSROOM_SITE_URL): canonical links, feeds and "
            f"sitemaps will point at {settings.site_url}"
        )
    renderer = Renderer(settings)
    _cache_templates(renderer)
    folder = src_dir / "releases" if (src_dir / "releases").is_dir() else src_dir
    # names only: each worker reads the files it renders
    names = sorted(
        e.name
        for e in os.scandir(folder)
        if e.name.lower().endswith(".json") and not e.name.startswith(".") and e.is_file()
    )
    files = [(RELEASES_PREFIX + name, os.path.join(folder, name)) for name in names]
    paths = dict(files)
    media_dir = (src_dir / "media") if (src_dir / "media").is_dir() else (src_dir.parent / "media")
    media: list[tuple[str, str]] = []
    if media_dir.is_dir() and media_dir.resolve() != (out_dir / "media").resolve():
        for p in sorted(media_dir.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                key = MEDIA_PREFIX + p.relative_to(media_dir).as_posix()
                if problem := media_key_problem(key):  # same allow-list as the publisher
                    _err(f"{p}: (file): {problem}; not copied")
                    continue
                media.append((key, str(p)))
    result = build_folder(
        files,
        renderer,
        str(out_dir),
        now=datetime.now(UTC),
        workers=workers,
        previous=_previous_index(out_dir),
        media=media,
        search=not no_search,
        previous_search=_previous_search(out_dir),
    )
    build_state_path(out_dir).write_bytes(result.index.to_bytes())
    search_state_path(out_dir).write_text(json.dumps(result.search_state, sort_keys=True))
    for problem in result.problems:
        _err(
            f"{paths.get(problem.source, problem.source)}: {problem.error.loc}: {problem.error.msg}"
        )
    for s in sorted(result.scheduled, key=lambda s: s.source_key):
        click.echo(
            f"{paths.get(s.source_key, s.source_key)}: scheduled: not public until {s.embargo_until.isoformat()}"
        )
    # only the sources whose entry names media are read again
    _warn_missing_media(paths, {e.source_key for e in result.index.entries if e.media}, media_dir)
    skipped = len({p.source for p in result.problems})
    click.echo(
        f"built {_plural(len(result.index.entries), 'release')} into {out_dir}: "
        f"{result.written} written, {result.unchanged} unchanged, {len(result.removed)} removed"
        + (f"; {_plural(skipped, 'file')} skipped" if skipped else "")
    )
    sys.exit(1 if result.problems else 0)


def media_references(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(loc, /media/path)`` for every site media path a release document points
    at: its image, its attachments, and links or images in its body."""
    from chalicelib.core.references import body_media_paths

    refs = []
    image = doc.get("image")
    if isinstance(image, dict) and str(image.get("url", "")).startswith("/media/"):
        refs.append(("image.url", image["url"]))
    for i, a in enumerate(doc.get("attachments") or []):
        if isinstance(a, dict) and str(a.get("url", "")).startswith("/media/"):
            refs.append((f"attachments.{i}.url", a["url"]))
    refs += [("body", p) for p in body_media_paths(str(doc.get("body", "")))]
    return refs


def _warn_missing_media(paths: dict[str, str], live: set[str], media: Path) -> None:
    """A live release pointing at a /media/ file the media folder does not hold
    would show a broken image or link: say so (the build still succeeds)."""
    from chalicelib.core.references import media_source_key
    from chalicelib.keys import MEDIA_PREFIX

    missing = 0
    for key in sorted(live):
        path = paths.get(key)
        if path is None:
            continue
        try:
            raw = Path(path).read_bytes()
            # a string holding "/media/" is written with "media" in it or
            # with a \u escape: any other file references no media
            if b"media" not in raw and b"\\u" not in raw:
                continue
            doc = json.loads(raw)
        except (OSError, ValueError):
            continue
        for loc, ref in media_references(doc):
            if not media.is_dir():
                missing += 1
            elif (name := media_source_key(ref)) is None or not (
                media / name[len(MEDIA_PREFIX) :]
            ).is_file():
                _err(f"{path}: {loc}: warning: {ref} is not in {media}; the link will be broken")
    if missing:
        _err(
            f"warning: {_plural(missing, 'link')} to /media/ files, but no media folder "
            f"at {media}; those links will be broken"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
