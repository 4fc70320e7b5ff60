"""Keyed hashes of addresses and the signed tokens of the subscription links.

An address is never a key, a token or a log field: everything outside the
subscriber's own item names them by ``address_id`` (HMAC-SHA256 of the
normalised address under a key derived from ``NEWSROOM_ALERT_SECRET``). Without
the secret the id cannot be turned back into an address, nor can anyone check
a guessed address against it.

A token is ``v1.<purpose>.<address id>.<nonce>.<expiry>.<signature>``: the
purpose (``c`` confirm, ``u`` unsubscribe) stops a confirm link from being used
as an unsubscribe link and back; the nonce ties it to one subscription, so a
link from before an unsubscribe cannot bring the address back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from ..errors import InvalidToken

CONFIRM = "c"
UNSUBSCRIBE = "u"
_PURPOSES = (CONFIRM, UNSUBSCRIBE)
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
_MAX_TOKEN = 200


def mailbox(address: str) -> str:
    """The address as mail goes to it: trimmed, in Unicode NFC (one spelling of
    an accented letter, however the keyboard composed it) and with an
    internationalised domain in its ASCII form (``bücher.example`` is
    ``xn--bcher-kva.example``, the form SES accepts and bounces report).
    A malformed domain is left for the address check to refuse."""
    text = unicodedata.normalize("NFC", address.strip())
    local, at, domain = text.rpartition("@")
    if not at or domain.isascii():
        return text
    # label by label, as IDNA 2008 does (Python's "idna" codec is IDNA 2003,
    # which sends straße.de's mail to strasse.de, another domain)
    labels = [
        label if label.isascii() else "xn--" + label.lower().encode("punycode").decode("ascii")
        # the ideographic and full-width full stops separate labels too
        for label in re.sub("[\u3002\uff0e\uff61]", ".", domain).split(".")
    ]
    return f"{local}@{'.'.join(labels)}"


def normalise_address(address: str) -> str:
    """The form hashed: the mailbox, lower-cased (mailbox case is ignored in
    practice), so every spelling of one address is one subscriber."""
    return mailbox(address).lower()


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Token:
    purpose: str
    address_id: str
    nonce: str
    expires: int  # unix seconds; 0 = never


class Keys:
    """The two keys derived from one secret: one hashes addresses, one signs links."""

    def __init__(self, secret: str) -> None:
        root = secret.encode()
        self._id_key = hmac.new(root, b"newsroom/address-id", hashlib.sha256).digest()
        self._sign_key = hmac.new(root, b"newsroom/link-token", hashlib.sha256).digest()

    def address_id(self, address: str) -> str:
        data = normalise_address(address).encode()
        return hmac.new(self._id_key, data, hashlib.sha256).hexdigest()

    def _signature(self, payload: str) -> str:
        mac = hmac.new(self._sign_key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def make(self, purpose: str, address_id: str, nonce: str, expires: int = 0) -> str:
        if purpose not in _PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        payload = f"v1.{purpose}.{address_id}.{nonce}.{expires}"
        return f"{payload}.{self._signature(payload)}"

    def read(self, token: str | None, purpose: str, now: float) -> Token:
        """The token's content if it is well-formed, signed by us, for
        ``purpose`` and not expired; ``InvalidToken`` otherwise."""
        if not token or len(token) > _MAX_TOKEN:
            raise InvalidToken("missing or oversized token")
        if not token.isascii():  # compare_digest refuses to compare such text
            raise InvalidToken("malformed token")
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != "v1":
            raise InvalidToken("malformed token")
        _, kind, address_id, nonce, expires, signature = parts
        payload = ".".join(parts[:5])
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise InvalidToken("bad signature")
        if kind != purpose:
            raise InvalidToken("token made for another purpose")
        if not _ID_RE.match(address_id) or not _NONCE_RE.match(nonce) or not expires.isdigit():
            raise InvalidToken("malformed token")
        if int(expires) and int(expires) < now:
            raise InvalidToken("expired token")
        return Token(kind, address_id, nonce, int(expires))
