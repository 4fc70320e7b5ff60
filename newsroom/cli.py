"""The ``newsroom`` command: the same services as the Lambda, for people."""

from __future__ import annotations

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


def _release_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.glob("*.json")))
        else:
            out.append(p)
    return out


class _LazyGroup(click.Group):
    """Subcommands defined in other modules, imported only when used (or listed)."""

    LAZY = {
        "demo": "newsroom.demo:command",
        "schedule": "newsroom.cli_schedule:schedule",
        "rebuild": "newsroom.ops:rebuild",
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
    """Check release files; print FILE: loc: message for each problem (exit 1 if any)."""
    from chalicelib.core.model import parse_release
    from chalicelib.errors import InvalidRelease

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
        click.echo(f"{path}: ok: {release.kind_label} /releases/{release.slug}/{note}")
    sys.exit(1 if bad else 0)


def _previous_index(out_dir: Path) -> Index | None:
    """The index a previous build left in OUT_DIR, so unchanged releases are
    not rendered again (anything unreadable means a full build)."""
    from chalicelib.core.index import Index

    try:
        return Index.from_bytes((out_dir / "index.json").read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


@main.command()
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--site-url", default=None, help="Absolute base URL (default: NEWSROOM_SITE_URL).")
@click.option("--workers", type=int, default=None, help="Render processes (default: all cores).")
def build(src_dir: Path, out_dir: Path, site_url: str | None, workers: int | None) -> None:
    """Render the whole site from a folder of release JSON into OUT_DIR."""
    from chalicelib.core.render import Renderer
    from chalicelib.keys import MEDIA_PREFIX, RELEASES_PREFIX
    from chalicelib.media import media_key_problem
    from chalicelib.settings import Settings

    from .build import build_folder

    settings = Settings.from_env().with_site_url(site_url)
    renderer = Renderer(settings)
    folder = src_dir / "releases" if (src_dir / "releases").is_dir() else src_dir
    # names only: each worker reads the files it renders
    names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json") and e.is_file())
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
    )
    for problem in result.problems:
        _err(
            f"{paths.get(problem.source, problem.source)}: {problem.error.loc}: {problem.error.msg}"
        )
    for s in sorted(result.scheduled, key=lambda s: s.source_key):
        click.echo(
            f"{paths.get(s.source_key, s.source_key)}: scheduled: not public until {s.embargo_until.isoformat()}"
        )
    click.echo(
        f"built {len(result.index.entries)} releases into {out_dir}: "
        f"{result.written} written, {result.unchanged} unchanged, {len(result.removed)} removed"
        + (
            f"; {len({p.source for p in result.problems})} file(s) skipped"
            if result.problems
            else ""
        )
    )
    sys.exit(1 if result.problems else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
