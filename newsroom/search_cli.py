"""``newsroom search-corpus``: fill the search corpus from the source bucket.

The publisher keeps the corpus after each commit; a site that had releases
before search was deployed (or whose corpus was lost) gets it whole here, once.
Every release whose publication instant has passed gets its record;
``update_search`` then indexes the ones the public site lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click


def fill_corpus(client: Any, source_bucket: str, now: datetime) -> tuple[int, list[str]]:
    """(records written, corpus keys written or deleted)."""
    from chalicelib.core.markup import body_html, excerpt_source
    from chalicelib.core.model import parse_release
    from chalicelib.core.text import excerpt
    from chalicelib.errors import InvalidRelease
    from chalicelib.keys import RELEASES_PREFIX, is_release_key
    from chalicelib.search.corpus import SearchCorpus
    from chalicelib.search.records import record
    from chalicelib.storage import S3Storage

    source = S3Storage(client, source_bucket)
    records: dict[str, dict[str, Any]] = {}
    for key in sorted(source.list(RELEASES_PREFIX)):
        obj = source.get(key) if is_release_key(key) else None
        if obj is None:
            continue
        try:
            release = parse_release(obj.body, name=key)
        except InvalidRelease:
            continue  # its receipt says why; nothing public to search
        if release.is_embargoed(now):
            continue
        summary = release.summary or excerpt(
            excerpt_source(body_html(release.body, release.body_format))
        )
        records.setdefault(release.slug, record(release, summary))  # first key holds a slug
    touched = SearchCorpus(source).replace_all(records.values())
    return len(records), touched


@click.command("search-corpus")
@click.option("--source-bucket", default=None, help="Default: NEWSROOM_SOURCE_BUCKET.")
def search_corpus(source_bucket: str | None) -> None:
    """Write the search corpus (search/<yyyy>-<mm>.json) from every public release."""
    from chalicelib.service import s3_client, settings

    bucket = source_bucket or settings().source_bucket
    if not bucket:
        raise click.UsageError(
            "no source bucket: pass --source-bucket or set NEWSROOM_SOURCE_BUCKET"
        )
    count, touched = fill_corpus(s3_client(), bucket, datetime.now(UTC))
    click.echo(f"search corpus: {count} releases, {len(touched)} month files written or removed")
    click.echo("update_search indexes them on its next run (within 5 minutes)")
