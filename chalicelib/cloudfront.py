"""CloudFront invalidation adapter: one request per publish, exactly the changed paths."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .errors import TransientStorageError

MAX_PATHS = 3000  # CloudFront's per-invalidation limit for non-wildcard paths


class CloudFrontInvalidator:
    def __init__(self, client: Any, distribution_id: str) -> None:
        self.client = client
        self.distribution_id = distribution_id
        self.sent: list[list[str]] = []

    def invalidate(self, paths: list[str]) -> None:
        if not paths:
            return
        items = sorted(set(paths)) if len(set(paths)) <= MAX_PATHS else ["/*"]
        try:
            self.client.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(items), "Items": items},
                    "CallerReference": f"newsroom-{int(time.time())}-{uuid.uuid4().hex[:12]}",
                },
            )
        except Exception as exc:
            from botocore.exceptions import BotoCoreError, ClientError

            if isinstance(exc, (ClientError, BotoCoreError)):
                raise TransientStorageError(f"CloudFront invalidation failed: {exc}") from exc
            raise
        self.sent.append(items)
