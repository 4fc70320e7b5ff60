"""The index: the private state round-trips exactly; the public index.json
(version 2) and its month files carry public fields only."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from chalicelib.core.index import (
    NEWEST,
    Announcement,
    Entry,
    Index,
    Withdrawal,
    month_file,
    months,
    public_index,
)


def entry(slug: str, when: str, **kw: object) -> Entry:
    fields: dict = dict(
        slug=slug,
        title=f"Title {slug} \u2028 <b>&",
        kind="report",
        published_at=datetime.fromisoformat(when),
        updated_at=None,
        summary="Summary é",
        url=f"https://n.example/releases/{slug}/",
        image={"url": "/media/a.jpg", "alt": "A", "caption": None, "credit": None},
        topics=("Climate",),
        language="en",
        source_key=f"releases/{slug}.json",
        revision="abc",
    )
    fields.update(kw)
    return Entry(**fields)


def reference_bytes(index: Index) -> bytes:
    doc: dict = {
        "version": 2,
        "theme": index.theme,
        "releases": [e.to_json() for e in index.entries],
    }
    if index.withdrawing:
        doc["withdrawing"] = [
            {"slug": w.slug, "source_key": w.source_key} for w in index.withdrawing
        ]
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def test_serialisation_is_plain_json_of_the_document() -> None:
    idx = Index.build(
        [entry("b", "2020-01-01T00:00:00+01:00"), entry("a", "2021-01-01T00:00:00Z")],
        (Withdrawal("gone", "releases/gone.json"),),
    ).with_theme("t1")
    assert idx.to_bytes() == reference_bytes(idx)
    assert Index().to_bytes() == reference_bytes(Index())
    doc = json.loads(idx.to_bytes())
    assert doc["version"] == 2 and [r["slug"] for r in doc["releases"]] == ["a", "b"]


def test_round_trip_is_exact() -> None:
    idx = Index.build(
        [
            entry(
                "a",
                "2021-01-01T00:00:00-05:00",
                updated_at=datetime.fromisoformat("2021-01-02T00:00:00-05:00"),
            )
        ]
    )
    again = Index.from_bytes(idx.to_bytes())
    assert again == idx and again.to_bytes() == idx.to_bytes()
    assert again.entries[0].published_at.isoformat() == "2021-01-01T00:00:00-05:00"


def test_newest_first_then_slug() -> None:
    idx = Index.build(
        [
            entry("c", "2020-01-01T10:00:00Z"),
            entry("a", "2020-01-01T05:00:00-05:00"),  # same instant as c
            entry("z", "2022-01-01T00:00:00Z"),
        ]
    )
    assert [e.slug for e in idx.entries] == ["z", "a", "c"]


def test_slug_holder_counts_withdrawals_in_flight() -> None:
    idx = Index.build(
        [entry("a", "2020-01-01T00:00:00Z")], (Withdrawal("b", "releases/old-b.json"),)
    )
    assert idx.slug_holder("a") == "releases/a.json"
    assert idx.slug_holder("b") == "releases/old-b.json"
    assert idx.slug_holder("c") is None


def test_pending_announcements_round_trip() -> None:
    owed = (Announcement("published", "releases/a.json", "a", "2021-01", first_time=True),)
    idx = Index.build([entry("a", "2021-01-01T00:00:00Z")]).with_announcements(owed)
    again = Index.from_bytes(idx.to_bytes())
    assert again.announce == owed
    assert again.without_announcements(owed).announce == ()


PRIVATE = {"source_key", "revision", "source_digest"}


def test_public_index_is_version_2_without_private_fields() -> None:
    entries = tuple(
        entry(f"r{n:03d}", f"20{10 + n // 12:02d}-{n % 12 + 1:02d}-05T10:00:00-05:00")
        for n in range(130)
    )
    idx = Index.build(list(entries))
    doc = json.loads(public_index(idx.entries[:NEWEST], months(idx.entries), "https://n.example"))
    assert doc["version"] == 2
    assert len(doc["releases"]) == NEWEST == 100
    assert [r["slug"] for r in doc["releases"]] == [e.slug for e in idx.entries[:100]]
    assert not any(PRIVATE & set(r) for r in doc["releases"])
    assert doc["months"][0] == {
        "month": "2020-10",
        "url": "https://n.example/index/2020-10.json",
        "count": 1,
    }
    assert sum(m["count"] for m in doc["months"]) == 130
    month = json.loads(
        month_file("2015-03", tuple(e for e in idx.entries if e.month_key == "2015-03"))
    )
    assert month["month"] == "2015-03" and [r["slug"] for r in month["releases"]] == ["r062"]
    assert not any(PRIVATE & set(r) for r in month["releases"])


def test_a_month_follows_the_release_s_own_offset() -> None:
    late = entry("late", "2018-12-31T22:30:00-05:00")  # 2019-01-01 in UTC
    assert late.month_key == "2018-12"
    assert months((late,)) == (("2018-12", 1),)


def test_a_changed_copy_derives_its_month_and_topic_slugs_again() -> None:
    """Both are kept once computed; a copy made with other inputs must not
    keep the original's (the full build's plan asks for them many times)."""
    first = entry("a", "2018-12-31T22:30:00-05:00", topics=("Clé Eau",))
    assert (first.month_key, first.topic_slugs) == ("2018-12", ("cle-eau",))
    moved = replace(first, published_at=datetime.fromisoformat("2019-02-01T00:00:00Z"))
    retagged = replace(first, topics=("Harbour",))
    assert (moved.month_key, moved.topic_slugs) == ("2019-02", ("cle-eau",))
    assert (retagged.month_key, retagged.topic_slugs) == ("2018-12", ("harbour",))
    assert replace(first) == first


def test_translation_key_is_public_when_set() -> None:
    assert "translation_key" not in entry("a", "2021-01-01T00:00:00Z").public_json()
    tagged = entry("a", "2021-01-01T00:00:00Z", translation_key="floods-2021")
    assert tagged.public_json()["translation_key"] == "floods-2021"
