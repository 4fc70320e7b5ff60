"""The search corpus listener: what each commit made public or took down, kept
per month in the source bucket (``search/<yyyy>-<mm>.json``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import SOURCE, dumps, make_release

from chalicelib.core.model import parse_release
from chalicelib.errors import StorageError
from chalicelib.listeners import Commit, Published, Withdrawn
from chalicelib.search.corpus import SearchCorpus, corpus_key
from chalicelib.storage import LocalStorage, S3Storage


def published(slug: str, **overrides: Any) -> Published:
    doc = make_release(slug=slug, **overrides)
    key = f"releases/{slug}.json"
    release = parse_release(dumps(doc), name=key)
    return Published(key, release, {"slug": slug, "summary": release.summary}, True)


def month(s3: Any, m: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=SOURCE, Key=corpus_key(m))["Body"].read())


def test_a_commit_writes_its_releases_into_their_months(aws: Any):
    corpus = SearchCorpus(S3Storage(aws, SOURCE))
    corpus.on_commit(
        Commit(
            published=[
                published("b-dec", title="Storm relief"),
                published("a-dec", title="Harbour wall"),
                published("jan", published_at="2019-01-03T10:00:00+01:00"),
            ]
        )
    )
    dec = month(aws, "2018-12")
    assert [r["slug"] for r in dec["records"]] == ["a-dec", "b-dec"]
    assert dec["records"][1]["title"] == "Storm relief"
    assert [r["slug"] for r in month(aws, "2019-01")["records"]] == ["jan"]
    # private: no contact address anywhere in the corpus
    raw = aws.get_object(Bucket=SOURCE, Key=corpus_key("2018-12"))["Body"].read()
    assert b"@" not in raw


def test_the_month_follows_the_release_s_own_offset(aws: Any):
    corpus = SearchCorpus(S3Storage(aws, SOURCE))
    # 22:30 on New Year's Eve in New York is already January in UTC
    corpus.on_commit(Commit(published=[published("eve", published_at="2018-12-31T22:30:00-05:00")]))
    assert [r["slug"] for r in month(aws, "2018-12")["records"]] == ["eve"]


def test_an_update_replaces_the_record_and_a_withdrawal_removes_it(aws: Any):
    corpus = SearchCorpus(S3Storage(aws, SOURCE))
    corpus.on_commit(Commit(published=[published("x"), published("y")]))
    corpus.on_commit(Commit(published=[published("x", title="Clinics reopen, updated")]))
    assert [r["title"] for r in month(aws, "2018-12")["records"]][0] == "Clinics reopen, updated"
    corpus.on_commit(Commit(withdrawn=[Withdrawn("releases/y.json", "y", "2018-12")]))
    assert [r["slug"] for r in month(aws, "2018-12")["records"]] == ["x"]


def test_the_same_commit_twice_changes_nothing(aws: Any):
    corpus = SearchCorpus(S3Storage(aws, SOURCE))
    commit = Commit(
        published=[published("x")], withdrawn=[Withdrawn("releases/z.json", "z", "2018-12")]
    )
    corpus.on_commit(commit)
    etag = aws.head_object(Bucket=SOURCE, Key=corpus_key("2018-12"))["ETag"]
    storage = S3Storage(aws, SOURCE)
    SearchCorpus(storage).on_commit(commit)
    assert aws.head_object(Bucket=SOURCE, Key=corpus_key("2018-12"))["ETag"] == etag
    assert storage.counters.requests.get("put", 0) == 0


def test_withdrawing_from_an_empty_month_writes_nothing(aws: Any):
    SearchCorpus(S3Storage(aws, SOURCE)).on_commit(
        Commit(withdrawn=[Withdrawn("releases/z.json", "z", "2017-05")])
    )
    assert "Contents" not in aws.list_objects_v2(Bucket=SOURCE, Prefix="search/")


class RacingStorage(LocalStorage):
    """A folder storage where another writer changes the month file between
    this listener's read and its conditional write, ``races`` times."""

    def __init__(self, root: Any, races: int) -> None:
        super().__init__(root)
        self.races = races

    def get(self, key: str):  # noqa: ANN201
        obj = super().get(key)
        if self.races and key.startswith("search/"):
            self.races -= 1
            other = SearchCorpus(LocalStorage(self.root))
            other.on_commit(Commit(published=[published(f"other-{self.races}")]))
        return obj


def test_a_lost_race_is_read_again_and_keeps_both_writers(tmp_path: Any):
    storage = RacingStorage(tmp_path, races=2)
    SearchCorpus(storage).on_commit(Commit(published=[published("mine")]))
    doc = json.loads((tmp_path / "search" / "2018-12.json").read_bytes())
    assert [r["slug"] for r in doc["records"]] == ["mine", "other-0", "other-1"]


def test_a_race_lost_every_time_is_an_infrastructure_error(tmp_path: Any):
    storage = RacingStorage(tmp_path, races=100)
    with pytest.raises(StorageError, match="search corpus of 2018-12"):
        SearchCorpus(storage, attempts=3).on_commit(Commit(published=[published("mine")]))


def test_a_month_kept_encoded_gives_the_bytes_of_a_fresh_read(aws: Any):
    """The instance that wrote a month file last keeps its records encoded
    and writes the next version from them: the same bytes as an instance
    that reads the file afresh; a file another writer changed meanwhile is
    read again, never overwritten from what was kept."""
    from chalicelib.search.corpus import month_bytes, parse_month

    storage = S3Storage(aws, SOURCE)
    warm, fresh = SearchCorpus(storage), SearchCorpus(storage)
    warm.on_commit(Commit(published=[published("a"), published("b", title="B <&> é")]))
    fresh.on_commit(Commit(published=[published("c")]))  # warm's copy is stale now
    warm.on_commit(Commit(published=[published("d")], withdrawn=[Withdrawn("x", "a", "2018-12")]))
    doc = month(aws, "2018-12")
    assert [r["slug"] for r in doc["records"]] == ["b", "c", "d"]
    raw = aws.get_object(Bucket=SOURCE, Key=corpus_key("2018-12"))["Body"].read()
    assert raw == month_bytes("2018-12", parse_month(raw))
    warm.on_commit(Commit(published=[published("e")]))  # from what it kept
    again = aws.get_object(Bucket=SOURCE, Key=corpus_key("2018-12"))["Body"].read()
    assert again == month_bytes("2018-12", parse_month(again))
    assert [r["slug"] for r in json.loads(again)["records"]] == ["b", "c", "d", "e"]
