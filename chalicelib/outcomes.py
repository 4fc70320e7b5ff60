"""The receipt each key of a batch gets (published, scheduled, rejected, unpublished)."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from .core.index import Entry
from .core.model import Release
from .errors import FieldError, InvalidRelease, StorageError
from .receipts import (
    Receipt,
)
from .sources import _Wanted
from .state import (
    StaleState,
)

log = logging.getLogger("newsroom.publisher")


class Outcomes:
    """The publisher's outcomes (a part of ``Publisher``; its attributes are set there)."""

    def _receipt(self, source_key: str, wanted: _Wanted) -> Receipt:
        if wanted.status == "rejected":
            return self._rejected(source_key, wanted.error)  # type: ignore[arg-type]
        if wanted.status == "unpublished":
            prev = self._live(source_key)
            return Receipt(
                source_key,
                "unpublished",
                slug=prev.slug if prev else None,
                message="the source file is gone; removed from the site",
            )
        release = wanted.release
        assert release is not None
        if wanted.status == "scheduled":
            return self._scheduled(source_key, release)
        return Receipt(
            source_key,
            "published",
            slug=release.slug,
            url=wanted.entry.url,  # type: ignore[union-attr]
            warnings=self._media_warnings(release),
            message="live on the site",
        )

    def _scheduled(self, source_key: str, release: Release) -> Receipt:
        instant = release.publication_instant
        live = self._live(source_key)
        message = f"not public until {instant.isoformat()}; nothing of it is public yet"
        if live is not None:
            message = (
                f"this version is public at {instant.isoformat()}; until then the live "
                f"version stays at {live.url}"
            )
        warnings: list[FieldError] = []
        holder = self._holder(release.slug)
        if holder is not None and holder != source_key:
            warnings.append(
                FieldError(
                    "slug",
                    f"slug {release.slug!r} is held by {holder}; unless that file is deleted "
                    "before the instant, this release will be rejected then",
                )
            )
        preview = None
        if self.previews is not None:
            try:
                versions = self.versions.lookup(source_key, release)
                preview = self.previews.put(source_key, release, instant, versions)
            except StorageError as exc:
                warnings.append(FieldError("(preview)", f"no preview this time ({exc})"))
        return Receipt(
            source_key,
            "scheduled",
            slug=release.slug,
            url=self.settings.site_url + release.url_path,
            embargo_until=release.embargo_until,
            publish_at=instant,
            preview_url=preview,
            warnings=warnings,
            message=message,
        )

    def _rejected(self, source_key: str, exc: InvalidRelease, slug: str | None = None) -> Receipt:
        message = "not published; fix the errors and upload again"
        # the index this batch just read (a rejection is decided after reading it)
        live = self._live(source_key)
        if live is not None:
            message += f"; the previously published version stays live at {live.url}"
        return Receipt(source_key, "rejected", slug=slug, errors=exc.errors, message=message)

    def _media_warnings(self, release: Release) -> list[FieldError]:
        urls: list[tuple[str, str]] = []
        if release.image is not None:
            urls.append(("image.url", release.image.url))
        urls.extend((f"attachments.{i}.url", a.url) for i, a in enumerate(release.attachments))
        keys = {url: unquote(url.split("?")[0].split("#")[0].lstrip("/")) for _loc, url in urls}
        # HEADs, not GETs (media files can be large), at once; none for a
        # file this batch looked up already
        self.pool.run(self._media_lookups(k for u, k in keys.items() if u.startswith("/media/")))
        warnings = []
        for loc, url in urls:
            if url.startswith("/media/") and not self._media_seen[keys[url]]:
                warnings.append(
                    FieldError(
                        loc, f"{url} does not exist yet; upload it to media/ in the source bucket"
                    )
                )
        return warnings

    def _live(self, source_key: str) -> Entry | None:
        """The committed entry of ``source_key``, as this batch last read the state."""
        try:
            if self._read_state is not None:
                return self._read_state.entry_of(source_key)
        except StaleState:
            pass  # replaced by a commit since: read again
        return self.read_state().entry_of(source_key)

    def _holder(self, slug: str) -> str | None:
        try:
            if self._read_state is not None:
                return self._read_state.holder(slug)
        except StaleState:
            pass
        return self.read_state().holder(slug)
