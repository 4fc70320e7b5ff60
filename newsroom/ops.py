"""Operator commands over the live buckets: ``newsroom rebuild`` and ``newsroom publish``.

``rebuild`` re-renders the whole public bucket from the source bucket with the
same renderer as the Lambda (``build.build_site``), after a template or
settings change. It writes only objects whose bytes differ from the public
bucket's listing (S3 ETags are the MD5 of single-part uploads), commits
``index.json`` last with ``IfMatch`` on the ETag it read first, and only then
deletes what the site no longer has. If ``index.json`` changed meanwhile (an
upload was processed by ``sync_release``), the whole diff is redone from fresh
state, so a concurrent publish is never overwritten by an older view. One
CloudFront invalidation covers every changed path.

``publish`` is the staff path: validate locally, upload only valid files to
``releases/<name>.json``, then wait for the receipt the Lambda writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from chalicelib.cloudfront import CloudFrontInvalidator
from chalicelib.core.index import Index
from chalicelib.core.model import parse_release
from chalicelib.core.render import Renderer
from chalicelib.errors import ConfigurationError, InvalidRelease, StorageError
from chalicelib.keys import (
    INDEX_KEY,
    MEDIA_PREFIX,
    RELEASES_PREFIX,
    SITE_PREFIXES,
    STATE_KEY,
    invalidation_paths,
    is_release_key,
    put_public,
    receipt_key,
    release_key,
)
from chalicelib.publisher import Invalidator
from chalicelib.receipts import Scheduled, update_schedule
from chalicelib.settings import Settings
from chalicelib.state import Snapshot, StaleState, commit_full_state
from chalicelib.storage import S3Storage, md5_etag
from chalicelib.versions import write_records

from .build import Problem, build_site

# What the site owns in the public bucket: only these are ever pruned. Media
# files and anything ops put there by hand (verification files) stay.
SITE_FILES = frozenset(
    {"index.html", "404.html", "feed.xml", "sitemap.xml", "news-sitemap.xml", INDEX_KEY}
)

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def site_owned(key: str) -> bool:
    return key in SITE_FILES or key.startswith(SITE_PREFIXES)


@dataclass
class RebuildReport:
    releases: int = 0
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    attempts: int = 0
    invalidated: list[str] = field(default_factory=list)
    dry_run: bool = False
    seen: set[str] = field(default_factory=set, repr=False)  # source keys read
    live: set[str] = field(default_factory=set, repr=False)  # source keys on the site

    @property
    def paths(self) -> list[str]:
        out: set[str] = set()
        for key in [*self.written, *self.deleted]:
            out.update(invalidation_paths(key))
        return sorted(out)


class Rebuilder:
    def __init__(
        self,
        source: S3Storage,
        public: S3Storage,
        renderer: Renderer,
        *,
        invalidator: Invalidator | None = None,
        workers: int = 16,
        render_workers: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_attempts: int = 5,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        reuse: bool = True,
    ) -> None:
        self.reuse = reuse  # skip releases whose source and theme are unchanged
        self.source = source
        self.public = public
        self.renderer = renderer
        self.invalidator = invalidator
        self.workers = max(1, workers)
        self.render_workers = render_workers
        self.clock = clock
        self.max_attempts = max_attempts
        self.progress = progress or (lambda phase, done, total: None)
        self.sleep = sleep

    def run(self, *, dry_run: bool = False) -> RebuildReport:
        report = RebuildReport(dry_run=dry_run)
        written: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for attempt in range(1, self.max_attempts + 1):
                report.attempts = attempt
                if self._attempt(pool, report, written, dry_run):
                    break
                self.sleep(min(2.0, 0.2 * attempt))
            else:
                raise StorageError(
                    f"index.json kept changing during {self.max_attempts} attempts; "
                    "uploads are being processed — run the rebuild again",
                    INDEX_KEY,
                )
        report.written = sorted(written)
        if not dry_run:
            self._write_schedule(report.scheduled, report.seen, report.live)
            if self.invalidator is not None and report.paths:
                self.invalidator.invalidate(report.paths)
                report.invalidated = report.paths
        return report

    # One attempt: read, render, diff, write, commit, prune ------------------------
    def _attempt(
        self, pool: ThreadPoolExecutor, report: RebuildReport, written: set[str], dry_run: bool
    ) -> bool:
        # the committed state first, then the sources: a page published before
        # the listing has its source in the (later) source listing, so it is kept
        snap = Snapshot.read(self.source)
        etag = snap.etag
        try:
            live = snap.index()
        except StaleState:
            return False  # a publish committed while the state was read: read again
        existing = self.public.list_etags()
        listing = self.source.list_etags(RELEASES_PREFIX)
        keys = [k for k in listing if is_release_key(k)]
        unchanged = self._unchanged(live, listing, existing, written) if self.reuse else set()
        sources = self._download(pool, [k for k in keys if k not in unchanged])
        report.seen = set(keys)  # a key deleted since the listing leaves the schedule

        result = build_site(
            sources,
            self.renderer,
            now=self.clock(),
            workers=self.render_workers,
            current=live,
            previous=live if self.reuse else None,
            # an object an earlier attempt wrote may hold that attempt's state
            present=lambda key: key in existing and key not in written,
            listed=sorted(unchanged),
        )
        files = result.files
        report.releases = len(result.index.entries)
        report.live = {e.source_key for e in result.index.entries}
        report.problems = result.problems
        report.scheduled = result.scheduled
        report.kept = result.kept
        # what the listeners are still owed survives the rebuild
        state = replace(result.index, announce=live.announce)
        changed = [
            k for k in sorted(files) if k != INDEX_KEY and existing.get(k) != md5_etag(files[k])
        ]
        index_changed = INDEX_KEY in files and existing.get(INDEX_KEY) != md5_etag(
            files[INDEX_KEY]
        )
        state_changed = etag is None or (live.entries, live.withdrawing, live.theme) != (
            state.entries,
            state.withdrawing,
            state.theme,
        )
        keep = set(result.kept) | set(result.reused)
        stale = sorted(
            k
            for k in existing
            if k not in files and k not in keep and site_owned(k) and not k.startswith(MEDIA_PREFIX)
        )
        report.unchanged = (
            len(files) - len(changed) - (1 if index_changed else 0) + len(result.reused)
        )
        if dry_run:
            written.update(changed + ([INDEX_KEY] if index_changed else []))
            report.deleted = stale
            return True

        self._write(pool, files, changed)
        written.update(changed)
        if index_changed:  # after the pages it lists
            put_public(self.public, INDEX_KEY, files[INDEX_KEY])
            written.add(INDEX_KEY)
        if changed or index_changed or state_changed:
            # the commit point: fails if a publish committed since our read
            committed = commit_full_state(self.source, state, etag, previous=snap)
            if committed is None:
                return False
        elif stale:
            # nothing to write, but deletions must still follow the live index
            latest = self.source.get(STATE_KEY)
            if (latest.etag if latest else None) != etag:
                return False
        self._delete(pool, stale)
        report.deleted = sorted(set(report.deleted) | set(stale))
        # the publisher's records of language versions follow the rebuilt pages
        write_records(self.source, result.index.entries, self.renderer.settings.site_url)
        return True

    def _unchanged(
        self, live: Index, listing: dict[str, str], existing: dict[str, str], written: set[str]
    ) -> set[str]:
        """Sources whose listed ETag is the digest their live entry was built from
        (S3's ETag of a single-part upload is the MD5 of its bytes): with the same
        theme and the page in place, they need not even be downloaded."""
        if live.theme != self.renderer.theme:
            return set()
        out = set()
        for entry in live.entries:
            page = release_key(entry.slug)
            etag = listing.get(entry.source_key, "").strip('"')
            if (
                entry.source_digest
                and not entry.translation_key  # its page links to versions that may change
                and etag == entry.source_digest
                and page in existing
                and page not in written
            ):
                out.add(entry.source_key)
        return out

    def _download(self, pool: ThreadPoolExecutor, keys: list[str]) -> list[tuple[str, bytes]]:
        out: dict[str, bytes] = {}
        futures = {pool.submit(self.source.get, k): k for k in keys}
        self.progress("download", 0, len(keys))
        for n, fut in enumerate(as_completed(futures), 1):
            obj = fut.result()
            if obj is not None:  # deleted since the listing: it is simply gone
                out[futures[fut]] = obj.body
            self.progress("download", n, len(keys))
        return sorted(out.items())

    def _write(self, pool: ThreadPoolExecutor, files: dict[str, bytes], keys: list[str]) -> None:
        def put(key: str) -> None:
            put_public(self.public, key, files[key])

        if not keys:
            return
        self.progress("write", 0, len(keys))
        futures = [pool.submit(put, k) for k in keys]
        for n, fut in enumerate(as_completed(futures), 1):
            fut.result()
            self.progress("write", n, len(keys))

    def _delete(self, pool: ThreadPoolExecutor, keys: list[str]) -> None:
        for fut in [pool.submit(self.public.delete, k) for k in keys]:
            fut.result()

    def _write_schedule(self, scheduled: list[Scheduled], seen: set[str], live: set[str]) -> None:
        """The schedule for the sources this rebuild read. Entries for keys it did
        not see (uploaded since its listing) stay as the publisher wrote them, and
        so do entries whose embargo ran out and that this rebuild put live: the
        next ``publish_due_releases`` run still writes their ``published`` receipt."""
        now = self.clock()
        mine = {s.source_key for s in scheduled}

        def keep(s: Scheduled) -> bool:
            if s.source_key in mine:
                return False
            return s.source_key not in seen or (s.source_key in live and s.embargo_until <= now)

        update_schedule(
            self.source,
            lambda items: [s for s in items if keep(s)] + scheduled,
            attempts=self.max_attempts,
        )


# newsroom publish ---------------------------------------------------------------------
def upload_release(storage: S3Storage, name: str, body: bytes) -> tuple[str, str | None]:
    """Upload ``body`` as ``releases/<name>``; return the key and the ETag its
    receipt had before (so the new receipt can be told apart)."""
    key = RELEASES_PREFIX + name
    before = storage.get(receipt_key(key))
    storage.put(key, body, content_type="application/json", cache_control="no-store")
    return key, before.etag if before else None


def wait_for_receipt(
    storage: S3Storage,
    key: str,
    previous_etag: str | None,
    *,
    timeout: float,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Poll ``receipts/<key>`` until a receipt newer than the upload appears."""
    deadline = monotonic() + timeout
    while True:
        found = storage.get(receipt_key(key))
        if found is not None and found.etag != previous_etag:
            return json.loads(found.body)
        if monotonic() >= deadline:
            return None
        sleep(max(0.0, min(interval, deadline - monotonic())))


# The commands ---------------------------------------------------------------------
def _s3_client() -> Any:
    from chalicelib.service import s3_client

    return s3_client()


def _cloudfront_client() -> Any:
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_CLOUDFRONT") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.session.Session().client(
        "cloudfront", endpoint_url=endpoint or None, region_name="us-east-1"
    )


class _Bars:
    """One click progress bar per phase, on stdout."""

    LABELS = {"download": "reading sources ", "write": "writing objects "}

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar: Any = None
        self.done = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase or done == 0:
            self.close()
            self.phase = phase
            self.done = 0
            self.bar = click.progressbar(
                length=max(total, 1), label=self.LABELS.get(phase, phase), file=sys.stdout
            )
            self.bar.__enter__()
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command()
@click.option("--source-bucket", default=None, help="Default: NEWSROOM_SOURCE_BUCKET.")
@click.option("--public-bucket", default=None, help="Default: NEWSROOM_PUBLIC_BUCKET.")
@click.option("--site-url", default=None, help="Absolute base URL (default: NEWSROOM_SITE_URL).")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=16, show_default=True,
    help="Parallel S3 requests.",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option(
    "--full", is_flag=True,
    help="Render every release again, even those whose source and theme are unchanged "
    "(to repair objects changed by hand in the bucket).",
)  # fmt: skip
def rebuild(
    source_bucket: str | None,
    public_bucket: str | None,
    site_url: str | None,
    workers: int,
    dry_run: bool,
    full: bool,
) -> None:
    """Re-render the whole public bucket from the source bucket (after a template
    or settings change). Writes only objects whose bytes changed, then sends one
    CloudFront invalidation (when NEWSROOM_DISTRIBUTION_ID is set). Safe while
    uploads are being processed."""
    settings = Settings.from_env().with_site_url(site_url)
    settings = replace(
        settings,
        source_bucket=source_bucket or settings.source_bucket,
        public_bucket=public_bucket or settings.public_bucket,
    )
    try:
        settings.require_buckets()
    except ConfigurationError as exc:
        raise click.UsageError(f"{exc} (or pass --source-bucket / --public-bucket)") from None
    client = _s3_client()
    invalidator = None
    if settings.distribution_id:
        invalidator = CloudFrontInvalidator(_cloudfront_client(), settings.distribution_id)
    bars = _Bars()
    rebuilder = Rebuilder(
        S3Storage(client, settings.source_bucket),
        S3Storage(client, settings.public_bucket),
        Renderer(settings),
        invalidator=invalidator,
        workers=workers,
        progress=bars,
        reuse=not full,
    )
    try:
        report = rebuilder.run(dry_run=dry_run)
    except StorageError as exc:
        bars.close()
        raise click.ClickException(str(exc)) from None
    bars.close()
    _print_rebuild(report, settings.distribution_id)
    sys.exit(1 if report.problems else 0)


def _print_rebuild(report: RebuildReport, distribution_id: str) -> None:
    verb = "would write" if report.dry_run else "written"
    gone = "would remove" if report.dry_run else "removed"
    for s in report.scheduled:
        click.echo(f"{s.source_key}: scheduled: embargoed until {s.embargo_until.isoformat()}")
    for key in report.kept:
        click.echo(
            f"{key}: kept as published: its source is invalid now, so the last good "
            "version stays live (not re-rendered)"
        )
    click.echo(
        f"{report.releases} releases: {len(report.written)} {verb}, {report.unchanged} unchanged, "
        f"{len(report.deleted)} {gone}"
        + (f" ({report.attempts} attempts: uploads were processed meanwhile)" if report.attempts > 1 else "")
    )  # fmt: skip
    if report.invalidated:
        click.echo(f"CloudFront {distribution_id}: invalidated {len(report.invalidated)} paths")
    elif not report.dry_run and not distribution_id and report.paths:
        click.echo("no NEWSROOM_DISTRIBUTION_ID: no CloudFront invalidation sent")
    for problem in report.problems:
        click.echo(problem.line(), err=True)
    if report.problems:
        click.echo(f"{len({p.source for p in report.problems})} source file(s) rejected", err=True)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--bucket", envvar="NEWSROOM_SOURCE_BUCKET", required=True,
    help="Source bucket (default: NEWSROOM_SOURCE_BUCKET).",
)  # fmt: skip
@click.option(
    "--wait", "wait_s", type=click.FloatRange(0), default=30, show_default=True,
    help="Seconds to wait for each receipt; 0 = upload only.",
)  # fmt: skip
def publish(files: tuple[Path, ...], bucket: str, wait_s: float) -> None:
    """Validate release files locally, upload the valid ones to the source bucket
    and print what the publisher made of each.

    Exit status: 0 all published or scheduled; 1 a file was invalid, refused or
    could not be uploaded; 2 uploaded, but no receipt came within --wait.
    Uses the usual AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...).
    """
    _publish(files, bucket, wait_s)


def _publish(files: tuple[Path, ...], bucket: str, wait_s: float) -> None:
    """Validate release files locally, upload the valid ones to the source bucket
    as releases/<name>.json, and print what the publisher made of each."""
    failed = unknown = False
    valid: list[tuple[Path, str, bytes]] = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            click.echo(f"{path}: (file): cannot be read ({exc.strerror})", err=True)
            failed = True
            continue
        if not is_release_key(RELEASES_PREFIX + path.name):
            click.echo(f"{path}: (file): the file name must end in .json", err=True)
            failed = True
            continue
        try:
            parse_release(raw, name=path.name)
        except InvalidRelease as exc:
            for e in exc.errors:
                click.echo(f"{path}: {e.loc}: {e.msg}", err=True)
            failed = True
            continue
        valid.append((path, path.name, raw))

    if valid and (problem := _credentials_problem()):
        click.echo(f"error: {problem}; nothing was uploaded", err=True)
        sys.exit(1)
    storage = S3Storage(_s3_client(), bucket) if valid else None
    pending: list[tuple[Path, str, str | None]] = []
    for path, name, raw in valid:
        assert storage is not None
        try:
            key, before = upload_release(storage, name, raw)
        except StorageError as exc:
            click.echo(f"{path}: (upload): {_explain(exc, bucket)}", err=True)
            failed = True
            continue
        click.echo(f"{path}: uploaded to s3://{bucket}/{key}")
        pending.append((path, key, before))

    if wait_s > 0 and pending:
        assert storage is not None
        deadline = time.monotonic() + wait_s
        for path, key, before in pending:
            doc = wait_for_receipt(
                storage, key, before, timeout=max(0.0, deadline - time.monotonic())
            )
            if doc is None:
                click.echo(
                    f"{path}: no receipt after {wait_s:g} s: uploaded, but whether it is live "
                    f"is not known. Is the publisher deployed and is this its source bucket? "
                    f"The receipt will appear at s3://{bucket}/{receipt_key(key)}",
                    err=True,
                )
                unknown = True
                continue
            failed |= _print_receipt(path, doc)
    # 1: something was refused or failed; 2: uploaded, outcome unknown
    sys.exit(1 if failed else 2 if unknown else 0)


def _credentials_problem() -> str | None:
    """Why boto3 cannot sign a request here, in words an operator can act on."""
    import boto3

    try:
        found = boto3.session.Session().get_credentials()
    except Exception as exc:  # a broken profile or config file
        return f"AWS credentials could not be loaded ({exc})"
    if found is None:
        return (
            "no AWS credentials found: set AWS_PROFILE (after `aws sso login` or "
            "`aws configure`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return None


def _explain(exc: StorageError, bucket: str) -> str:
    text = str(exc)
    if "AccessDenied" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return f"{text}: these AWS credentials may not write to s3://{bucket}/releases/"
    if "NoSuchBucket" in text:
        return f"{text}: there is no bucket {bucket!r} (check --bucket or NEWSROOM_SOURCE_BUCKET)"
    return text


def _print_receipt(path: Path, doc: dict[str, Any]) -> bool:
    """Print one receipt; True if the release was rejected."""
    status = doc.get("status")
    if status == "published":
        click.echo(f"{path}: published: {doc.get('url')}")
    elif status == "scheduled":
        click.echo(
            f"{path}: scheduled: embargoed until {doc.get('embargo_until')} ({doc.get('url')})"
        )
    elif status == "rejected":
        click.echo(f"{path}: rejected: {doc.get('message', '')}")
        for e in doc.get("errors", []):
            click.echo(f"{path}: {e.get('loc')}: {e.get('msg')}", err=True)
        return True
    else:
        click.echo(f"{path}: {status}: {doc.get('message', '')}")
    for w in doc.get("warnings", []):
        click.echo(f"{path}: warning: {w.get('loc')}: {w.get('msg')}", err=True)
    return False
