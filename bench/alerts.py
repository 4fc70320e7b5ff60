"""One release to N subscribers through the alert queue, in-process moto.

N confirmed subscribers are written to the subscribers table (the items the
confirm route writes). The publisher's listener (``AlertAnnouncer``) announces
one first-time-public release; then every message on the alert queue is handed
to the real ``send_alerts`` handler **twice** (SQS event JSON, as Lambda
delivers it; at-least-once delivery at its worst) until the queue is empty.
Requests are counted per service and operation with botocore's ``before-call``
hook on the handler's clients (S3: the check that the release is still listed); e-mails are counted per recipient from what
moto's SES accepted, so a duplicate would show.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from typing import Any

from newsroom.alerts_local import create_alert_resources
from newsroom.lambda_sqs import queue_arn, sqs_event

from . import publish

TABLE, QUEUE, SENDER = "bench-subscribers", "bench-alerts", "alerts@bench.example"
ALERT_ENV = {
    "NEWSROOM_SUBSCRIBERS_TABLE": TABLE,
    "NEWSROOM_ALERT_QUEUE": QUEUE,
    "NEWSROOM_MAIL_FROM": SENDER,
    "NEWSROOM_API_URL": "https://api.bench.example",
    "NEWSROOM_ALERT_SECRET": "bench-secret-0123456789abcdef",
}
ENTRY = {
    "slug": "bench-alert",
    "title": "Coastal clinics reopen after the storm",
    "kind": "report",
    "published_at": "2026-11-30T10:00:00+00:00",
    "summary": "Three clinics reopen in Bayline.",
    "url": "https://news.example.org/releases/bench-alert/",
    "image": {"url": "/media/clinic.jpg", "alt": "Nurses outside a clinic"},
    "topics": ["Clean Water"],
    "language": "en",
}


def _resources(n: int) -> str:
    import boto3

    from chalicelib.alerts.store import profile_key
    from chalicelib.alerts.tokens import Keys, new_nonce

    url = create_alert_resources(
        lambda name: boto3.client(name, region_name="us-east-1"), TABLE, QUEUE, SENDER
    )
    # the release is public: its month file lists it (the sender checks that)
    s3, public = boto3.client("s3", region_name="us-east-1"), os.environ["NEWSROOM_PUBLIC_BUCKET"]
    s3.create_bucket(Bucket=public)
    month = {"version": 2, "month": ENTRY["published_at"][:7], "releases": [ENTRY]}
    s3.put_object(Bucket=public, Key=f"index/{month['month']}.json", Body=json.dumps(month))
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    keys = Keys(ALERT_ENV["NEWSROOM_ALERT_SECRET"])
    items = []
    for i in range(n):
        email = f"reader{i:05d}@bench.example"
        nonce = new_nonce()
        key = profile_key(keys.address_id(email))
        items.append(
            {
                "pk": {"S": key["pk"]},
                "sk": {"S": key["sk"]},
                "state": {"S": "active"},
                "email": {"S": email},
                "topics": {"L": []},
                "kinds": {"L": []},
                "nonce": {"S": nonce},
                "confirmed_nonce": {"S": nonce},
            }
        )
    for i in range(0, len(items), 25):
        ddb.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]}
        )
    return url


def measure(n: int) -> dict[str, Any]:

    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    with publish.environment(ALERT_ENV), mock_aws():
        import app
        from chalicelib import service
        from chalicelib.listeners import Commit, Published

        logging.getLogger("newsroom").setLevel(logging.WARNING)
        queue_url = _resources(n)
        requests: Counter[str] = Counter()
        clients = {s: service.aws_client(s) for s in ("dynamodb", "sqs", "sesv2")}
        clients["s3"] = service.s3_client()  # the check that the release is still public

        def count(event_name: str, **_: Any) -> None:
            _, service_name, op = event_name.split(".")
            requests[f"{service_name} {op}"] += 1

        for c in clients.values():
            c.meta.events.register("before-call.*.*", count, unique_id="bench-alerts")
        sender = service.alert_sender()
        sender.mailer.base_delay = 0.01
        # the pump plays Lambda's event source mapping: its own client, not counted
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        started = time.perf_counter()
        service.alert_announcer(service.settings()).on_commit(
            Commit(published=[Published("releases/bench-alert.json", None, ENTRY, True)])
        )
        deliveries = invocations = 0
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                break
            for _ in range(2):  # every message delivered twice
                app.send_alerts(sqs_event(got, queue_arn(QUEUE)), None)
                invocations += 1
                deliveries += len(got)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
        seconds = time.perf_counter() - started
        for c in clients.values():
            c.meta.events.unregister("before-call.*.*", unique_id="bench-alerts")
        backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        per_address = Counter(
            a for m in backend.sent_messages for addrs in m.destinations.values() for a in addrs
        )
    total = sum(requests.values())
    return {
        "subscribers": n,
        "seconds": round(seconds, 2),
        "emails": sum(per_address.values()),
        "recipients": len(per_address),
        "duplicates": sum(c - 1 for c in per_address.values() if c > 1),
        "emails_per_second": round(sum(per_address.values()) / seconds, 1),
        "queue_messages": deliveries // 2,
        "handler_invocations": invocations,
        "requests": total,
        "requests_per_recipient": round(total / max(n, 1), 3),
        "by_operation": dict(sorted(requests.items())),
    }


if __name__ == "__main__":  # python -m bench.alerts [N]
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=1))
