"""The project's exceptions.

    NewsroomError
    ├── ConfigurationError        a setting is missing or malformed
    ├── InvalidRelease            source bytes are not a valid release (bad input)
    │   └── SlugConflict          valid, but another source file holds the slug
    ├── StorageError              the storage backend failed (infrastructure)
    │   ├── PreconditionFailed    a conditional write lost a race (412 / 409)
    │   └── TransientStorageError throttling, timeouts, dropped connections
    ├── InvalidToken              a subscription link is forged, mangled or expired
    └── MailError                 the mail service did not take a message
        ├── MailThrottled         over the sending rate: retry later (infrastructure)
        └── MailRejected          this message will never go out (bad address, ...)

Bad input (``InvalidRelease``) is recorded in a receipt and never raised out of
a handler; ``StorageError`` is raised so Lambda retries the event.
"""

from __future__ import annotations

from dataclasses import dataclass


class NewsroomError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(NewsroomError):
    pass


@dataclass(frozen=True)
class FieldError:
    """One problem in a release, located by a dotted field path (``image.alt``)."""

    loc: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


class InvalidRelease(NewsroomError):
    def __init__(self, errors: list[FieldError], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__("; ".join(f"{e.loc}: {e.msg}" for e in self.errors))


class SlugConflict(InvalidRelease):
    def __init__(self, slug: str, holder: str, source: str = "") -> None:
        self.slug = slug
        self.holder = holder
        msg = f"slug {slug!r} is already used by {holder}; choose another slug"
        super().__init__([FieldError("slug", msg)], source)


class StorageError(NewsroomError):
    def __init__(self, message: str, key: str = "") -> None:
        self.key = key
        super().__init__(message)


class PreconditionFailed(StorageError):
    """A conditional write found the object changed (S3 412) or raced (S3 409)."""


class TransientStorageError(StorageError):
    pass


class ObjectUnreadable(StorageError):
    """S3 holds the object but will give its bytes to no retry: it lies in an
    archive storage class, or was encrypted with a key of the uploader's own
    (SSE-C). The file's problem, not the infrastructure's: a source like this
    is rejected with a receipt that says why, instead of failing until the
    dead-letter queue. (A KMS key this function may not use is a fault: ops
    grant ``kms:Decrypt`` and the next retry or sweep publishes it.)"""

    def __init__(self, key: str, why: str) -> None:
        self.why = why
        super().__init__(f"{key}: {why}", key)


class ScheduleUnreadable(StorageError):
    """The embargo schedule is not a schedule (edited by hand, cut short by a
    tool). Retrying will not mend it, but failing keeps the messages that need
    it (and the due runs) failing visibly until ``newsroom rebuild``, which
    rewrites it from the sources, has run."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(
            f"{key} is not a readable embargo schedule ({why}); nothing embargoed can be "
            f"scheduled or published from it until `newsroom rebuild` rewrites it from the "
            f"sources",
            key,
        )


class InvalidToken(NewsroomError):
    """A confirm or unsubscribe token that fails its signature, shape or expiry."""


class MailError(NewsroomError):
    def __init__(self, message: str, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class MailThrottled(MailError):
    """The mail service refused for now (rate or quota); the same message may be retried."""


class MailRejected(MailError):
    """The mail service will never send this message; retrying is pointless."""


class MailUncertain(MailRejected):
    """The request reached the mail service but its answer was lost: the message
    may have gone out, so sending it again could deliver it twice. Never retried."""
