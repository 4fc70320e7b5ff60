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

Two deliveries of one entry may run at once (two Lambdas), so a claim alone
does not decide which one's file stays: the older could write after the newer
finished. ``Claim.put`` and ``Claim.delete`` tie each write of a release file
to the claim: read the file's version, then check that no newer request has
claimed since, then write conditional on that version. A newer request that
claims after the check writes after the read, so the older's write fails;
re-checked, the older is then ``Superseded`` (409, it changes nothing more).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import keys
from ..errors import NewsroomError, PreconditionFailed
from ..storage import Storage, StoredObject, put_if_unchanged
from .verify import Signed

PREFIX = keys.CMS_PREFIX + "_order/"
ATTEMPTS = 5


class Stale(NewsroomError):
    """The request is older than, or the same as, one already accepted (HTTP 409)."""


class Superseded(Stale):
    """A newer request for the entry was accepted while this one ran (HTTP 409)."""


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


@dataclass
class Claim:
    """This request's claim on its subjects: the writes of release files that
    must give way to a newer request for the same entry."""

    storage: Storage
    subjects: list[str]
    signed: Signed

    def check(self) -> None:
        """``Superseded`` if a newer request has claimed one of the subjects."""
        for subject in self.subjects:
            found = self.storage.get(record_key(subject))
            if Record.parse(found.body if found else None).newest > self.signed.order:
                raise Superseded(
                    "a newer request for this entry was accepted while this one ran; "
                    "this one changes nothing more"
                )

    def put(
        self,
        key: str,
        body: bytes,
        *,
        only_if: Callable[[StoredObject | None], bool] | None = None,
        content_type: str,
        cache_control: str,
    ) -> str | None:
        """Write ``key`` while this request is the newest, conditional on the
        version read before that check. Returns the new ETag, or ``None`` when
        ``only_if`` refuses the version found (nothing written)."""
        for _ in range(ATTEMPTS):
            found = self.storage.get(key)
            self.check()
            if only_if is not None and not only_if(found):
                return None
            headers = {"content_type": content_type, "cache_control": cache_control}
            try:
                etag = self.storage.put(
                    key, body, if_match=found.etag if found else None,
                    if_none_match=found is None, **headers,
                )  # fmt: skip
            except PreconditionFailed:
                continue  # written meanwhile: by a newer request (checked next) or an equal one
            self._undo_if_superseded(key, etag, found, headers)
            return etag
        raise Busy(f"{key}: other requests for this entry keep writing it; retry")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete ``key`` (only the version ``if_match``, when given) while this
        request is the newest, conditional on the version read before that check."""
        for _ in range(ATTEMPTS):
            found = self.storage.get(key)
            if found is None or (if_match is not None and found.etag != if_match):
                return
            self.check()
            try:
                self.storage.delete(key, if_match=found.etag)
            except PreconditionFailed:
                continue
            headers = {"content_type": "application/json", "cache_control": "no-cache"}
            self._undo_if_superseded(key, None, found, headers)
            return
        raise Busy(f"{key}: other requests for this entry keep writing it; retry")

    def withdraw(self, key: str, etag: str) -> None:
        """Delete the file this request wrote (version ``etag``) if a newer
        request has claimed since: a file under a slug the newer one never wrote."""
        try:
            self.check()
        except Superseded:
            try:
                self.storage.delete(key, if_match=etag)
            except PreconditionFailed:
                pass  # replaced meanwhile: no longer this request's file

    def _undo_if_superseded(
        self, key: str, etag: str | None, found: StoredObject | None, headers: dict[str, str]
    ) -> None:
        """A newer request that claimed between the check and the write, and
        wrote the very bytes that were there (or deleted an absent file), left
        the version unchanged, so the write went through: put back what was
        there, unless changed since, and answer as superseded."""
        try:
            self.check()
        except Superseded:
            try:
                if found is not None:
                    self.storage.put(
                        key, found.body, if_match=etag, if_none_match=etag is None, **headers
                    )
                elif etag is not None:
                    self.storage.delete(key, if_match=etag)
            except PreconditionFailed:
                pass  # written again since: by the newer request
            raise


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
