"""Request verification primitives shared by the CMS modules.

Each CMS module (``chalicelib/hooks/cms/<name>.py``) verifies its own scheme
with these pieces and returns a ``Signed``: what the signature proves about the
request's place in time (``order``) and its identity (``digest``), which the
order-and-replay check (``order.py``) uses. Signatures are compared in constant
time; where a CMS signs a timestamp, requests further than ``TOLERANCE``
seconds from our clock are refused as replays.

Error tree (all HTTP 401)::

    VerificationError
    ├── NotConfigured     no secret set for the route
    ├── MissingHeader
    ├── MalformedHeader   includes a timestamp that is not a plain number
    ├── BadSignature
    └── StaleTimestamp
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import NewsroomError

TOLERANCE = 300  # seconds a signed timestamp may differ from our clock
# a signed timestamp: ASCII digits only (str.isdigit() accepts "²", which int()
# refuses) and short enough that int() and float division cannot blow up
_TIMESTAMP_RE = re.compile(r"[0-9]{1,16}")
# a timestamp in seconds stays below this until the year 5138, one in milliseconds
# passed it in 1973: which side a value falls on tells the unit it was sent in
UNIT_SPLIT = 10**11


class VerificationError(NewsroomError):
    """The request is not proven to come from the CMS (HTTP 401)."""


class NotConfigured(VerificationError):
    """No secret is set for this route, so every request is refused."""


class MissingHeader(VerificationError):
    pass


class MalformedHeader(VerificationError):
    pass


class BadSignature(VerificationError):
    pass


class StaleTimestamp(VerificationError):
    pass


@dataclass(frozen=True)
class Signed:
    """What verification proved. ``order``: the signed instant in milliseconds
    (later requests for one entry carry larger values); ``digest``: the identity
    of this exact request, the same for a replay of it."""

    order: int
    digest: str


def normalize_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased and trimmed (HTTP names are case-insensitive)."""
    return {str(k).lower().strip(): str(v) for k, v in headers.items()}


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def digest_of(*parts: str | bytes) -> str:
    """A stable identity for a request (e.g. its signature value)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def require_secret(secret: str, setting: str) -> None:
    if not secret:
        raise NotConfigured(f"this webhook is not configured: set {setting}")


def require(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise MissingHeader(f"missing {name} header")
    return value


def timestamp(value: str, what: str) -> int:
    """A signed timestamp as an int, or ``MalformedHeader`` (never a 500)."""
    if not _TIMESTAMP_RE.fullmatch(value.strip()):
        raise MalformedHeader(f"{what} must be a whole number of {_unit(what)}")
    return int(value.strip())


def signed_millis(value: str, what: str, now: float, *, earliest: int = 0) -> int:
    """A signed timestamp in milliseconds, checked against the clock: the
    request's place in time (``Signed.order``). A value before ``earliest``
    was sent in seconds by mistake."""
    ts = timestamp(value, what)
    if ts < earliest:
        raise MalformedHeader(f"{what} must be in milliseconds")
    check_window(ts / 1000, now)
    return ts


def _unit(what: str) -> str:
    return "seconds" if "seconds" in what else "milliseconds"


def check_window(signed_seconds: float, now: float, tolerance: float = TOLERANCE) -> None:
    if abs(now - signed_seconds) > tolerance:
        raise StaleTimestamp(
            f"signature timestamp is {abs(now - signed_seconds):.0f} s away from the "
            f"server clock (at most {tolerance:.0f} s allowed); replayed or delayed request"
        )


def any_equal(expected: str, candidates: Iterable[str]) -> bool:
    ok = False
    for candidate in candidates:
        # no short-circuit: every candidate is compared, each in constant time
        ok |= hmac.compare_digest(
            expected.encode("utf-8", "replace"), candidate.encode("utf-8", "replace")
        )
    return ok
