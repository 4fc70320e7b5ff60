"""Keyed address ids and signed link tokens (pure)."""

from __future__ import annotations

import pytest

from chalicelib.alerts.tokens import CONFIRM, UNSUBSCRIBE, Keys, mailbox, new_nonce
from chalicelib.errors import InvalidToken

KEYS = Keys("a-secret-that-is-long-enough")


def test_address_id_is_keyed_and_case_insensitive() -> None:
    a = KEYS.address_id("Ada@Example.org ")
    assert a == KEYS.address_id("ada@example.org")
    assert a != Keys("another-secret-long-enough").address_id("ada@example.org")
    assert len(a) == 64 and "ada" not in a


def test_address_id_is_one_for_every_spelling_of_a_mailbox() -> None:
    a = KEYS.address_id("jos\u00e9@b\u00fccher.example")
    assert a == KEYS.address_id(" JOSE\u0301@B\u00dcCHER.example")
    assert a == KEYS.address_id("jos\u00e9@xn--bcher-kva.example")
    assert mailbox(" Ada@B\u00fccher.example ") == "Ada@xn--bcher-kva.example"
    assert mailbox("ada@example..org") == "ada@example..org"  # left for the check to refuse
    # IDNA 2008: the sharp s is a letter of its own (IDNA 2003 made it "ss",
    # another domain, whose owner would get the mail)
    assert mailbox("ada@Straße.de") == "ada@xn--strae-oqa.de"
    assert mailbox("ada@bücher\u3002example") == "ada@xn--bcher-kva.example"


def test_token_round_trip_and_no_address_inside() -> None:
    sid = KEYS.address_id("ada@example.org")
    nonce = new_nonce()
    token = KEYS.make(CONFIRM, sid, nonce, 2_000_000_000)
    assert "ada" not in token and "@" not in token
    read = KEYS.read(token, CONFIRM, now=1_900_000_000)
    assert (read.address_id, read.nonce, read.expires) == (sid, nonce, 2_000_000_000)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature
        lambda t: t.replace("v1.c.", "v1.u."),  # purpose swapped, signature kept
        lambda t: t.replace("v1.", "v2.", 1),
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "x" * 500,
    ],
)
def test_tampered_tokens_are_refused(mangle) -> None:  # noqa: ANN001
    token = KEYS.make(CONFIRM, KEYS.address_id("a@b.org"), new_nonce(), 0)
    with pytest.raises(InvalidToken):
        KEYS.read(mangle(token), CONFIRM, now=0)


def test_expired_and_wrong_purpose_are_refused() -> None:
    sid = KEYS.address_id("a@b.org")
    with pytest.raises(InvalidToken, match="expired"):
        KEYS.read(KEYS.make(CONFIRM, sid, new_nonce(), 100), CONFIRM, now=101)
    with pytest.raises(InvalidToken, match="purpose"):
        KEYS.read(KEYS.make(UNSUBSCRIBE, sid, new_nonce()), CONFIRM, now=0)
    # unsubscribe links do not expire
    assert KEYS.read(KEYS.make(UNSUBSCRIBE, sid, new_nonce()), UNSUBSCRIBE, now=4e9)
