"""CloudFront invalidation of a batch's changed paths, retried in place; a
lasting failure is recorded for the sweep to send again.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Protocol

from .errors import FieldError, StorageError
from .keys import (
    INVALIDATIONS_PREFIX,
    PRIVATE_CACHE,
)
from .receipts import (
    Receipt,
)

log = logging.getLogger("newsroom.publisher")


class Invalidator(Protocol):
    def invalidate(self, paths: list[str]) -> None: ...


class Invalidation:
    """The publisher's invalidation (a part of ``Publisher``; its attributes are set there)."""

    def _invalidate(self, keys: list[str], paths: list[str], receipts: list[Receipt]) -> None:
        """Refresh CloudFront, retried in place: a retry of the batch would find
        the site already converged and so would not know which paths to refresh.
        A lasting failure becomes a receipt warning and an error log line."""
        for attempt in range(1, 4):
            try:
                self.invalidator.invalidate(paths)  # type: ignore[union-attr]
                return
            except StorageError as exc:
                if attempt < 3:
                    self._pause(attempt + 3)
                    continue
                for key in keys:
                    log.error(
                        "invalidation_failed",
                        extra={
                            "source_key": key,
                            "paths": paths,
                            "error": str(exc),
                        },
                    )
                self.source.put(
                    f"{INVALIDATIONS_PREFIX}{uuid.uuid4().hex}.json",
                    json.dumps({"paths": paths}).encode(),
                    content_type="application/json",
                    cache_control=PRIVATE_CACHE,
                )  # the sweep sends it again
                for receipt in receipts:
                    receipt.warnings.append(
                        FieldError(
                            "(site)",
                            "the pages are updated, but CloudFront could not be told to refresh "
                            f"them ({exc}); cached copies may show for up to an hour — run "
                            "`newsroom rebuild` or invalidate the paths listed in `changed`",
                        )
                    )
