"""A large archive written straight into a (moto) source bucket, without publishing it.

``seed_archive`` writes the publisher's private state for ``n`` releases as
``newsroom rebuild`` would commit it (``chalicelib.state.commit_full_state``):
the head, one object per month, topic and kind. Nothing is rendered, so
100,000 releases take seconds; the publisher never reads the public pages of
the archive, so none are written. The releases run back from ``END`` at a
constant ``density`` per month; every other release carries ``BIG_TOPIC``
(a topic holding half the archive), and ``SMALL_TOPIC`` is on exactly
``SMALL_COUNT`` releases whatever the size.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .corpus import KINDS, SITE_URL, TOPICS, WORDS

END = datetime(2025, 6, 14, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
DENSITY = 100  # releases per month
BIG_TOPIC = "Clean Water"
SMALL_TOPIC = "Wetlands"
SMALL_COUNT = 3
OTHER_TOPICS = tuple(t for t in TOPICS if t not in (BIG_TOPIC, SMALL_TOPIC))


@dataclass
class Seeded:
    size: int
    newest: datetime  # the newest release's published_at
    months: int


def _entry(i: int, when: datetime, rng: random.Random, topics: list[str]) -> Any:
    from chalicelib.core.index import Entry

    slug = f"release-{i:06d}"
    image = None
    if rng.random() < 0.33:
        image = {
            "url": f"https://images.example.org/{i}.jpg",
            "alt": f"A photo for release {i}",
            "caption": " ".join(rng.choice(WORDS) for _ in range(8)).capitalize() + ".",
            "credit": "Harbor Light Alliance",
        }
    summary = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))).capitalize() + "…"
    return Entry(
        slug=slug,
        title=" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 11))).capitalize(),
        kind=rng.choice(KINDS),
        published_at=when,
        updated_at=None,
        summary=summary,
        url=f"{SITE_URL}/releases/{slug}/",
        image=image,
        topics=tuple(topics),
        language="en",
        source_key=f"releases/{slug}.json",
        revision=hashlib.sha256(slug.encode()).hexdigest()[:16],
        source_digest=hashlib.md5(slug.encode(), usedforsecurity=False).hexdigest(),
    )


def archive_entries(n: int, *, density: int = DENSITY, seed: int = 7) -> list[Any]:
    """``n`` entries, newest first, ``density`` per month back from ``END``."""
    rng = random.Random(seed)
    step = timedelta(days=30) / density
    out = []
    for i in range(n):
        topics = [BIG_TOPIC] if i % 2 == 0 else []
        if i < SMALL_COUNT:
            topics.append(SMALL_TOPIC)
        topics += rng.sample(OTHER_TOPICS, rng.choice((0, 1, 1, 2)))
        out.append(_entry(i, END - step * i, rng, topics))
    return out


def seed_archive(client: Any, bucket: str, n: int, *, density: int = DENSITY) -> Seeded:
    """Write the private state of an ``n``-release archive into ``bucket``."""
    from chalicelib.core.index import Index
    from chalicelib.core.render import Renderer
    from chalicelib.settings import Settings
    from chalicelib.state import commit_full_state
    from chalicelib.storage import S3Storage

    entries = archive_entries(n, density=density)
    theme = Renderer(Settings.from_env()).theme
    index = Index.build(entries).with_theme(theme)
    storage = S3Storage(client, bucket)
    assert commit_full_state(storage, index, None, hints=False) is not None
    months = len({e.month_key for e in entries})
    return Seeded(n, entries[0].published_at, months)
