"""Publish queue messages -> decoded source keys, and the partial batch response."""

from __future__ import annotations

import json

from support import EVENTS

from chalicelib.queue import Message, batch_keys, batch_response, parse_batch, parse_record


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_keys_are_url_decoded_as_s3_encodes_them() -> None:
    [message] = parse_batch(load("sqs_put_encoded_key.json"))
    assert message.keys == ("releases/My Release (1).json",)
    assert message.message_id.endswith("000000000001")
    assert message.sent_ms == 1764064800000


def test_the_s3_test_event_names_no_key() -> None:
    [message] = parse_batch(load("sqs_s3_test_event.json"))
    assert message.keys == ()


def test_a_mixed_batch_names_each_key_once_in_first_seen_order() -> None:
    messages = parse_batch(load("sqs_mixed_batch.json"))
    assert len(messages) == 6
    assert batch_keys(messages) == [
        "releases/old news.json",
        "releases/Café (draft).json",
        "media/clinic.jpg",
    ]


def test_a_body_that_is_not_a_notification_is_acknowledged_not_retried() -> None:
    for body in ("not json", "[1, 2]", '"text"', "", '{"Records": [{"s3": {}}, 7]}'):
        message = parse_record({"messageId": "m1", "body": body})
        assert message.keys == ()
    assert batch_response([Message("m1", ())], ["releases/a.json"]) == {"batchItemFailures": []}


def test_only_messages_naming_a_failed_key_come_back() -> None:
    messages = [
        Message("a", ("releases/one.json",)),
        Message("b", ("releases/two.json", "releases/one.json")),
        Message("c", ("releases/two.json",)),
        Message("d", ()),
    ]
    assert batch_response(messages, {"releases/one.json"}) == {
        "batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]
    }


def notification(*keys: str, bucket: str = "newsroom-source") -> str:
    """An S3 notification body naming ``keys`` (already encoded) in ``bucket``."""
    records = [{"s3": {"bucket": {"name": bucket}, "object": {"key": k}}} for k in keys]
    return json.dumps({"Records": records})


def test_a_malformed_notification_names_no_key_and_never_raises() -> None:
    """Whatever the body holds, parsing a record never raises: one broken
    message must not fail the batch (every other message with it)."""
    for body in (
        '{"Records": [{"s3": null}, {"s3": {"object": null}}, {"s3": 5}, {"s3": "x"}]}',
        '{"Records": [{"s3": {"object": {"key": 5}}}, {"s3": {"object": "releases/a.json"}}]}',
        '{"Records": "releases/a.json"}',
        '{"Records": {"s3": {"object": {"key": "releases/a.json"}}}}',
        '{"Records": [{"s3": {"bucket": "b", "object": {"key": "releases/a.json"}}}]}',
        '{"Type": "Notification", "Message": 7}',
        '{"Type": "Notification", "Message": "not json"}',
    ):
        message = parse_record({"messageId": "m1", "body": body})
        assert message.keys in ((), ("releases/a.json",)), body
    for record in (
        {"messageId": "m1", "body": {"Records": []}},
        {"messageId": "m1", "body": notification("releases/a.json"), "attributes": ["x"]},
        {"messageId": None, "body": None, "attributes": {"SentTimestamp": None}},
    ):
        parse_record(record)


def test_an_sns_envelope_is_unwrapped() -> None:
    """S3 -> SNS -> SQS (a topic fanning the bucket's events out to more than
    the publisher) without raw message delivery: the notification is the
    envelope's ``Message``."""
    envelope = {
        "Type": "Notification",
        "MessageId": "0a7d4d6b-6c4f-5b0e-9f7c-1e2d3c4b5a69",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:newsroom-source-events",
        "Subject": "Amazon S3 Notification",
        "Message": notification("releases/a+b%2Bc.json"),
    }
    message = parse_record({"messageId": "m1", "body": json.dumps(envelope)})
    assert message.keys == ("releases/a b+c.json",)
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "newsroom-source"}
    envelope["Message"] = json.dumps(test_event)
    assert parse_record({"messageId": "m1", "body": json.dumps(envelope)}).keys == ()


def test_records_of_another_bucket_name_no_key() -> None:
    """A queue that also gets another bucket's events (a staging bucket, a
    copied notification rule): its keys are not ours to converge."""
    body = json.dumps(
        {
            "Records": [
                *json.loads(notification("releases/theirs.json", bucket="staging-source"))[
                    "Records"
                ],
                *json.loads(notification("releases/ours.json"))["Records"],
            ]
        }
    )
    record = {"messageId": "m1", "body": body}
    assert parse_record(record, bucket="newsroom-source").keys == ("releases/ours.json",)
    assert parse_batch({"Records": [record]}, bucket="newsroom-source")[0].keys == (
        "releases/ours.json",
    )


def test_folder_markers_name_no_key() -> None:
    """The console's "Create folder" writes a zero-byte ``media/2024/``: a
    folder, never a file to publish or to write a receipt for."""
    body = notification("media/2024/", "releases/", "media/", "media/2024/photo.jpg")
    assert parse_record({"messageId": "m1", "body": body}).keys == ("media/2024/photo.jpg",)
