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
