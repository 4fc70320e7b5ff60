"""Outgoing mail and the one adapter that sends it (Amazon SES, API v2).

``SesMailer`` takes its boto3 ``sesv2`` client, sends ``Simple`` content (a
text and an HTML part, SES builds the MIME message) with our own headers, and
translates SES's errors into ``MailThrottled`` (retry later) and
``MailRejected`` (never; ``MailUncertain`` when the answer was lost and the
message may have gone out). Throttling is retried here with exponential backoff
first, so one busy second does not fail a whole page of recipients. The client
must not resend by itself (see ``service``): after a read timeout it would.
"""

from __future__ import annotations

import email.policy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, make_msgid
from typing import Any

from ..errors import MailError, MailRejected, MailThrottled, MailUncertain

# SES answers these when the account is over its rate or quota for now
_THROTTLED = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
}
# ... and these when the account cannot send at all for now (paused under
# review or at a high bounce rate, the sender's domain unverified, the
# configuration set missing): nothing was sent and nothing is wrong with the
# message, so it is retried later (the queue's retries, then its dead-letter
# queue for a redrive) rather than recorded as never to be sent
_ACCOUNT = {
    "SendingPausedException",
    "AccountSuspendedException",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
}
# ... and these when this message will never be sent as it is
_REJECTED = {"MessageRejected", "BadRequestException"}


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()

    def as_mime(self, sender: str, message_id: str = "", when: datetime | None = None) -> bytes:
        """The message as SES builds it from Simple content (multipart/alternative,
        text then HTML, our headers): what the demo's outbox keeps as ``.eml``."""
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = sender
        msg["To"] = self.to
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(when) if when else formatdate(usegmt=True)
        msg["Message-ID"] = f"<{message_id}@email.amazonses.com>" if message_id else make_msgid()
        for name, value in self.headers:
            msg[name] = value
        # the text part unencoded, so its links can be read (and followed) in the file
        msg.set_content(self.text, cte="8bit" if _short_lines(self.text) else None)
        msg.add_alternative(self.html, subtype="html")
        return msg.as_bytes()


@dataclass
class SesMailer:
    client: Any
    sender: str
    configuration_set: str = ""
    attempts: int = 6
    base_delay: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    requests: Counter[str] = field(default_factory=Counter)

    def send(self, mail: OutgoingMail) -> str:
        """Send one message; its SES message id. Throttling is retried with
        backoff; ``MailThrottled`` when it persists, ``MailRejected`` for good."""
        kwargs: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": [mail.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": mail.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": mail.text, "Charset": "UTF-8"},
                        "Html": {"Data": mail.html, "Charset": "UTF-8"},
                    },
                    "Headers": [{"Name": n, "Value": v} for n, v in mail.headers],
                }
            },
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        for attempt in range(self.attempts):
            try:
                self.requests["send_email"] += 1
                return str(self.client.send_email(**kwargs)["MessageId"])
            except MailThrottled:
                raise
            except Exception as exc:
                error = _translate(exc)
                if (
                    not isinstance(error, MailThrottled)
                    or error.code in _ACCOUNT  # lasts hours: no point waiting seconds
                    or attempt == self.attempts - 1
                ):
                    raise error from exc
            self.sleep(self.base_delay * 2**attempt)
        raise MailThrottled("still throttled")  # pragma: no cover (loop always returns or raises)


def _short_lines(text: str) -> bool:
    return all(len(line.encode()) < 990 for line in text.splitlines())


def _translate(exc: Exception) -> MailError:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in _THROTTLED or code in _ACCOUNT or status == 429:
            return MailThrottled(f"SES: {code}", code)
        if code in _REJECTED or 400 <= status < 500:
            return MailRejected(f"SES: {code}", code)
        return MailThrottled(f"SES: {code or status}", code)  # 5xx: try again later
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        # sent, then no answer: SES may have taken it (it has no idempotency key)
        return MailUncertain(f"SES: {exc}", type(exc).__name__)
    if isinstance(exc, BotoCoreError):  # not sent (no connection): safe to try again
        return MailThrottled(f"SES: {exc}", type(exc).__name__)
    raise exc


def utc_now() -> datetime:
    return datetime.now(UTC)
