"""The storage port: S3 (moto) and a local folder behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import PUBLIC

from chalicelib.errors import PreconditionFailed, StorageError
from chalicelib.keys import SCHEDULE_KEY
from chalicelib.receipts import Scheduled, schedule_from_bytes, update_schedule
from chalicelib.storage import LocalStorage, S3Storage, Storage, md5_etag, put_if_unchanged


@pytest.fixture(params=["s3", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "s3":
        s3 = request.getfixturevalue("aws")
        yield S3Storage(s3, PUBLIC)
    else:
        yield LocalStorage(tmp_path / "site")


def put(storage: Storage, key: str, body: bytes, **kw: Any) -> str:
    return storage.put(key, body, content_type="text/plain", cache_control="no-cache", **kw)


def test_get_missing_is_none(storage: Storage) -> None:
    assert storage.get("nope/index.html") is None


def test_put_get_roundtrip_with_md5_etag(storage: Storage) -> None:
    etag = put(storage, "a/b/index.html", b"hello")
    obj = storage.get("a/b/index.html")
    assert obj is not None and obj.body == b"hello"
    assert obj.etag == etag == md5_etag(b"hello")


def test_a_get_with_a_limit_leaves_a_larger_body_unread(storage: Storage) -> None:
    """A reader that can use at most ``limit`` bytes (a release: 1 MiB) is told
    the size of a larger object instead of getting its body: a 2 GB file
    uploaded by mistake must not exhaust the memory of every run that meets it."""
    etag = put(storage, "releases/huge.json", b"x" * 100)
    obj = storage.get("releases/huge.json", limit=99)
    assert obj is not None and obj.body == b"" and obj.size == 100 and obj.etag == etag
    whole = storage.get("releases/huge.json", limit=100)
    assert whole is not None and whole.body == b"x" * 100 and whole.size == 100
    assert storage.get("releases/absent.json", limit=1) is None


def test_if_none_match_creates_only_once(storage: Storage) -> None:
    put(storage, "index.json", b"{}", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        put(storage, "index.json", b"{}", if_none_match=True)


def test_if_match_rejects_a_stale_etag(storage: Storage) -> None:
    first = put(storage, "index.json", b"1")
    second = put(storage, "index.json", b"2", if_match=first)
    with pytest.raises(PreconditionFailed):
        put(storage, "index.json", b"3", if_match=first)
    put(storage, "index.json", b"3", if_match=second)
    assert storage.get("index.json").body == b"3"


def test_if_match_on_a_key_deleted_since_read_is_a_failed_condition(storage: Storage) -> None:
    """S3 answers 404 NoSuchKey, not 412, when the object read is gone: for a
    read-modify-write it is the same lost race, to re-read and retry."""
    first = put(storage, "index.json", b"1")
    storage.delete("index.json")
    with pytest.raises(PreconditionFailed):
        put(storage, "index.json", b"2", if_match=first)
    assert storage.get("index.json") is None


def test_delete_is_idempotent(storage: Storage) -> None:
    put(storage, "x/index.html", b"x")
    storage.delete("x/index.html")
    storage.delete("x/index.html")
    assert storage.get("x/index.html") is None


def test_delete_many_deletes_every_key_and_passes_over_absent_ones(storage: Storage) -> None:
    for key in ("x/1.html", "x/2.html", "y/3.html", "keep.html"):
        put(storage, key, b"-")
    before = storage.counters.total
    storage.delete_many(["x/1.html", "x/2.html", "y/3.html", "never-there.html"])
    if isinstance(storage, S3Storage):
        assert storage.counters.total - before == 1, "one DeleteObjects request for the lot"
        assert storage.counters.requests.get("DeleteObjects") == 1
    assert list(storage.list("")) == ["keep.html"]


def test_list_by_prefix_sorted(storage: Storage) -> None:
    for key in ["releases/b/index.html", "releases/a/index.html", "index.html"]:
        put(storage, key, b"x")
    assert list(storage.list("releases/")) == ["releases/a/index.html", "releases/b/index.html"]


def test_counters_count_requests_and_bytes(storage: Storage) -> None:
    put(storage, "a.html", b"12345")
    storage.get("a.html")
    assert storage.counters.requests["PutObject"] == 1
    assert storage.counters.requests["GetObject"] == 1
    assert storage.counters.bytes_written == 5


@pytest.mark.parametrize("key", ["../escape.html", "/abs.html", "a/../../b.html", "a//b.html", ""])
def test_local_storage_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).put(key, b"x", content_type="text/plain", cache_control="x")
    assert not (tmp_path.parent / "escape.html").exists()


def test_s3_content_type_and_cache_control_are_stored(aws: Any) -> None:
    S3Storage(aws, PUBLIC).put(
        "index.html", b"<p>", content_type="text/html; charset=utf-8", cache_control="max-age=60"
    )
    head = aws.head_object(Bucket=PUBLIC, Key="index.html")
    assert (
        head["ContentType"] == "text/html; charset=utf-8" and head["CacheControl"] == "max-age=60"
    )


def test_s3_errors_become_storage_errors(aws: Any) -> None:
    with pytest.raises(StorageError):
        S3Storage(aws, "no-such-bucket").put(
            "a", b"x", content_type="text/plain", cache_control="x"
        )


def test_conditional_writes_work_without_sdk_support_for_them(aws: Any) -> None:
    """The Lambda runtime's built-in boto3 may predate S3 conditional writes;
    the headers then go out through botocore's event hooks, with the same effect."""
    import boto3

    client = boto3.client("s3", region_name="us-east-1")
    storage = S3Storage(client, PUBLIC, native_conditions=False)
    first = put(storage, "index.json", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        put(storage, "index.json", b"x", if_none_match=True)
    second = put(storage, "index.json", b"2", if_match=first)
    with pytest.raises(PreconditionFailed):
        put(storage, "index.json", b"3", if_match=first)
    assert second == md5_etag(b"2")
    assert storage.get("index.json").body == b"2"


def test_put_if_unchanged_writes_only_over_the_etag_read(storage: Storage) -> None:
    def cas(body: bytes, etag: str | None) -> str | None:
        return put_if_unchanged(
            storage, "index.json", body, etag, content_type="text/plain", cache_control="x"
        )

    first = cas(b"1", None)
    assert first == md5_etag(b"1")
    assert cas(b"x", None) is None  # no longer absent
    assert cas(b"2", first) == md5_etag(b"2")
    assert cas(b"y", first) is None  # stale ETag
    assert storage.get("index.json").body == b"2"


def _entry(name: str) -> Scheduled:
    return Scheduled(f"releases/{name}.json", name, datetime(2030, 1, 1, tzinfo=UTC))


def test_update_schedule_retries_a_lost_race_without_dropping_the_other_entry(
    storage: Storage,
) -> None:
    conflicts: list[int] = []

    def edit(items: list[Scheduled]) -> list[Scheduled]:
        if not conflicts and not items:  # another writer lands between read and write
            update_schedule(storage, lambda _: [_entry("theirs")], attempts=1)
        return [*items, _entry("mine")]

    update_schedule(storage, edit, attempts=3, on_conflict=conflicts.append)
    assert conflicts == [1]
    stored = storage.get(SCHEDULE_KEY)
    assert sorted(s.slug for s in schedule_from_bytes(stored.body)) == ["mine", "theirs"]


def test_update_schedule_writes_nothing_when_unchanged_and_gives_up_when_always_raced(
    storage: Storage,
) -> None:
    update_schedule(storage, lambda items: None, attempts=1)
    update_schedule(storage, lambda items: items, attempts=1)
    assert storage.get(SCHEDULE_KEY) is None and "PutObject" not in storage.counters.requests

    n = 0

    def always_raced(items: list[Scheduled]) -> list[Scheduled]:
        nonlocal n
        n += 1
        update_schedule(storage, lambda _: [_entry(f"other{n}")], attempts=1)
        return [_entry("mine")]

    with pytest.raises(StorageError, match="embargo schedule"):
        update_schedule(storage, always_raced, attempts=3)
    assert n == 3


def test_s3_list_etags_maps_keys_under_the_prefix_to_their_etags(aws: Any) -> None:
    storage = S3Storage(aws, PUBLIC)
    for key, body in [("a/1.html", b"one"), ("a/2.html", b"two"), ("b/3.html", b"three")]:
        put(storage, key, body)
    assert storage.list_etags("a/") == {"a/1.html": md5_etag(b"one"), "a/2.html": md5_etag(b"two")}
    assert list(storage.list("a/")) == ["a/1.html", "a/2.html"]
