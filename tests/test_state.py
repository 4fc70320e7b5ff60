"""The publisher's bounded private state (chalicelib/state), over the local-folder storage.

Every view a working copy gives the site plan must equal what a full grouping
of the same entries gives (``core.view.FullView``): that is what keeps the
Lambda path and ``newsroom build`` byte-identical.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.core.index import Entry, Index, Withdrawal
from chalicelib.core.view import SLICE_SIZE, FullView
from chalicelib.keys import slug_hint_key
from chalicelib.state import (
    Draft,
    Snapshot,
    StaleState,
    commit_full_state,
    media_referenced,
    object_key,
)
from chalicelib.state.objects import LOG_ITEMS
from chalicelib.storage import LocalStorage

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def entry(n: int, *, days: float, topics: tuple[str, ...] = ("Climate",), **kw: object) -> Entry:
    fields: dict = dict(
        slug=f"r{n}",
        title=f"Title {n}",
        kind=("report", "statement")[n % 2],
        published_at=START + timedelta(days=days),
        updated_at=None,
        summary="Summary",
        url=f"https://n.example/releases/r{n}/",
        image=None,
        topics=topics,
        language="en",
        source_key=f"releases/r{n}.json",
        revision=f"rev{n}",
    )
    fields.update(kw)
    return Entry(**fields)


def assert_same_view(draft: Draft, entries: list[Entry]) -> None:
    full = FullView(Index.build(entries).entries)
    assert draft.newest == full.newest
    assert draft.months == full.months
    assert draft.kinds == full.kinds
    assert draft.topics == full.topics
    for month, _n in full.months:
        assert draft.month(month) == full.month(month)
    for slug, _name, _n in full.topics:
        assert draft.topic(slug) == full.topic(slug)
    for kind, _n in full.kinds:
        assert draft.kind(kind) == full.kind(kind)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path)


def test_entry_by_entry_changes_give_the_views_of_a_full_grouping(storage: LocalStorage) -> None:
    """Publishes, updates that move a release to another month or topic, and
    removals (which make a topic's newest list refill from its months), each
    committed as it would be by a publish, read back from a fresh snapshot."""
    rng = random.Random(3)
    live: dict[str, Entry] = {}
    for step in range(90):
        n = rng.randrange(40)
        key = f"releases/r{n}.json"
        snap = Snapshot.read(storage)
        draft = Draft(snap)
        prev = draft.entry_of(key)
        assert prev == live.get(key)
        if prev is not None and rng.random() < 0.3:
            new = None
            del live[key]
        else:
            topics = tuple(rng.sample(["Climate", "Water", "Courts"], rng.randint(0, 2)))
            new = entry(n, days=rng.uniform(0, 120), topics=topics, revision=f"s{step}")
            live[key] = new
        draft.put(prev, new)
        assert draft.commit(snap.etag) is not None
        assert_same_view(Draft(Snapshot.read(storage)), list(live.values()))


def test_a_topic_larger_than_its_front_page_refills_after_a_removal(storage: LocalStorage) -> None:
    entries = [entry(n, days=n) for n in range(SLICE_SIZE + 5)]
    assert commit_full_state(storage, Index.build(entries), None) is not None
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    newest = entries[-1]
    draft.put(draft.entry_of(newest.source_key), None)
    assert draft.commit(snap.etag) is not None
    view = Draft(Snapshot.read(storage))
    assert len(view.topic("climate").newest) == SLICE_SIZE
    assert_same_view(view, entries[:-1])


def test_a_stale_hint_is_checked_against_the_month_and_harmless(storage: LocalStorage) -> None:
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=40))
    assert draft.commit(snap.etag) is not None
    # a hint left by an attempt that never committed: it names a month without the slug
    storage.put(
        slug_hint_key("r2"), b'{"months":["2024-02"]}', content_type="a", cache_control="b"
    )
    current = Draft(Snapshot.read(storage))
    assert current.holder("r2") is None
    assert current.holder("r1") == "releases/r1.json"


def test_an_attempt_that_loses_its_commit_never_takes_the_winners_month_off_a_hint(
    storage: LocalStorage,
) -> None:
    """Two attempts move one entry from January to different months; the
    winner commits, the loser writes its hint after it and loses. The hint
    must still name the winner's month (an overwrite named only the loser's
    month and January: the committed entry could no longer be found)."""
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=1))
    assert draft.commit(snap.etag) is not None
    base = Snapshot.read(storage)
    winner, loser = Draft(base), Draft(Snapshot.read(storage))
    winner.put(winner.entry_of("releases/r1.json"), entry(1, days=70))  # March
    loser.put(loser.entry_of("releases/r1.json"), entry(1, days=40))  # February
    assert winner.commit(base.etag) is not None
    assert loser.commit(base.etag) is None
    found = Snapshot.read(storage).entry_of("releases/r1.json")
    assert found is not None and found.month_key == "2024-03"
    assert Draft(Snapshot.read(storage)).holder("r1") == "releases/r1.json"


def test_a_reader_of_a_replaced_version_is_told_to_start_over(storage: LocalStorage) -> None:
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=1))
    assert draft.commit(snap.etag) is not None
    old = Snapshot.read(storage)
    later = Draft(Snapshot.read(storage))
    later.put(later.entry_of("releases/r1.json"), entry(1, days=2, revision="two"))
    assert later.commit(later.snap.etag) is not None
    with pytest.raises(StaleState):
        old.month("2024-01")
    with pytest.raises(StaleState):
        Draft(old).put(None, entry(3, days=3))
    # and a commit over an older head loses (the caller starts over)
    stale = Draft(old)
    stale.withdrawing = (Withdrawal("r9", "releases/r9.json"),)
    assert stale.commit_head(old.etag) is None
    assert Snapshot.read(storage).head.withdrawing == ()


def test_committed_objects_are_never_changed_in_place(storage: LocalStorage) -> None:
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=1))
    draft.commit(snap.etag)
    first = Snapshot.read(storage).head.months["2024-01"][0]
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(2, days=2))
    draft.commit(snap.etag)
    second = Snapshot.read(storage).head.months["2024-01"][0]
    assert first != second
    assert storage.get(object_key("month", "2024-01", first)) is None  # replaced, deleted
    assert storage.get(object_key("month", "2024-01", second)) is not None


def test_a_rebuilds_commit_records_what_each_release_references(storage: LocalStorage) -> None:
    """After ``newsroom rebuild`` (or the first one after an upgrade), a media
    file shared by two releases stays referenced when one of them goes."""
    shared = ("media/logo.png",)
    entries = [entry(1, days=1, media=shared), entry(2, days=2, media=shared)]
    assert commit_full_state(storage, Index.build(entries), None) is not None
    lookup = Snapshot.read(storage).entry_of
    assert media_referenced(storage, "media/logo.png", lookup)
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(draft.entry_of("releases/r1.json"), None)
    draft.commit(snap.etag)
    assert media_referenced(storage, "media/logo.png", Snapshot.read(storage).entry_of)
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(draft.entry_of("releases/r2.json"), None)
    draft.commit(snap.etag)
    assert not media_referenced(storage, "media/logo.png", Snapshot.read(storage).entry_of)


def test_the_single_state_object_of_an_earlier_version_is_taken_over(aws) -> None:
    """After an upgrade, the first publish reads the releases the old
    ``state/index.json`` lists instead of starting from an empty site."""
    from support import PUBLIC, SOURCE, dumps, make_release, public_tree, renderer

    from chalicelib.keys import LEGACY_STATE_KEY
    from chalicelib.publisher import Publisher
    from chalicelib.storage import S3Storage

    def publisher() -> Publisher:
        return Publisher(
            S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), sleep=lambda _s: None
        )

    aws.put_object(Bucket=SOURCE, Key="releases/old.json", Body=dumps(make_release(slug="old")))
    publisher().sync("releases/old.json")
    # the state as an earlier version kept it: one object
    legacy = Snapshot.read(S3Storage(aws, SOURCE)).index()
    for key in [o["Key"] for o in aws.list_objects_v2(Bucket=SOURCE)["Contents"]]:
        if key.startswith("state/"):
            aws.delete_object(Bucket=SOURCE, Key=key)
    aws.put_object(Bucket=SOURCE, Key=LEGACY_STATE_KEY, Body=legacy.to_bytes())

    aws.put_object(Bucket=SOURCE, Key="releases/new.json", Body=dumps(make_release(slug="new")))
    assert publisher().sync("releases/new.json").status == "published"
    front = public_tree(aws)["index.html"]
    assert b"/releases/old/" in front and b"/releases/new/" in front
    holder = Draft(Snapshot.read(S3Storage(aws, SOURCE))).holder("old")
    assert holder == "releases/old.json"


def test_the_head_logs_what_each_commit_changed(storage: LocalStorage) -> None:
    """A batch that read the head at ``first`` learns from a later head what
    every commit since changed; a head the log no longer reaches gives None."""
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=1))
    first = draft.commit(snap.etag)
    etags = [first]
    for n in (2, 3):
        snap = Snapshot.read(storage)
        draft = Draft(snap)
        draft.put(None, entry(n, days=n))
        draft.pages = {f"topics/climate/page-{n}.html"}
        etags.append(draft.commit(snap.etag))
    head = Snapshot.read(storage).head
    since = head.since(first)
    assert since is not None
    assert since.keys == {"releases/r2.json", "releases/r3.json"}
    assert since.pages == {"topics/climate/page-2.html", "topics/climate/page-3.html"}
    assert since.hints == {slug_hint_key("r2"): ["2024-01"], slug_hint_key("r3"): ["2024-01"]}
    assert head.since(etags[1]) is not None and head.since(etags[1]).keys == {"releases/r3.json"}
    assert head.since('"not-a-head-of-this-log"') is None
    # bounded: a commit of many pages pushes the oldest entries out
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(4, days=4))
    draft.pages = {f"archive/p{i}.html" for i in range(LOG_ITEMS)}
    draft.commit(snap.etag)
    head = Snapshot.read(storage).head
    assert len(head.log) == 1 and head.since(first) is None


def test_one_listing_rules_out_the_source_hints_a_batch_would_read(
    storage: LocalStorage,
) -> None:
    """Source hints exist only for releases published under a slug their file
    name does not imply: one listing tells which of a batch's are absent."""
    snap = Snapshot.read(storage)
    draft = Draft(snap)
    draft.put(None, entry(1, days=40, slug="another-slug"))
    assert draft.commit(snap.etag) is not None
    hints = [f"state/sources/r{n}.json" for n in (1, 2, 3)]
    snap = Snapshot.read(storage)
    snap.rule_out("state/sources/", hints)
    assert snap._hints == {hints[1]: [], hints[2]: []}  # r1's is read as before
    assert Draft(snap).entry_of("releases/r1.json") is not None
