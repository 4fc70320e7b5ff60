"""Request verification, one pure function per scheme.

Each function takes the request headers, the raw body bytes, the secret and the
current time (Unix seconds), and returns ``None`` when the request is genuine or
raises a ``VerificationError`` subclass saying why not. Signatures are compared
with ``hmac.compare_digest`` (constant time); where the CMS signs a timestamp,
requests older or newer than ``TOLERANCE`` seconds are refused as replays.

Schemes:

- generic     ``X-Newsroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("<t>.<body>")>``
- contentful  Contentful request verification: ``x-contentful-signature`` is the
              hex HMAC-SHA256 of ``METHOD\\nPATH\\nk1:v1;k2:v2\\nBODY`` over the headers
              named in ``x-contentful-signed-headers`` (lower-cased, values trimmed,
              sorted by name); ``x-contentful-timestamp`` is in milliseconds
- sanity      ``sanity-webhook-signature: t=<ms>,v1=<base64url HMAC-SHA256("<t>.<body>")>``
              (unpadded base64url, as ``@sanity/webhook`` encodes it)
- strapi      ``Authorization: Bearer <token>`` (Strapi sends static headers only:
              no signature and no timestamp, so there is no replay window)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from ..errors import NewsroomError

TOLERANCE = 300  # seconds a signed timestamp may differ from our clock

GENERIC_HEADER = "x-newsroom-signature"
CONTENTFUL_SIGNATURE = "x-contentful-signature"
CONTENTFUL_SIGNED_HEADERS = "x-contentful-signed-headers"
CONTENTFUL_TIMESTAMP = "x-contentful-timestamp"
SANITY_HEADER = "sanity-webhook-signature"
SANITY_MIN_TIMESTAMP_MS = 1609459200000  # Sanity signs nothing dated before 2021

_SANITY_RE = re.compile(r"^t=(\d+)[, ]+v1=([^, ]+)$")


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


def normalize_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased and trimmed (HTTP names are case-insensitive)."""
    return {str(k).lower().strip(): str(v) for k, v in headers.items()}


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _require_secret(secret: str, setting: str) -> None:
    if not secret:
        raise NotConfigured(f"this webhook is not configured: set {setting}")


def _require(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise MissingHeader(f"missing {name} header")
    return value


def _check_window(signed_seconds: float, now: float, tolerance: float) -> None:
    if abs(now - signed_seconds) > tolerance:
        raise StaleTimestamp(
            f"signature timestamp is {abs(now - signed_seconds):.0f} s away from the "
            f"server clock (at most {tolerance:.0f} s allowed); replayed or delayed request"
        )


def verify_generic(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: float,
    *,
    tolerance: float = TOLERANCE,
) -> None:
    _require_secret(secret, "NEWSROOM_WEBHOOK_SECRET")
    h = normalize_headers(headers)
    value = _require(h, GENERIC_HEADER)
    timestamp = ""
    candidates: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = item.strip()
        elif key == "v1":
            candidates.append(item.strip().lower())
    if not timestamp.isdigit() or not candidates:
        raise MalformedHeader("X-Newsroom-Signature must look like t=<unix seconds>,v1=<hex>")
    _check_window(int(timestamp), now, tolerance)
    expected = _hmac(secret, timestamp.encode("ascii") + b"." + body).hex()
    # several v1 values are allowed (a sender rotating secrets); any match wins
    if not _any_equal(expected, candidates):
        raise BadSignature("signature does not match the body and secret")


def contentful_canonical(
    method: str, path: str, signed: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """The exact string Contentful signs (see ``@contentful/node-apps-toolkit``)."""
    header_part = ";".join(f"{k}:{v}" for k, v in sorted(signed))
    # encodeURI of the path: reserved and unreserved characters stay as they are
    encoded_path = quote(path, safe="/;,?:@&=+$-_.!~*'()#")
    return f"{method.upper()}\n{encoded_path}\n{header_part}\n".encode() + body


def verify_contentful(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: float,
    *,
    method: str = "POST",
    paths: Iterable[str] = (),
    tolerance: float = TOLERANCE,
) -> None:
    """``paths``: the request path as the CMS called it, possibly with and without
    the API Gateway stage prefix (``/api/hooks/contentful``, ``/hooks/contentful``)."""
    _require_secret(secret, "NEWSROOM_CONTENTFUL_SECRET")
    h = normalize_headers(headers)
    signature = _require(h, CONTENTFUL_SIGNATURE).lower()
    names_raw = _require(h, CONTENTFUL_SIGNED_HEADERS)
    timestamp = _require(h, CONTENTFUL_TIMESTAMP)
    names = [n.strip().lower() for n in names_raw.split(",") if n.strip()]
    if CONTENTFUL_TIMESTAMP not in names or CONTENTFUL_SIGNED_HEADERS not in names:
        raise MalformedHeader(
            "x-contentful-signed-headers must include x-contentful-timestamp and "
            "x-contentful-signed-headers"
        )
    missing = [n for n in names if n not in h]
    if missing:
        raise MissingHeader(f"signed header(s) not present: {', '.join(missing)}")
    if not timestamp.isdigit():
        raise MalformedHeader("x-contentful-timestamp must be milliseconds since 1970")
    _check_window(int(timestamp) / 1000, now, tolerance)
    signed = [(n, h[n].strip()) for n in names]
    expected = [
        _hmac(secret, contentful_canonical(method, p, signed, body)).hex()
        for p in dict.fromkeys(paths)
    ]
    if not expected or not _any_equal(signature, expected):
        raise BadSignature("signature does not match the request and signing secret")


def sanity_signature(body: bytes, timestamp_ms: int, secret: str) -> str:
    digest = _hmac(secret, str(timestamp_ms).encode("ascii") + b"." + body)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_sanity(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: float,
    *,
    tolerance: float = TOLERANCE,
) -> None:
    _require_secret(secret, "NEWSROOM_SANITY_SECRET")
    h = normalize_headers(headers)
    value = _require(h, SANITY_HEADER)
    match = _SANITY_RE.match(value.strip())
    if not match:
        raise MalformedHeader("sanity-webhook-signature must look like t=<ms>,v1=<base64url>")
    timestamp_ms = int(match.group(1))
    if timestamp_ms < SANITY_MIN_TIMESTAMP_MS:
        raise MalformedHeader("sanity-webhook-signature timestamp must be in milliseconds")
    _check_window(timestamp_ms / 1000, now, tolerance)
    if not _any_equal(sanity_signature(body, timestamp_ms, secret), [match.group(2)]):
        raise BadSignature("signature does not match the body and secret")


def verify_strapi(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    _require_secret(secret, "NEWSROOM_STRAPI_TOKEN")
    h = normalize_headers(headers)
    value = _require(h, "authorization")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedHeader("Authorization must be 'Bearer <token>'")
    if not hmac.compare_digest(token.strip().encode("utf-8"), secret.encode("utf-8")):
        raise BadSignature("wrong token")


def _any_equal(expected: str, candidates: Iterable[str]) -> bool:
    ok = False
    for candidate in candidates:
        # no short-circuit: every candidate is compared, each in constant time
        ok |= hmac.compare_digest(
            expected.encode("utf-8", "replace"), candidate.encode("utf-8", "replace")
        )
    return ok
