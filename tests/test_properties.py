"""Property: any history of uploads, overwrites and deletes, with its S3 events
duplicated, delayed and shuffled, ends with the public bucket byte for byte
equal to a full build of the final source state.

Hypothesis generates the history: each step either changes the source bucket
(which queues that change's event) or delivers a queued event, possibly
keeping it queued to deliver it again later. After the history every queued
event is delivered. Documents are valid (an invalid overwrite keeps the
previous version live by design, which a build of the final state cannot
know), may be embargoed (before or after the clock), may change slug, and the
slugs of different files never collide. Files may be language versions of
one another (a shared ``translation_key``), so their pages link to each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invariants import link_problems, secrecy_problems
from support import (
    SOURCE,
    dumps,
    empty_buckets,
    make_publisher,
    make_release,
    public_tree,
    renderer,
)

from newsroom.build import build_site

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# past every embargo the strategy draws: a live release given an embargoed
# update stays live as it was until then (contract), which a full build of the
# final sources cannot know, so the sites are compared once every embargo is over
LATER = datetime(2027, 6, 1, tzinfo=UTC)
KEYS = ["releases/alpha.json", "releases/Beta Two.json", "releases/gamma+(3).json"]
EMBARGO_MARK = "EMBARGO-MARK"

documents = st.builds(
    lambda k, variant, title, when, kind, topics, embargo, summary, language, tkey: make_release(
        slug=f"doc{k}-{variant}",
        title=title,
        published_at=when,
        kind=kind,
        topics=topics,
        embargo_until=embargo,
        summary=(EMBARGO_MARK if embargo and embargo > "2026-11-25" else summary),
        language=language,
        translation_key=tkey,
    ),
    # language versions: a version appearing, changing language or key, or
    # going re-renders its siblings (two of one language: the newest is linked)
    language=st.sampled_from(["en", "fr", "ar"]),
    tkey=st.sampled_from([None, "shared", "shared", "other"]),
    k=st.just(0),  # replaced per key below
    variant=st.sampled_from(["a", "b"]),
    title=st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20
    ).filter(str.strip),
    when=st.sampled_from(
        [
            "2025-12-31T23:30:00-05:00",
            "2026-01-01T04:30:00+00:00",
            "2026-03-10T09:00:00+02:00",
            "2024-02-29T12:00:00Z",
        ]
    ),
    kind=st.sampled_from(["press-release", "report", "statement", "victory"]),
    topics=st.lists(
        st.sampled_from(["Water", "Schools", "Côte d'Ivoire"]), max_size=2, unique=True
    ),
    embargo=st.sampled_from([None, None, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
    # valid documents only (an invalid overwrite keeps the live version, which
    # a full build of the final sources cannot know): no control characters
    summary=st.none()
    | st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30
    ).filter(str.strip),
)

change = st.tuples(st.integers(0, len(KEYS) - 1), st.none() | documents)  # None: delete
step = st.one_of(
    st.tuples(st.just("change"), change),
    st.tuples(st.just("deliver"), st.tuples(st.integers(0, 1000), st.booleans())),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=1, max_size=14))
def test_any_event_history_converges_to_a_full_build(aws: Any, history: list) -> None:
    empty_buckets(aws)
    clock = [NOW]
    publisher = make_publisher(aws, lambda: clock[0])
    queued: list[str] = []
    for kind, arg in history:
        if kind == "change":
            k, doc = arg
            key = KEYS[k]
            if doc is None:
                aws.delete_object(Bucket=SOURCE, Key=key)
            else:
                doc = {**doc, "slug": doc["slug"].replace("doc0", f"doc{k}")}
                aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
            queued.append(key)
        elif queued:
            i, keep = arg
            key = queued[i % len(queued)] if keep else queued.pop(i % len(queued))
            publisher.sync(key)
            tree = public_tree(aws)
            assert link_problems(tree) == []
            assert secrecy_problems(tree, [EMBARGO_MARK]) == []
    for key in queued:
        publisher.sync(key)
    clock[0] = LATER
    publisher.publish_due()

    sources = sorted(
        (k, v) for k, v in public_tree(aws, SOURCE).items() if k.startswith("releases/")
    )
    expected = build_site(sources, renderer(), now=LATER, workers=1).files
    tree = public_tree(aws)
    if not any(kind == "change" for kind, _ in history):
        assert tree == {}  # no upload, no event, nothing public
    else:
        assert tree == expected
