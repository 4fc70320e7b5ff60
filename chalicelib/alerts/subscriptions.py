"""The subscription routes: sign up, confirm (double opt-in), unsubscribe.

Every sign-up answers the same 202 whatever the address's state (new, pending,
active, unsubscribed, suppressed, rate-limited, honeypot), so the answer
reveals nothing about who subscribes; only a malformed address is a 400. The
one confirmation e-mail per address per hour is claimed with a conditional
write, so two racing sign-ups send one. When SES throttles, the confirmation
is handed to the alert queue (``send_alerts`` sends it, retried like an alert)
and the answer is the same 202: a 503 for a new address only would tell it
from a known one.

Log lines name an address by the first 16 hex digits of its keyed id, never
by the address itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from ..core.model import EMAIL_RE, KIND_LABELS
from ..core.text import topic_slug
from ..errors import InvalidToken, MailRejected, MailThrottled, StorageError
from ..settings import Settings
from .compose import CONFIRM_VALID_DAYS, Composer, scope_text, subscription_link
from .mail import SesMailer
from .sender import AlertQueue, confirmation_message
from .store import SubscriberStore
from .tokens import CONFIRM, UNSUBSCRIBE, Keys, Token, mailbox, new_nonce

log = logging.getLogger("newsroom.alerts")

CONFIRM_INTERVAL = 3600  # one confirmation e-mail per address per hour
MAX_BODY = 16 * 1024
MAX_TOPICS = 20
HONEYPOT = "website"
ACCEPTED = {
    "status": "accepted",
    "message": "If this address can receive e-mail, a confirmation link is on its way. "
    "Nothing is sent until it is followed.",
}
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SignUp:
    email: str
    topics: list[str]
    kinds: list[str]
    honeypot: bool


def now() -> float:
    """The clock (a module function, so a test can move it forward an hour)."""
    return time.time()


class BadSignUp(ValueError):
    def __init__(self, loc: str, msg: str, status: int = 400) -> None:
        self.loc = loc
        self.msg = msg
        self.status = status
        super().__init__(f"{loc}: {msg}")


def valid_address(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 3 <= len(value.strip()) <= 254
        and EMAIL_RE.match(value.strip()) is not None
    )


def parse_sign_up(raw: bytes, content_type: str) -> SignUp:
    """A sign-up from JSON or an HTML form; ``BadSignUp`` names the field."""
    if len(raw) > MAX_BODY:
        raise BadSignUp("body", f"larger than {MAX_BODY} bytes", status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSignUp("email", "the request is not UTF-8") from None
    if "json" in content_type.lower():
        try:
            doc = json.loads(text or "{}")
        except ValueError:
            raise BadSignUp("email", "the body is not JSON with an email field") from None
        if not isinstance(doc, dict):
            raise BadSignUp("email", "the body is not a JSON object with an email field")
        email, topics, kinds = doc.get("email"), doc.get("topics"), doc.get("kinds")
        honeypot = bool(doc.get(HONEYPOT))
    else:
        form = (
            _multipart(raw, content_type)
            if content_type.lower().startswith("multipart/form-data")
            else parse_qs(text, keep_blank_values=True)
        )
        email = (form.get("email") or [None])[0]
        topics, kinds = form.get("topics", []), form.get("kinds", [])
        honeypot = any(v.strip() for v in form.get(HONEYPOT, []))
    if isinstance(email, str):
        email = mailbox(email)
    if not valid_address(email):
        raise BadSignUp("email", "not a valid e-mail address")
    assert isinstance(email, str)
    if not email.rpartition("@")[0].isascii():
        # SES has no SMTPUTF8: the confirmation could never be delivered
        raise BadSignUp(
            "email",
            "the part before the @ must be plain ASCII (internationalised mailboxes "
            "cannot receive these alerts)",
        )
    return SignUp(email, _topics(topics), _kinds(kinds), honeypot)


def _multipart(raw: bytes, content_type: str) -> dict[str, list[str]]:
    """The text fields of a ``multipart/form-data`` body (what ``fetch`` with a
    ``FormData`` and many form builders send), as ``parse_qs`` gives a form's."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    form: dict[str, list[str]] = {}
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes) and not part.get_filename():
            form.setdefault(name, []).append(payload.decode("utf-8", "replace"))
    return form


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _topics(value: Any) -> list[str]:
    """Topic names or slugs, as slugs (contract section 9), at most 20."""
    slugs = [topic_slug(v) for v in _strings(value) if len(v) <= 120]
    return list(dict.fromkeys(s for s in slugs if s))[:MAX_TOPICS]


def _kinds(value: Any) -> list[str]:
    """Known kinds only: an unknown one is dropped (only the address can make a 400)."""
    return list(dict.fromkeys(k.strip() for k in _strings(value) if k.strip() in KIND_LABELS))


class Subscriptions:
    def __init__(
        self,
        settings: Settings,
        store: SubscriberStore,
        mailer: SesMailer,
        *,
        composer: Composer | None = None,
        clock: Callable[[], float] | None = None,
        queue: AlertQueue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # with a queue to fall back on, SES is asked once: a backoff of seconds
        # for new addresses only would tell them from known ones by the delay
        self.mailer = replace(mailer, attempts=1) if queue is not None else mailer
        self.queue = queue  # the alert queue, for confirmations SES could not take now
        self.keys = Keys(settings.alert_secret)
        self.composer = composer or Composer(settings)
        self.clock = clock or now

    # links
    def link(self, path: str, token: str) -> str:
        return subscription_link(self.settings.links_url, path, token)

    def unsubscribe_url(self, address_id: str, nonce: str) -> str:
        return self.link("unsubscribe", self.keys.make(UNSUBSCRIBE, address_id, nonce))

    # replies
    def _page(
        self, status: int, heading: str, *lines: str, button: dict[str, str] | None = None
    ) -> Reply:
        page = self.composer.page(status, heading, *lines, button=button)
        return Reply(
            status, page.html, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}
        )

    def _json(self, status: int, doc: dict[str, Any]) -> Reply:
        return Reply(status, json.dumps(doc), {"Content-Type": "application/json", **PAGE_HEADERS})

    def _accepted(self, as_json: bool) -> Reply:
        if as_json:
            return self._json(202, ACCEPTED)
        return self._page(
            202,
            "Check your inbox",
            "If this address can receive e-mail, a message with a confirmation link is on its way.",
            "Nothing else is sent until you follow that link. It can take a few minutes to arrive.",
        )

    @staticmethod
    def _log(event: str, outcome: str, address_id: str = "", **extra: Any) -> None:
        fields = {"outcome": outcome, **extra}
        if address_id:
            fields["subscriber"] = address_id[:16]
        log.info(event, extra=fields)

    # POST /subscriptions
    def subscribe(self, raw: bytes, content_type: str) -> Reply:
        as_json = "json" in (content_type or "application/json").lower()
        try:
            sign_up = parse_sign_up(raw, content_type or "application/json")
        except BadSignUp as exc:
            self._log("subscribe", "bad_request", loc=exc.loc)
            if as_json:
                return self._json(exc.status, {"errors": [{"loc": exc.loc, "msg": exc.msg}]})
            return self._page(
                exc.status,
                "That address does not look right",
                f"The e-mail address could not be used ({exc.msg}). Please go back and check it.",
            )
        address_id = self.keys.address_id(sign_up.email)
        if sign_up.honeypot:
            self._log("subscribe", "honeypot", address_id)
            return self._accepted(as_json)
        self._sign_up(address_id, sign_up)
        return self._accepted(as_json)

    def _sign_up(self, address_id: str, sign_up: SignUp) -> str:
        now = self.clock()
        item = self.store.get(address_id)
        if item and item.get("suppressed"):
            self._log("subscribe", "suppressed", address_id)
            return "suppressed"
        last = (item or {}).get("confirm_sent_at")
        if last is not None and now - last < CONFIRM_INTERVAL:
            self._log("subscribe", "rate_limited", address_id)
            return "rate_limited"
        nonce = new_nonce()
        if not self.store.put_pending(
            address_id, sign_up.email, sign_up.topics, sign_up.kinds, nonce, now, item
        ):
            self._log("subscribe", "raced", address_id)
            return "raced"
        token = self.keys.make(CONFIRM, address_id, nonce, int(now) + CONFIRM_VALID_DAYS * 86400)
        mail = self.composer.confirmation(
            sign_up.email, self.link("confirm", token), scope_text(sign_up.topics, sign_up.kinds)
        )
        try:
            self.mailer.send(mail)
        except MailRejected as exc:
            self._log("subscribe", "mail_rejected", address_id, code=exc.code)
            return "rejected"
        except MailThrottled as exc:
            return self._send_later(address_id, nonce, now, last, exc.code)
        self._log("subscribe", "confirmation_sent", address_id)
        return "sent"

    def _send_later(
        self, address_id: str, nonce: str, now: float, last: int | None, code: str
    ) -> str:
        """SES is busy for everyone: the confirmation goes through the alert
        queue (the message names the keyed id, never the address). Without a
        queue, or when it fails, the hour is given back so a retry can send."""
        if self.queue is not None:
            try:
                self.queue.put([confirmation_message(address_id, nonce, now)])
            except StorageError as exc:
                self._log("subscribe", "queue_failed", address_id, error=str(exc))
            else:
                self._log("subscribe", "confirmation_queued", address_id, code=code)
                return "queued"
        self.store.restore_stamp(address_id, now, last)
        self._log("subscribe", "mail_throttled", address_id, code=code)
        return "throttled"

    # GET /subscriptions/confirm
    def confirm(self, token: str | None) -> Reply:
        now = self.clock()
        tok = self._read_link(token, CONFIRM, "confirm", now)
        if tok is None:
            return self._invalid_link()
        item = self.store.get(tok.address_id)
        if item and item.get("pending_nonce") == tok.nonce:
            if not self.store.confirm(tok.address_id, item, now):
                item = self.store.get(tok.address_id)  # a second click raced this one
            else:
                item = self.store.get(tok.address_id)
                self._log("confirm", "confirmed", tok.address_id)
        if item and item.get("state") == "active" and item.get("confirmed_nonce") == tok.nonce:
            return self._page(
                200,
                "You are subscribed",
                f"From now on you get an e-mail for each new release: {scope_text(item.get('topics') or [], item.get('kinds') or [])}.",
                "Every e-mail has a link to unsubscribe with one click.",
            )
        self._log("confirm", "stale_token", tok.address_id)
        return self._invalid_link()

    def _read_link(self, token: str | None, purpose: str, action: str, now: float) -> Token | None:
        """The token of a link for ``purpose``, or None (logged) when it is not valid."""
        try:
            return self.keys.read(token, purpose, now)
        except InvalidToken as exc:
            self._log(action, "invalid_token", reason=str(exc))
            return None

    def _invalid_link(self) -> Reply:
        return self._page(
            400,
            "This link is not valid",
            "It may have expired, been replaced by a newer sign-up, or belong to an "
            "address that has unsubscribed. You can sign up again on the newsroom.",
        )

    # GET and POST /subscriptions/unsubscribe
    def unsubscribe_form(self, token: str | None) -> Reply:
        tok = self._read_link(token, UNSUBSCRIBE, "unsubscribe", self.clock())
        if tok is None:
            return self._invalid_link()
        return self._page(
            200,
            "Unsubscribe",
            f"Stop all e-mail alerts from {self.settings.site_title} to this address?",
            button={
                "action": self.unsubscribe_url(tok.address_id, tok.nonce),
                "label": "Unsubscribe",
            },
        )

    def unsubscribe(self, token: str | None) -> Reply:
        now = self.clock()
        tok = self._read_link(token, UNSUBSCRIBE, "unsubscribe", now)
        if tok is None:
            return self._invalid_link()
        # Any unsubscribe link ever sent to the address stops all mail to it, an
        # older subscription's too (RFC 8058: the click must work); the nonce
        # only matters for confirmation links, which must not revive an address.
        item = self.store.get(tok.address_id)
        if item is not None and item.get("state") != "gone":
            self.store.remove(tok.address_id, "unsubscribed", now)
            self._log("unsubscribe", "unsubscribed", tok.address_id)
        else:
            self._log("unsubscribe", "already_gone", tok.address_id)
        return self._page(
            200,
            "You are unsubscribed",
            f"This address gets no more e-mail alerts from {self.settings.site_title}, "
            "and we no longer keep it.",
        )
