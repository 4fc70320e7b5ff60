"""The site plan (``chalicelib.core.site``): which pages a change must
rewrite without rendering their old version."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from support import renderer

from chalicelib.core.index import Entry, Index
from chalicelib.core.site import changed_keys, plan, render_page, shows_other_releases


def entry(n: int, day: int, **kw: Any) -> Entry:
    fields: dict[str, Any] = dict(
        slug=f"story-{n}",
        title=f"Story {n}",
        kind="report" if n % 2 else "statement",
        published_at=datetime.fromisoformat(f"2025-03-{day:02d}T10:00:00+00:00"),
        updated_at=None,
        summary=f"Summary {n}",
        url=f"https://news.example.org/releases/story-{n}/",
        image=None,
        topics=("Water", "Schools") if n % 3 else ("Water",),
        language="en",
        source_key=f"releases/story-{n}.json",
        revision=f"rev-{n}",
    )
    fields.update(kw)
    return Entry(**fields)


BEFORE = [entry(n, n) for n in range(1, 8)]
CHANGES = {
    "a new release": BEFORE + [entry(9, 20)],
    "an older release": BEFORE + [entry(9, 1)],
    "one withdrawn": BEFORE[1:],
    "a title edited": [replace(BEFORE[0], title="Edited")] + BEFORE[1:],
    "a body edited": [replace(BEFORE[0], revision="rev-new")] + BEFORE[1:],
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_page_that_lists_other_releases_has_other_bytes(change: str) -> None:
    r = renderer()
    old, new = plan(Index.build(BEFORE), r), plan(Index.build(CHANGES[change]), r)
    write, _gone = changed_keys(old, new)
    differ = [k for k in write if k in old and shows_other_releases(old[k], new[k])]
    for key in differ:
        assert render_page(key, old[key], r) != render_page(key, new[key], r), key
    if change in ("a title edited", "a body edited"):
        assert differ == [], "the same releases: the old version is rendered to compare"
    else:
        assert "index.json" in differ or "archive/2025/03/index.html" in differ
