"""Lambda's SQS event source mapping, as the local tooling plays it.

On AWS, Lambda receives a batch from a queue, hands it to the consumer as
event JSON, and deletes the messages the consumer did not name in
``batchItemFailures`` (``ReportBatchItemFailures``); a message it does not
delete comes back after the queue's visibility timeout, and after
``maxReceiveCount`` receives goes to the dead-letter queue. The demo (publish
and alert queues), the benchmarks and the tests play that part with these
pieces, on moto's SQS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
# as infra/newsroom.yaml declares the publish queue's redrive
MAX_RECEIVE_COUNT = 5

Handler = Callable[[dict[str, Any], Any], Any]


def queue_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """One received SQS message as Lambda presents it to the consumer."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {"ApproximateReceiveCount": "1"},
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3],
    }


def sqs_event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """The event Lambda gives an SQS consumer for ``messages`` (as received)."""
    return {"Records": [sqs_record(m, arn) for m in messages]}


def create_queue(sqs: Any, name: str, *, visibility_timeout: int = 30) -> tuple[str, str]:
    """A standard queue with its dead-letter queue (redrive after
    ``MAX_RECEIVE_COUNT`` receives); its URL and ARN."""
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(MAX_RECEIVE_COUNT),
    }
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def notify_queue(s3: Any, bucket: str, arn: str) -> None:
    """The source bucket's notification of every ``releases/*.json`` and
    ``media/*`` change to the publish queue, as infra/newsroom.yaml has it."""
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    rules = [
        ("releases", [("prefix", "releases/"), ("suffix", ".json")]),
        ("media", [("prefix", "media/")]),
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"newsroom-{rid}",
                    "QueueArn": arn,
                    "Events": events,
                    "Filter": {"Key": {"FilterRules": [{"Name": n, "Value": v} for n, v in r]}},
                }
                for rid, r in rules
            ]
        },
    )


class EventSourceMapping:
    """Hands ``handler`` the queue's messages, a batch at a time, as Lambda does."""

    def __init__(
        self, sqs: Any, url: str, arn: str, handler: Handler, *, batch_size: int = 10
    ) -> None:
        self.sqs = sqs
        self.url = url
        self.arn = arn
        self.handler = handler
        self.batch_size = batch_size

    def poll(self, wait: int = 0) -> tuple[int, int]:
        """Receive one batch, invoke the handler, delete what it did not
        report failed; (messages received, messages failed). When the handler
        raises, nothing is deleted and the exception propagates."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0, 0
        answer = self.handler(sqs_event(messages, self.arn), None)
        failures = answer.get("batchItemFailures", []) if isinstance(answer, dict) else []
        failed = {f["itemIdentifier"] for f in failures}
        done = [m for m in messages if m["MessageId"] not in failed]
        for n in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[n : n + 10])
                ],
            )
        return len(messages), len(failed)
