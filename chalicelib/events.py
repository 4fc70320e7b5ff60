"""S3 event records -> source keys, decoded as S3 encodes them."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus


def s3_keys(event: dict[str, Any]) -> list[str]:
    """Every object key in an S3 notification, URL-decoded (``+`` is a space),
    deduplicated in order. Chalice's ``S3Event`` reads only ``Records[0]``; S3
    may batch, so all records are read here."""
    keys: list[str] = []
    for record in event.get("Records", []):
        raw = record.get("s3", {}).get("object", {}).get("key")
        if raw is None:
            continue
        key = unquote_plus(raw)
        if key not in keys:
            keys.append(key)
    return keys
