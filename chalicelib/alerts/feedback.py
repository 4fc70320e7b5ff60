"""Bounces and complaints: SES tells an SNS topic, this drops the address.

Both SES formats are read: identity notifications (``notificationType``) and
configuration-set event publishing (``eventType``). A permanent bounce or a
complaint removes the address like an unsubscribe and marks its tombstone
*suppressed*, so a later sign-up for it sends no confirmation either. A
transient bounce (mailbox full, ...) changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from .store import SubscriberStore
from .tokens import Keys

log = logging.getLogger("newsroom.alerts")


def suppressed_addresses(notification: dict[str, Any]) -> tuple[str, list[str]]:
    """(reason, addresses) that must get no more mail; reason '' when none."""
    kind = notification.get("notificationType") or notification.get("eventType") or ""
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return "", []
        recipients = bounce.get("bouncedRecipients") or []
        return "bounce", [r["emailAddress"] for r in recipients if r.get("emailAddress")]
    if kind == "Complaint":
        recipients = (notification.get("complaint") or {}).get("complainedRecipients") or []
        return "complaint", [r["emailAddress"] for r in recipients if r.get("emailAddress")]
    return "", []


class Feedback:
    def __init__(
        self, store: SubscriberStore, keys: Keys, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock

    def handle(self, message: str) -> dict[str, Any]:
        try:
            notification = json.loads(message)
            if not isinstance(notification, dict):
                raise ValueError("not an object")
            reason, addresses = suppressed_addresses(notification)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.error("mail_feedback", extra={"outcome": "malformed"})
            return {"outcome": "malformed", "suppressed": 0}
        for address in addresses:
            address_id = self.keys.address_id(address)
            self.store.remove(address_id, reason, self.clock())
            log.info(
                "mail_feedback",
                extra={"outcome": "suppressed", "reason": reason, "subscriber": address_id[:16]},
            )
        if not addresses:
            log.info("mail_feedback", extra={"outcome": "ignored"})
        return {"outcome": reason or "ignored", "suppressed": len(addresses)}
