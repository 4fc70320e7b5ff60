"""Order and replay of webhook requests, kept per entry.

A CMS may deliver an entry's requests late, out of order or twice, and anyone
who captured a signed request can send it again while its timestamp is fresh.
So for each subject (an entry, or an entry's language version, or a generic
slug) a small record in the source bucket, ``cms/_order/<subject>.json``, keeps
the newest signed instant accepted and the requests accepted at that instant:

- a request older than the newest accepted is ``Stale`` (HTTP 409);
- a request already accepted is ``Stale`` too (a replay);
- a request claimed but not finished (the Lambda died between its writes) may
  run again: the CMS's retry of it completes the job.

``claim`` is the one check-and-record step, a conditional write on the record
(re-read and re-checked when another request changed it meanwhile); ``finish``
marks the request done once its writes are in. Records are never deleted, so a
replayed publish after an unpublish is still refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import keys
from ..errors import NewsroomError
from ..storage import Storage, put_if_unchanged
from .verify import Signed

PREFIX = keys.CMS_PREFIX + "_order/"
ATTEMPTS = 5


class Stale(NewsroomError):
    """The request is older than, or the same as, one already accepted (HTTP 409)."""


class Busy(NewsroomError):
    """The record kept changing under us (HTTP 503: the CMS retries)."""


def record_key(subject: str) -> str:
    return f"{PREFIX}{subject}.json"


@dataclass
class Record:
    newest: int = -1
    done: list[str] = field(default_factory=list)  # accepted at ``newest``
    pending: list[str] = field(default_factory=list)  # claimed at ``newest``, not finished

    @classmethod
    def parse(cls, body: bytes | None) -> Record:
        if body is None:
            return cls()
        try:
            doc: Any = json.loads(body)
            return cls(int(doc["newest"]), list(doc["done"]), list(doc["pending"]))
        except (ValueError, KeyError, TypeError):
            return cls()  # unreadable: start afresh rather than block the entry

    def to_bytes(self) -> bytes:
        doc = {"newest": self.newest, "done": self.done, "pending": self.pending}
        return (json.dumps(doc) + "\n").encode()


def _check(record: Record, signed: Signed) -> None:
    if signed.order < record.newest:
        raise Stale(
            "a newer request for this entry was already accepted; this one is older "
            "(a late delivery or a replay) and changes nothing"
        )
    if signed.order == record.newest and signed.digest in record.done:
        raise Stale("this request was already accepted (a replay); it changes nothing")


def claim(storage: Storage, subject: str, signed: Signed) -> None:
    """Refuse a stale or replayed request; record this one as the newest."""
    key = record_key(subject)
    for _ in range(ATTEMPTS):
        found = storage.get(key)
        record = Record.parse(found.body if found else None)
        _check(record, signed)
        if signed.order > record.newest:
            record = Record(signed.order, [], [signed.digest])
        elif signed.digest not in record.pending:
            record.pending.append(signed.digest)
        else:
            return  # a retry of a claimed, unfinished request
        if _put(storage, key, record, found.etag if found else None):
            return
    raise Busy(f"{subject}: other requests for this entry keep arriving; retry")


def finish(storage: Storage, subject: str, signed: Signed) -> None:
    """Mark a claimed request done (a later replay of it is refused)."""
    key = record_key(subject)
    for _ in range(ATTEMPTS):
        found = storage.get(key)
        record = Record.parse(found.body if found else None)
        if record.newest != signed.order:
            return  # a newer request took over; its record is what counts now
        if signed.digest in record.done and signed.digest not in record.pending:
            return
        record.pending = [d for d in record.pending if d != signed.digest]
        if signed.digest not in record.done:
            record.done.append(signed.digest)
        if _put(storage, key, record, found.etag if found else None):
            return
    raise Busy(f"{subject}: other requests for this entry keep arriving; retry")


def _put(storage: Storage, key: str, record: Record, etag: str | None) -> bool:
    return (
        put_if_unchanged(
            storage,
            key,
            record.to_bytes(),
            etag,
            content_type="application/json",
            cache_control="no-cache",
        )
        is not None
    )
