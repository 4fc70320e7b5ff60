"""From a release going public to one e-mail per matching subscriber, exactly once.

1. ``AlertAnnouncer`` (a ``CommitListener``) puts one ``release`` message on
   the alert queue for every release public *for the first time* in a commit
   (an update, ``first_time`` False, sends nothing).
2. ``send_alerts`` takes a ``release`` message, checks that the release is
   still public (``public.PublicSite``; a release deleted meanwhile alerts
   nobody, and that is recorded for good; one corrected meanwhile, its date or
   slug included, is sent as the site now shows it), and pages through the
   subscribers (16 Query partitions), queueing ``recipients`` messages of at
   most ``PAGE`` matching address ids each, then marks the release fanned out.
3. For a ``recipients`` message it checks the release again (once per
   message: a deletion since step 2 counts), reads those subscribers again
   (one BatchGetItem: an unsubscribe since step 2 counts), and for each one that
   still matches: a **conditional write** of the (release, subscriber) record,
   then the SES send, then the record's outcome.

Exactly once, never twice: a duplicated or retried message finds the record
and skips the address. The one race left is a crash *between* the conditional
write and the send (Lambda timeout, process killed): the record says
``sending`` and no retry sends it, so that subscriber misses that one alert.
We chose that side on purpose: SES has no idempotency key, so a retry cannot
tell "sent, then crashed" from "crashed, then not sent", and a lost alert is
better than a duplicate to a journalist's inbox (the release is on the site and
in the feed anyway). Records left in ``sending`` are counted by ``newsroom
subscribers``. When SES *certainly* did not take the message (throttled after
the backoff), the record is removed again and the queue message retried.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..core.text import topic_slug
from ..errors import MailRejected, MailThrottled, NewsroomError, StorageError
from ..keys import release_path
from ..listeners import Commit
from ..settings import Settings
from ..sqs import NamedQueue
from .compose import CONFIRM_VALID_DAYS, Composer, scope_text, subscription_link
from .mail import SesMailer
from .public import PublicSite
from .store import SubscriberStore
from .tokens import CONFIRM, UNSUBSCRIBE, Keys

log = logging.getLogger("newsroom.alerts")

PAGE = 50  # recipients per queue message: one BatchGetItem, well inside a Lambda's time
# a release not listed is checked once more this much later (SQS's longest
# delay) before its alert is stopped: a concurrent publish rewrites a month
# file it planned without it, and a sweep (every 5 minutes) repairs one left so
RECHECK_S = 900


def release_id(entry: dict[str, Any]) -> str:
    """One release's identity for exactly-once: its slug and publication date.
    A deleted and restored release is the same release (no second alert); a
    different release that later takes a freed slug is not."""
    return f"{entry['slug']}@{entry['published_at']}"


def alert_payload(entry: dict[str, Any], site_url: str) -> dict[str, Any]:
    """The public fields of an index entry an alert needs, with absolute URLs
    (no source key or digest: the e-mail is made of what the site shows; the
    queue message names the source file beside it, for ``PublicSite``)."""

    def absolute(url: str) -> str:
        return url if url.startswith(("https://", "http://")) else site_url + url

    image = entry.get("image")
    return {
        "slug": entry["slug"],
        "title": entry["title"],
        "kind": entry["kind"],
        "published_at": entry["published_at"],
        "summary": entry.get("summary") or "",
        "url": absolute(entry.get("url") or release_path(entry["slug"])),
        "image": {
            "url": absolute(image["url"]),
            "alt": image.get("alt") or "",
            "caption": image.get("caption") or "",
            "credit": image.get("credit") or "",
        }
        if image
        else None,
        "topics": list(entry.get("topics") or []),
        "language": entry.get("language") or "en",
    }


def confirmation_message(address_id: str, nonce: str, now: float) -> dict[str, Any]:
    """Send the confirmation of this pending sign-up (SES was busy when it was
    made): the keyed id and the sign-up's nonce, never the address."""
    return {"type": "confirm", "id": address_id, "nonce": nonce, "at": int(now)}


def matches(subscriber: dict[str, Any], release: dict[str, Any]) -> bool:
    """Empty topic or kind lists mean everything; otherwise any topic in common
    (compared as topic slugs) and the release's kind among the kinds."""
    kinds = subscriber.get("kinds") or []
    if kinds and release["kind"] not in kinds:
        return False
    topics = subscriber.get("topics") or []
    if topics and not {topic_slug(t) for t in release.get("topics", [])} & set(topics):
        return False
    return True


class AlertQueue(NamedQueue):
    """SQS adapter for the alert queue: takes its boto3 client and the queue name."""

    def put(self, bodies: Iterable[dict[str, Any]], *, delay: int = 0) -> None:
        for entries in self.batches(bodies):
            self.send_batch([{**e, "DelaySeconds": delay} if delay else e for e in entries])


class AlertAnnouncer:
    """The publisher's listener: one queue message per first-time-public release."""

    def __init__(self, queue: AlertQueue, site_url: str) -> None:
        self.queue = queue
        self.site_url = site_url

    def on_commit(self, commit: Commit) -> None:
        messages = []
        for p in commit.published:
            if not p.first_time:
                continue
            payload = alert_payload(p.entry, self.site_url)
            messages.append(
                {
                    "type": "release",
                    "id": release_id(payload),
                    "release": payload,
                    # the file it was published from: a date or slug corrected
                    # before the alert goes out is followed, not taken for a
                    # withdrawal (public.PublicSite); never put in the e-mail
                    "source": p.source_key,
                }
            )
        if messages:
            self.queue.put(messages)
            for m in messages:
                log.info("alert_queued", extra={"release": m["id"]})


class AlertSender:
    def __init__(
        self,
        settings: Settings,
        store: SubscriberStore,
        mailer: SesMailer,
        queue: AlertQueue,
        public: PublicSite,
        *,
        composer: Composer | None = None,
        clock: Callable[[], float] = time.time,
        page: int = PAGE,
    ) -> None:
        self.settings = settings
        self.store = store
        self.mailer = mailer
        self.queue = queue
        self.public = public
        self.checked: dict[str, dict[str, Any] | None] = {}  # release id: as public (one batch)
        self.keys = Keys(settings.alert_secret)
        self.composer = composer or Composer(settings)
        self.clock = clock
        self.page = page

    def handle(self, body: str) -> dict[str, Any]:
        """One alert-queue message. Malformed ones are logged and dropped (no
        retry can fix them); infrastructure faults raise, so SQS retries."""
        try:
            message = json.loads(body)
            kind = message["type"]
            rid = message["id"]
            if kind == "confirm":
                nonce, at = str(message["nonce"]), int(message["at"])
            else:
                release = message["release"]
        except (ValueError, KeyError, TypeError):
            log.error("alert_message", extra={"outcome": "malformed"})
            return {"outcome": "malformed"}
        if kind == "confirm":
            return self.confirmation(rid, nonce, at)
        if kind == "release":
            return self.fan_out(rid, release, message)
        if kind == "recipients":
            recipients = list(message.get("recipients") or [])
            return self.deliver(rid, release, recipients, message)
        log.error("alert_message", extra={"outcome": "unknown_type"})
        return {"outcome": "unknown_type"}

    def fan_out(
        self, rid: str, release: dict[str, Any], message: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if self.store.fanned_out(rid):
            log.info("alert_fanout", extra={"release": rid, "outcome": "duplicate"})
            return {"outcome": "duplicate", "release": rid}
        public = self.as_public_now(rid, release, message)
        if public is None:
            return {"outcome": "withdrawn", "release": rid}
        release = public
        pages = 0
        recipients = 0
        chunk: list[str] = []
        out: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal pages
            if chunk:
                out.append(
                    {
                        "type": "recipients",
                        "id": rid,
                        "release": release,
                        "recipients": list(chunk),
                        "source": (message or {}).get("source"),
                    }
                )
                chunk.clear()
                pages += 1
            if len(out) >= 10:
                self.queue.put(out)
                out.clear()

        for items in self.store.pages():
            for item in items:
                if item.get("state") == "active" and matches(item, release):
                    chunk.append(item["sk"])
                    recipients += 1
                    if len(chunk) >= self.page:
                        flush()
        flush()
        if out:
            self.queue.put(out)
        self.store.mark_fanned_out(rid, self.clock(), pages)
        log.info(
            "alert_fanout",
            extra={"release": rid, "outcome": "queued", "pages": pages, "recipients": recipients},
        )
        return {"outcome": "queued", "release": rid, "pages": pages, "recipients": recipients}

    def deliver(
        self,
        rid: str,
        release: dict[str, Any],
        recipients: list[str],
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        counts = {"sent": 0, "skipped": 0, "duplicate": 0, "failed": 0}
        public = self.as_public_now(rid, release, message)
        if public is None:
            return {"outcome": "withdrawn", "release": rid, "skipped": len(recipients)}
        release = public
        current = self.store.get_many(recipients)
        throttled: MailThrottled | None = None
        for address_id in recipients:
            item = current.get(address_id)
            if (
                not item
                or item.get("state") != "active"
                or not item.get("email")
                or not matches(item, release)
            ):
                counts["skipped"] += 1
                continue
            if throttled is not None:
                continue  # SES is saturated: leave the rest to the retried message
            # composed before the claim: a message that cannot be rendered claims nothing
            mail = self.composer.alert(
                item["email"],
                release,
                self.unsubscribe_url(address_id, item.get("nonce", "")),
                scope_text(item.get("topics") or [], item.get("kinds") or []),
            )
            if not self.store.claim(rid, address_id, self.clock()):
                counts["duplicate"] += 1
                continue
            try:
                message_id = self.mailer.send(mail)
            except MailRejected as exc:
                self.store.settle(rid, address_id, "failed", exc.code or str(exc))
                counts["failed"] += 1
                log.warning(
                    "alert_send",
                    extra={
                        "release": rid,
                        "subscriber": address_id[:16],
                        "outcome": "rejected",
                        "code": exc.code,
                    },
                )
                continue
            except MailThrottled as exc:
                self.store.unclaim(rid, address_id)
                throttled = exc
                continue
            self.store.settle(rid, address_id, "sent", message_id)
            counts["sent"] += 1
        log.info("alert_deliver", extra={"release": rid, **counts})
        if throttled is not None:
            raise throttled  # the message comes back; what was sent is recorded
        return {"outcome": "delivered", "release": rid, **counts}

    def as_public_now(
        self, rid: str, release: dict[str, Any], message: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Once per release and batch: the release as the site shows it now (a
        typo fixed since it was queued is fixed in the e-mail too), or None
        when it was withdrawn or is not listed. Not listed, ``message`` comes
        back once ``RECHECK_S`` later; still not listed then, the release is
        recorded as withdrawn, so no retry, later page or duplicate
        announcement sends its alert, even if the release is put back later
        (its alert was stopped; putting it back is an update, and updates
        never alert)."""
        if rid in self.checked:
            return self.checked[rid]
        withdrawn = self.store.withdrawn(rid)
        source = message.get("source") if message else None
        entry = None if withdrawn else self.public.listed(release, source)
        if entry is None and not withdrawn:
            if message is not None and not message.get("recheck"):
                self.queue.put([{**message, "recheck": True}], delay=RECHECK_S)
                log.info("alert_recheck", extra={"release": rid})
                return None
            self.store.mark_withdrawn(rid, self.clock())
            log.info("alert_withdrawn", extra={"release": rid})
        self.checked[rid] = None if entry is None else alert_payload(entry, self.settings.site_url)
        return self.checked[rid]

    def confirmation(self, address_id: str, nonce: str, at: int) -> dict[str, Any]:
        """The confirmation of a sign-up SES could not take at the time, once:
        only while that sign-up is still the pending one (a newer sign-up sends
        its own), claimed like an alert so a duplicate message sends nothing."""
        item = self.store.get(address_id)
        if not item or item.get("pending_nonce") != nonce or not item.get("email"):
            log.info("confirmation_send", extra={"subscriber": address_id[:16], "outcome": "stale"})
            return {"outcome": "stale"}
        expires = at + CONFIRM_VALID_DAYS * 86400
        link = subscription_link(
            self.settings.links_url, "confirm", self.keys.make(CONFIRM, address_id, nonce, expires)
        )
        scope = scope_text(item.get("pending_topics") or [], item.get("pending_kinds") or [])
        mail = self.composer.confirmation(item["email"], link, scope)
        record = f"confirm#{nonce}"
        if not self.store.claim(record, address_id, self.clock()):
            return {"outcome": "duplicate"}
        try:
            message_id = self.mailer.send(mail)
        except MailRejected as exc:
            self.store.settle(record, address_id, "failed", exc.code or str(exc))
            return {"outcome": "rejected"}
        except MailThrottled:
            self.store.unclaim(record, address_id)
            raise  # the message comes back
        self.store.settle(record, address_id, "sent", message_id)
        log.info("confirmation_send", extra={"subscriber": address_id[:16], "outcome": "sent"})
        return {"outcome": "sent"}

    def unsubscribe_url(self, address_id: str, nonce: str) -> str:
        token = self.keys.make(UNSUBSCRIBE, address_id, nonce)
        return subscription_link(self.settings.links_url, "unsubscribe", token)

    def handle_batch(self, bodies: Iterable[str]) -> list[dict[str, Any]]:
        """Each message of a batch on its own: one that fails does not stop the
        others (except SES throttling, which stops the rest); the first failure
        is raised at the end so SQS redelivers the batch, and the records make
        the redelivery send nothing twice."""
        results: list[dict[str, Any]] = []
        failure: Exception | None = None
        for body in bodies:
            if isinstance(failure, MailThrottled):
                # SES is saturated for every message: each would wait out its
                # backoff (about 6 s) and ten would outlast the function's timeout
                results.append({"outcome": "retry", "error": "MailThrottled"})
                continue
            try:
                results.append(self.handle(body))
            except (NewsroomError, StorageError) as exc:
                failure = failure or exc
                results.append({"outcome": "retry", "error": type(exc).__name__})
        if failure is not None:
            raise failure
        return results
