"""index.json: every public release, newest first, round-tripping exactly."""

from __future__ import annotations

import json
from datetime import datetime

from chalicelib.core.index import Entry, Index, Withdrawal


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
        "version": 1,
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
    assert doc["version"] == 1 and [r["slug"] for r in doc["releases"]] == ["a", "b"]


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
