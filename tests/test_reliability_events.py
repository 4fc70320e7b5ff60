"""At-least-once, unordered S3 events through the real handler.

Every test drives ``app.sync_release`` exactly as Lambda does, with S3
notification JSON (keys URL-encoded as S3 sends them), and checks that the
public bucket ends where the source bucket *now* says it should: byte for byte
what a full build of the current sources gives. Duplicates change no byte.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from invariants import link_problems
from support import (
    SOURCE,
    dumps,
    make_release,
    public_tree,
    queue_event,
    receipt,
    renderer,
    s3_event,
    sqs_event,
)

from newsroom.build import build_site


def encoded(key: str) -> str:
    """A key as S3 puts it in a notification (``quote_plus`` of UTF-8, ``/`` kept)."""
    return quote_plus(key, safe="/")


def deliver(app_module: Any, key: str, removed: bool = False) -> list[dict]:
    name = "ObjectRemoved:Delete" if removed else "ObjectCreated:Put"
    return app_module.sync_release(sqs_event(encoded(key), name), None)


def put(s3: Any, key: str, doc: Any) -> None:
    s3.put_object(Bucket=SOURCE, Key=key, Body=doc if isinstance(doc, bytes) else dumps(doc))


def build_now(s3: Any) -> dict[str, bytes]:
    """A full build of what the source bucket holds now."""
    sources = sorted(
        (k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/")
    )
    now = datetime.now(UTC)
    return build_site(sources, renderer(), now=now, workers=1).files


def write_requests(app_module: Any) -> int:
    from chalicelib import service

    counters = service.publisher().public.counters.requests
    return counters.get("PutObject", 0) + counters.get("DeleteObject", 0)


def test_the_same_event_twice_changes_no_byte(app_module: Any, aws: Any) -> None:
    key = "releases/Büro Bericht (2).json"
    put(aws, key, make_release(slug="buro-bericht"))
    deliver(app_module, key)
    before = public_tree(aws)
    writes = write_requests(app_module)
    deliver(app_module, key)
    assert public_tree(aws) == before
    assert write_requests(app_module) == writes, "a duplicate writes nothing public"
    assert receipt(aws, key)["status"] == "published"
    assert before == build_now(aws)


def test_a_batched_event_with_duplicate_records(app_module: Any, aws: Any) -> None:
    put(aws, "releases/one.json", make_release(title="One"))
    put(aws, "releases/two two.json", make_release(title="Two", slug="two"))
    # one notification with three records, and the same notification again as
    # a second message of the batch (S3 and SQS both deliver at least once)
    notification = s3_event("releases/one.json")
    for k in ("releases/two+two.json", "releases/one.json"):
        notification["Records"].append(copy.deepcopy(notification["Records"][0]))
        notification["Records"][-1]["s3"]["object"]["key"] = k
    out = app_module.sync_release(queue_event(notification, notification), None)
    assert out == {"batchItemFailures": []}
    assert receipt(aws, "releases/one.json")["status"] == "published"
    assert receipt(aws, "releases/two two.json")["status"] == "published"
    assert public_tree(aws) == build_now(aws)


def test_events_for_one_key_out_of_order_end_on_the_current_version(
    app_module: Any, aws: Any
) -> None:
    key = "releases/story.json"
    put(aws, key, make_release(title="First draft"))
    put(aws, key, make_release(title="Final text"))
    # the second upload's event arrives first, the first upload's event late
    deliver(app_module, key)
    deliver(app_module, key)
    tree = public_tree(aws)
    assert b"Final text" in tree["releases/story/index.html"]
    assert b"First draft" not in b"".join(tree.values())
    assert tree == build_now(aws)


def test_a_removed_event_arriving_after_a_reupload_keeps_the_release(
    app_module: Any, aws: Any
) -> None:
    key = "releases/come back.json"
    put(aws, key, make_release(slug="come-back", title="Back again"))
    deliver(app_module, key)
    aws.delete_object(Bucket=SOURCE, Key=key)
    put(aws, key, make_release(slug="come-back", title="Back again, edited"))
    deliver(app_module, key)  # the re-upload's event
    deliver(app_module, key, removed=True)  # the delete's event, late
    tree = public_tree(aws)
    assert b"Back again, edited" in tree["releases/come-back/index.html"]
    assert receipt(aws, key)["status"] == "published"
    assert tree == build_now(aws)


def test_a_created_event_arriving_after_the_delete_does_not_resurrect(
    app_module: Any, aws: Any
) -> None:
    key = "releases/gone.json"
    put(aws, key, make_release(title="Soon gone"))
    deliver(app_module, key)
    aws.delete_object(Bucket=SOURCE, Key=key)
    deliver(app_module, key, removed=True)
    empty = public_tree(aws)
    deliver(app_module, key)  # late created event, delivered again
    deliver(app_module, key, removed=True)  # and the removal, twice
    assert public_tree(aws) == empty == build_now(aws)
    assert "releases/gone/index.html" not in empty
    assert receipt(aws, key)["status"] == "unpublished"


def test_slug_change_with_a_late_event_for_the_old_version(app_module: Any, aws: Any) -> None:
    key = "releases/renamed.json"
    put(aws, key, make_release(slug="old-name"))
    deliver(app_module, key)
    put(aws, key, make_release(slug="new-name"))
    deliver(app_module, key)
    deliver(app_module, key)  # the first upload's event, late
    tree = public_tree(aws)
    assert "releases/old-name/index.html" not in tree
    assert "releases/new-name/index.html" in tree
    assert tree == build_now(aws)
    index = json.loads(tree["index.json"])
    assert "withdrawing" not in index


def test_the_freed_slug_goes_to_the_second_file_only_after_the_holder_is_deleted(
    app_module: Any, aws: Any
) -> None:
    put(aws, "releases/a.json", make_release(slug="shared", title="Holder"))
    put(aws, "releases/b.json", make_release(slug="shared", title="Claimant"))
    deliver(app_module, "releases/a.json")
    deliver(app_module, "releases/b.json")
    assert receipt(aws, "releases/b.json")["status"] == "rejected"
    aws.delete_object(Bucket=SOURCE, Key="releases/a.json")
    deliver(app_module, "releases/a.json", removed=True)
    deliver(app_module, "releases/b.json")  # staff re-save b
    tree = public_tree(aws)
    assert b"Claimant" in tree["releases/shared/index.html"]
    assert b"Holder" not in b"".join(tree.values())
    assert link_problems(tree) == []


def test_a_random_storm_of_events_ends_on_the_current_state(app_module: Any, aws: Any) -> None:
    import random

    rng = random.Random(3)
    keys = [f"releases/storm {i} (draft).json" for i in range(5)]
    events: list[tuple[str, bool]] = []
    for step in range(25):
        key = rng.choice(keys)
        if rng.random() < 0.3:
            aws.delete_object(Bucket=SOURCE, Key=key)
            events.append((key, True))
        else:
            doc = make_release(
                slug=f"storm-{keys.index(key)}",
                title=f"Storm step {step}",
                published_at=f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00+00:00",
                topics=rng.sample(["Wind", "Rain", "Flood"], rng.randint(0, 2)),
            )
            put(aws, key, doc)
            events.append((key, False))
    deliveries = events + rng.sample(events, 10)  # duplicates
    rng.shuffle(deliveries)
    for key, removed in deliveries:
        deliver(app_module, key, removed)
    for key in keys:  # every key's latest event has been delivered at least once
        deliver(app_module, key)
    tree = public_tree(aws)
    assert tree == build_now(aws)
    assert link_problems(tree) == []


def test_a_rename_whose_events_share_a_batch_keeps_the_release_live(
    app_module: Any, aws: Any
) -> None:
    """``aws s3 mv`` or the console's rename: a copy, then a delete of the
    holder, milliseconds apart, so both events come in one batch (in either
    order). The new file takes the slug the old one frees, as it does when
    the events come one at a time; never rejected naming a file that is gone."""
    for n, order in enumerate(((0, 1), (1, 0))):
        old, new = f"releases/old {n}.json", f"releases/new {n}.json"
        put(aws, old, make_release(slug=f"story-{n}", title="Story"))
        deliver(app_module, old)
        aws.copy_object(Bucket=SOURCE, Key=new, CopySource={"Bucket": SOURCE, "Key": old})
        aws.delete_object(Bucket=SOURCE, Key=old)
        events = [
            s3_event(encoded(new), "ObjectCreated:Copy"),
            s3_event(encoded(old), "ObjectRemoved:DeleteMarkerCreated"),
        ]
        out = app_module.sync_release(queue_event(*(events[i] for i in order)), None)
        assert out == {"batchItemFailures": []}
        assert receipt(aws, new)["status"] == "published", receipt(aws, new)["errors"]
        assert receipt(aws, old)["status"] == "unpublished"
        assert f"releases/story-{n}/index.html" in public_tree(aws)
    assert public_tree(aws) == build_now(aws)
