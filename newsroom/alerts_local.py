"""The e-mail alert path of ``newsroom demo``, on the demo's local AWS (moto).

It plays the parts AWS plays, nothing more: the subscribers table, the alert
queue and the verified sender exist on the local endpoint; API Gateway is
``chalice.local`` dispatching ``/subscriptions*`` to the real Chalice routes;
Lambda's event source mapping is ``AlertPump``, handing each alert-queue
message to the real ``send_alerts`` as SQS event JSON; and the recipients'
inboxes are ``Outbox``: every message SES accepted is written to
``outbox/<time>-<to-hash>.eml`` exactly as the SendEmail request carried it,
with one printed line per message (the address itself is never printed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .lambda_sqs import EventSourceMapping, queue_arn

TABLE = "newsroom-demo-subscribers"
QUEUE = "newsroom-demo-alerts"
MAIL_FROM = "alerts@harborlight.example"
REGION = "us-east-1"


def alert_settings(site_url: str) -> dict[str, str]:
    """The demo's alert settings: the API is the demo's own host."""
    return {
        "NEWSROOM_ALERT_QUEUE": QUEUE,
        "NEWSROOM_SUBSCRIBERS_TABLE": TABLE,
        "NEWSROOM_MAIL_FROM": MAIL_FROM,
        "NEWSROOM_API_URL": site_url,
        "NEWSROOM_ALERT_SECRET": secrets.token_hex(32),
    }


def create_alert_resources(
    client: Callable[[str], Any], table: str = TABLE, queue: str = QUEUE, sender: str = MAIL_FROM
) -> str:
    """The subscribers table (pk/sk, on demand), the alert queue and the
    verified sender, as infra/newsroom.yaml declares them; the queue URL.
    ``client(service)`` gives a boto3 client of the AWS to create them on."""
    client("dynamodb").create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client("ses").verify_email_identity(EmailAddress=sender)
    return client("sqs").create_queue(QueueName=queue)["QueueUrl"]


def create_resources(endpoint: str) -> str:
    """The demo's alert resources on its local endpoint; the queue URL."""
    import boto3

    def client(name: str) -> Any:
        return boto3.session.Session().client(
            name, endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id="demo", aws_secret_access_key="demo",
        )  # fmt: skip

    return create_alert_resources(client)


# API Gateway ----------------------------------------------------------------------
@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class LocalApi:
    """``/subscriptions*`` requests handed to the real routes through chalice.local."""

    PREFIX = "/subscriptions"

    def __init__(self, app: Any, before: Callable[[], None] = lambda: None) -> None:
        from chalice.config import Config
        from chalice.local import LocalGateway

        self.gateway = LocalGateway(app, Config())
        self.before = before
        self.lock = threading.Lock()  # one request at a time, like one Lambda instance

    @classmethod
    def handles(cls, path: str) -> bool:
        return path == cls.PREFIX or path.startswith((cls.PREFIX + "/", cls.PREFIX + "?"))

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        from chalice.local import LocalGatewayException

        try:
            with self.lock:
                self.before()
                resp = self.gateway.handle_request(method, path, headers, body or None)
        except LocalGatewayException as exc:
            return ApiResponse(exc.CODE, dict(exc.headers), exc.body or b"")
        raw = resp.get("body") or b""
        if resp.get("isBase64Encoded"):
            raw = base64.b64decode(raw)
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        headers_out = {k: str(v) for k, v in (resp.get("headers") or {}).items()}
        return ApiResponse(int(resp["statusCode"]), headers_out, data)


class AlertPump:
    """Receives alert-queue messages and invokes ``send_alerts`` with them; a
    message is deleted only when the handler returned (else SQS delivers it
    again after its visibility timeout, as on AWS)."""

    def __init__(
        self, sqs: Any, queue_url: str, handler: Callable[[dict[str, Any], Any], Any]
    ) -> None:
        self.mapping = EventSourceMapping(sqs, queue_url, queue_arn(QUEUE), handler)

    def once(self, wait: int = 0) -> int:
        return self.mapping.poll(wait)[0]

    def drain(self, rounds: int = 100) -> int:
        total = 0
        for _ in range(rounds):
            n = self.once()
            if not n:
                break
            total += n
        return total

    def run(self, stop: threading.Event, interval: float, warn: Callable[[str], None]) -> None:
        while not stop.is_set():
            try:
                if not self.once():
                    stop.wait(interval)
            except Exception as exc:  # the handler raised: SQS retries it, as on AWS
                warn(f"send_alerts: {type(exc).__name__}: {exc} (retried)")
                stop.wait(interval)


# The recipients' inboxes ------------------------------------------------------------
def to_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:12]


class MailCapture:
    """Every message SES accepted, as the SendEmail request carried it (moto
    keeps only the HTML part and no headers). Hooked on an SES client: the
    parameters are noted before the request is built and handed to
    ``accepted`` once SES answered with a MessageId, so a refused message is
    never seen."""

    _NOTE, _SENT = "before-parameter-build.sesv2.SendEmail", "after-call.sesv2.SendEmail"

    def attach(self, client: Any) -> None:
        """Hook on ``client``; hooking on the same client again is a no-op."""
        events = client.meta.events
        events.register(self._NOTE, self._note, unique_id=f"mail-note-{id(self)}")
        events.register(self._SENT, self._sent, unique_id=f"mail-sent-{id(self)}")

    def detach(self, client: Any) -> None:
        events = client.meta.events
        events.unregister(self._NOTE, unique_id=f"mail-note-{id(self)}")
        events.unregister(self._SENT, unique_id=f"mail-sent-{id(self)}")

    @staticmethod
    def _note(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["outbox_params"] = json.loads(json.dumps(params))

    def _sent(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("outbox_params")
        if not params or not parsed.get("MessageId"):
            return
        from chalicelib.alerts.mail import OutgoingMail

        simple = params["Content"]["Simple"]
        mail = OutgoingMail(
            to=params["Destination"]["ToAddresses"][0],
            subject=simple["Subject"]["Data"],
            text=simple["Body"]["Text"]["Data"],
            html=simple["Body"]["Html"]["Data"],
            headers=tuple((h["Name"], h["Value"]) for h in simple.get("Headers", [])),
        )
        self.accepted(mail, params["FromEmailAddress"], parsed["MessageId"])

    def accepted(self, mail: Any, sender: str, message_id: str) -> None:
        """One message SES accepted (an ``OutgoingMail``)."""
        raise NotImplementedError


class Outbox(MailCapture):
    """Writes every message SES accepted as ``<time>-<to-hash>.eml`` and says one
    line for it (hooked on the handlers' own SES client), so a refused message
    leaves no file."""

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = Path(folder)
        self.say = say
        self.files: list[Path] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        super().attach(client)

    def accepted(self, mail: Any, sender: str, message_id: str) -> None:
        now = datetime.now(UTC)
        with self._lock:
            name = f"{now:%Y%m%dT%H%M%S}.{now.microsecond:06d}Z-{to_hash(mail.to)}.eml"
            path = self.folder / name
            path.write_bytes(mail.as_mime(sender, message_id, now))
            self.files.append(path)
        self.say(f"mail: {path}  {mail.subject!r}")


class DemoAlerts:
    """Everything the demo adds for alerts: resources on the local endpoint,
    the local API, the queue pump and the outbox."""

    def __init__(
        self, outbox: Path, say: Callable[[str], None], warn: Callable[[str], None]
    ) -> None:
        self.outbox = Outbox(outbox, say)
        self.warn = warn
        self.api: LocalApi | None = None
        self.pump: AlertPump | None = None
        self._ses: Any = None

    def start(self, endpoint: str, app_module: Any) -> None:
        """After the demo's environment points at ``endpoint`` (alert settings included)."""
        import boto3

        queue_url = create_resources(endpoint)
        sqs = boto3.session.Session().client(
            "sqs", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id="demo", aws_secret_access_key="demo",
        )  # fmt: skip
        send_alerts = app_module.send_alerts

        def send(event: dict[str, Any], context: Any) -> Any:
            self.hook_mail()
            return send_alerts(event, context)

        self.pump = AlertPump(sqs, queue_url, send)
        self.api = LocalApi(app_module.app, before=self.hook_mail)
        self.hook_mail()

    def hook_mail(self) -> None:
        """Hook the outbox on the handlers' own SES client as it is now: before
        each handler call, since the client is built again after the services
        are reset (``chalicelib.service.reset``); hooking twice is a no-op."""
        from chalicelib import service

        client = service.aws_client("sesv2")
        if client is not self._ses:
            if self._ses is not None:
                self.outbox.detach(self._ses)
            self.outbox.attach(client)
            self._ses = client

    def run(self, stop: threading.Event, interval: float) -> None:
        assert self.pump is not None
        self.pump.run(stop, interval, self.warn)

    def drain(self) -> int:
        return self.pump.drain() if self.pump else 0

    def stop(self) -> None:
        if self._ses is not None:
            self.outbox.detach(self._ses)
            self._ses = None
