"""One publish's round trips: the requests of a one-key publish on moto, in
the rounds they run in (``bench.trace``: botocore hooks record each request's
start and end; every request waits ``DELAY`` first, as a round trip from a
Lambda does, so the requests of one step of the pool overlap and the steps
follow one another). The order the guarantees need is checked on the same
trace: the release page before every page that links to it, every page and
state object before the head's commit, the receipt after it."""

from __future__ import annotations

from typing import Any

import pytest
from support import SOURCE, dumps, make_release, publish, sqs_event

from bench.trace import Request, RequestTrace
from chalicelib import service

DELAY = 0.1  # long against the few ms a step needs to start its requests


@pytest.fixture
def traced(app_module: Any, aws: Any) -> Any:
    """The archive a publish lands in (two releases, published untraced),
    then a traced publish of a new release in the same month and topic."""
    for n in (1, 2):
        doc = make_release(slug=f"older-{n}", published_at=f"2025-06-0{n}T10:00:00+00:00")
        assert publish(app_module, aws, f"releases/older-{n}.json", doc) == {
            "batchItemFailures": []
        }
    trace = RequestTrace().attach(service.s3_client())

    def run(slug: str, **overrides: Any) -> RequestTrace:
        trace.clear()
        doc = make_release(**{"slug": slug, "published_at": "2025-06-09T10:00:00+00:00", **overrides})
        key = f"releases/{slug}.json"
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
        trace.delay = DELAY
        assert app_module.sync_release(sqs_event(key), None) == {"batchItemFailures": []}
        trace.delay = 0.0
        return trace

    return run


def _round_of(trace: RequestTrace) -> dict[int, int]:
    return {id(r): n for n, rnd in enumerate(trace.rounds()) for r in rnd}


def _where(trace: RequestTrace, op: str, key: str) -> list[Request]:
    return [r for r in trace.requests if r.op == op and r.key == key]


def test_a_new_release_is_read_in_two_rounds_and_published_in_few(traced: Any) -> None:
    trace = traced("fresh-one")
    rounds = trace.rounds()
    # head; then the source with the hints its name implies; then the state
    # objects of its month, kind and topics (17 rounds in all before)
    first = [sorted((r.op, r.key) for r in rnd) for rnd in rounds[:3]]
    assert first[0] == [("GetObject", "state/head.json")]
    assert ("GetObject", "releases/fresh-one.json") in first[1]
    assert ("GetObject", "state/slugs/fresh-one.json") in first[1]
    assert ("GetObject", "state/sources/fresh-one.json") in first[1]
    assert all(k.startswith("state/objects/") for _op, k in first[2])
    assert len(rounds) <= 11, "\n".join(str([(r.op, r.key) for r in rnd]) for rnd in rounds)


def test_the_order_the_guarantees_need_holds(traced: Any) -> None:
    trace = traced("fresh-two")
    at = _round_of(trace)
    (page,) = _where(trace, "PutObject", "releases/fresh-two/index.html")
    heads = [r for r in trace.requests if r.op == "PutObject" and r.key == "state/head.json"]
    (receipt,) = _where(trace, "PutObject", "receipts/releases/fresh-two.json")
    shared = [
        r
        for r in trace.requests
        if r.op == "PutObject"
        and not r.key.startswith(("state/", "receipts/", "releases/"))
        and not r.key.startswith("search/")
    ]
    objects = [
        r
        for r in trace.requests
        if r.op == "PutObject"
        and r.key.startswith(("state/objects/", "state/slugs/", "state/sources/", "state/intents/"))
    ]
    assert shared, "the listings that show the new release were written"
    # the commit: the head write after which the receipt says published
    commit = max((h for h in heads if at[id(h)] < at[id(receipt)]), key=lambda h: at[id(h)])
    assert all(at[id(page)] < at[id(s)] for s in shared), "a listing linked to a missing page"
    assert all(at[id(s)] < at[id(commit)] for s in shared)
    assert objects and all(at[id(o)] < at[id(commit)] for o in objects)
    assert at[id(commit)] < at[id(receipt)]


def test_an_update_records_its_page_before_writing_it_in_no_extra_round(traced: Any) -> None:
    """An update of a live release writes its page over the committed one:
    the intent record naming it goes first (a convergence killed after the
    page landed over a newer commit's leaves the sweep a trace), with the
    state objects the publish writes anyway. A new body changes no shared
    page, so before release pages were recorded this publish wrote no record
    at all; its rounds are as many as then."""
    body = "The clinics reopened today, all three."
    trace = traced("older-1", published_at="2025-06-01T10:00:00+00:00", body=body)
    assert not [r for r in trace.requests if r.op == "PutObject" and r.key.startswith("index")]
    rounds = trace.rounds()
    at = _round_of(trace)
    (page,) = _where(trace, "PutObject", "releases/older-1/index.html")
    intents = [
        r for r in trace.requests if r.op == "PutObject" and r.key.startswith("state/intents/")
    ]
    assert intents and all(at[id(i)] < at[id(page)] for i in intents)
    beside = rounds[at[id(intents[0])]]
    assert any(r.key.startswith("state/objects/") for r in beside), beside
    assert len(rounds) <= 10, "\n".join(str([(r.op, r.key) for r in rnd]) for rnd in rounds)
