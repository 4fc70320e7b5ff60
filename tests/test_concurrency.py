"""Concurrency: many Lambdas publishing at once against moto's S3.

moto's S3 checks ``If-Match`` / ``If-None-Match`` and then stores the object in
two separate steps, in-process and in server mode alike, so under threads two
conditional writes can both pass (a lost update; shown below with a
``sys.setswitchinterval`` run, recorded in docs/reliability.md). Real S3
applies each request atomically. The racing publishers here run on moto
in-process with each request made atomic (``atomic_moto_requests``, the ``aws``
fixture), as on S3, while the publisher threads still interleave freely
between requests, so every race in our code stays visible. The demo's server
(``AtomicMotoServer``: moto's threaded server on 127.0.0.1, serving one HTTP
request at a time) is checked for the same atomicity below; in-process, each
request costs a third of what it costs through HTTP.

Each thread gets its own boto3 client, ``S3Storage`` and ``Publisher``, as
separate Lambda instances would.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from invariants import link_problems
from support import (
    PUBLIC,
    SOURCE,
    Interleave,
    StorageWrapper,
    dumps,
    make_publisher,
    make_release,
    moto_server,
    public_tree,
    renderer,
)

from chalicelib.errors import StorageError
from chalicelib.keys import CLAIMS_PREFIX, STATE_KEY, claim_key
from chalicelib.publisher import Publisher
from chalicelib.storage import S3Storage
from newsroom.build import build_site

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPICS = ["Clean Water", "Harbour", "Schools", "Côte d'Ivoire", "Storms", "Budget"]
KINDS = ["press-release", "report", "statement", "campaign-update", "victory"]


@pytest.fixture
def endpoint(aws: Any) -> None:
    """Where the racing publishers send their requests: moto in-process (the
    ``aws`` fixture), each request atomic as on S3; ``None`` is the default
    endpoint, which moto intercepts in every thread."""
    return None


def client(endpoint: str | None) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=4),
    )


@pytest.fixture
def s3(aws: Any) -> Any:
    """Both buckets, empty (a fresh moto backend per test)."""
    return aws


def new_publisher(endpoint: str) -> Publisher:
    """A publisher as one Lambda has it."""
    c = client(endpoint)
    return Publisher(
        S3Storage(c, SOURCE),
        S3Storage(c, PUBLIC),
        renderer(),
        clock=lambda: NOW,
        backoff=0.02,
        max_backoff=0.5,
    )


def release_doc(i: int, rng: random.Random) -> dict[str, Any]:
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    return make_release(
        title=f"Release number {i}",
        kind=rng.choice(KINDS),
        published_at=f"2025-{month:02d}-{day:02d}T{rng.randint(0, 23):02d}:00:00+00:00",
        topics=rng.sample(TOPICS, rng.randint(0, 2)),
        summary=f"Summary {i}",
    )


def releases(suite: int, stress: int) -> pytest.MarkDecorator:
    """A test run with ``count`` releases: ``suite`` in the suite, ``stress`` in ``make stress``."""
    return pytest.mark.parametrize(
        "count",
        [suite, pytest.param(stress, marks=pytest.mark.stress)],
        ids=[f"{suite}-releases", f"{stress}-releases"],
    )


def upload_releases(s3: Any, name: str, count: int, rng: random.Random) -> list[str]:
    """``count`` generated releases uploaded as ``releases/<name>-<i>.json``; their keys."""
    keys = []
    for i in range(count):
        key = f"releases/{name}-{i:03d}.json"
        s3.put_object(Bucket=SOURCE, Key=key, Body=dumps(release_doc(i, rng)))
        keys.append(key)
    return keys


def run_parallel(
    threads: int,
    jobs: list[Callable[[Publisher], Any]],
    endpoint: str,
    stats: bool = False,
    retry_delay: float = 0.0,
) -> Any:
    """Run ``jobs`` on ``threads`` threads, each with its own Publisher; return
    the number of conditional writes that lost a race and were retried."""
    local = threading.local()
    lambda_retries: list[int] = []
    publishers: list[Publisher] = []
    guard = threading.Lock()

    def run(job: Callable[[Publisher], Any]) -> Any:
        if not hasattr(local, "pub"):
            local.pub = new_publisher(endpoint)
            with guard:
                publishers.append(local.pub)
        for attempt in range(3):  # Lambda's own retries of a failed invocation
            try:
                return job(local.pub)
            except StorageError:
                if attempt == 2:
                    raise
                with guard:
                    lambda_retries.append(1)
                time.sleep(retry_delay)  # Lambda retries a failed event later, not at once
        return None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(run, jobs))
    assert all(r is not None for r in results)
    conflicts = sum(p.conflicts for p in publishers)
    if stats:
        return {"conflicts": conflicts, "lambda_retries": len(lambda_retries)}
    return conflicts


def index_slugs(tree: dict[str, bytes]) -> list[str]:
    return [r["slug"] for r in json.loads(tree["index.json"])["releases"]]


def front_slugs(tree: dict[str, bytes]) -> list[str]:
    html = tree["index.html"].decode()
    seen: list[str] = []
    for slug in re.findall(r'href="/releases/([a-z0-9-]+)/"', html):
        if slug not in seen:
            seen.append(slug)
    return seen


def full_build(s3: Any) -> dict[str, bytes]:
    sources = sorted(
        (k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/")
    )
    return build_site(sources, renderer(), now=NOW, workers=1).files


def test_server_enforces_conditional_writes_atomically() -> None:
    """The demo's moto server (``moto_server``, what ``newsroom demo`` and the
    benchmarks run) applies each request atomically, as S3 does."""
    with moto_server() as url:
        s3 = client(url)
        s3.create_bucket(Bucket=PUBLIC)
        _conditional_writes_are_atomic(s3, url)


def _conditional_writes_are_atomic(s3: Any, endpoint: str) -> None:
    s3.put_object(Bucket=PUBLIC, Key="k", Body=b"0", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=PUBLIC, Key="k", Body=b"1", IfNoneMatch="*")
    assert exc.value.response["Error"]["Code"] == "PreconditionFailed"
    etag = s3.get_object(Bucket=PUBLIC, Key="k")["ETag"]
    s3.put_object(Bucket=PUBLIC, Key="k", Body=b"2", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=PUBLIC, Key="k", Body=b"3", IfMatch=etag)
    assert exc.value.response["Error"]["Code"] == "PreconditionFailed"

    # 12 threads append to one object with read / IfMatch-write / retry: none lost
    conflicts = []

    def append(i: int) -> None:
        c = client(endpoint)
        for j in range(4):
            while True:
                got = c.get_object(Bucket=PUBLIC, Key="k")
                body = got["Body"].read() + f",{i}.{j}".encode()
                try:
                    c.put_object(Bucket=PUBLIC, Key="k", Body=body, IfMatch=got["ETag"])
                    break
                except ClientError as err:
                    assert err.response["Error"]["Code"] == "PreconditionFailed"
                    conflicts.append(1)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = s3.get_object(Bucket=PUBLIC, Key="k")["Body"].read().split(b",")[1:]
    assert len(items) == len(set(items)) == 12 * 4
    assert conflicts, "the threads did race"


@releases(suite=12, stress=100)
def test_twelve_threads_publish_at_once_and_lose_nothing(
    s3: Any, endpoint: str, count: int
) -> None:
    """Far more concurrency than the queue allows: real races for index.json, and
    the IfMatch commit alone keeps every entry. The suite runs 12 releases, one
    for each thread, all racing at once; the 100-release run is in the stress
    set (it takes minutes here)."""
    keys = upload_releases(s3, "release", count, random.Random(7))
    jobs = [lambda p, k=k: p.sync(k) for k in keys]
    conflicts = run_parallel(12, jobs, endpoint)

    tree = public_tree(s3)
    slugs = index_slugs(tree)
    assert sorted(slugs) == sorted(f"release-{i:03d}" for i in range(count)), "lost entries"
    assert front_slugs(tree) == slugs[:12], "front page agrees with index.json"
    assert link_problems(tree) == []
    assert tree == full_build(s3), "byte for byte what a full build of the sources gives"
    assert conflicts > 0, "the publishers did race for index.json"
    for key in keys:
        body = s3.get_object(Bucket=SOURCE, Key=f"receipts/{key}")["Body"].read()
        assert json.loads(body)["status"] == "published"


@releases(suite=40, stress=100)
def test_a_burst_in_batches_on_two_consumers(s3: Any, endpoint: str, count: int) -> None:
    """As deployed: the queue hands batches of 10 to at most two consumers at
    once; each batch commits once, a lost race retries the batch in place. The
    suite runs 40 releases; the stress set 100."""
    keys = upload_releases(s3, "burst", count, random.Random(8))
    batches = [keys[i : i + 10] for i in range(0, len(keys), 10)]

    def run_batch(p: Publisher, batch: list[str]) -> Any:
        outcome = p.sync_batch(batch)
        if outcome.failed:
            raise next(iter(outcome.failed.values()))
        return outcome

    figures = run_parallel(
        2, [lambda p, b=b: run_batch(p, b) for b in batches], endpoint, stats=True
    )
    tree = public_tree(s3)
    slugs = index_slugs(tree)
    assert sorted(slugs) == sorted(f"burst-{i:03d}" for i in range(count)), "lost entries"
    assert front_slugs(tree) == slugs[:12]
    assert link_problems(tree) == []
    assert tree == full_build(s3)
    assert figures["lambda_retries"] == 0, "no batch gave up"


@releases(suite=6, stress=15)
def test_deletes_updates_and_slug_changes_mixed_with_publishes(
    s3: Any, endpoint: str, count: int
) -> None:
    """``count`` releases live; then a third of them deleted, a third updated
    (some to a new slug) while ``count`` new ones are published, all at once on
    12 threads. The suite runs 6 and 6 (two deletes, an update, a slug change,
    two untouched); the stress set 15 and 15."""
    rng = random.Random(11)
    first = upload_releases(s3, "old", count, rng)
    run_parallel(8, [lambda p, k=k: p.sync(k) for k in first], endpoint)
    assert len(index_slugs(public_tree(s3))) == count

    jobs: list[Callable[[Publisher], Any]] = []
    for i, key in enumerate(first):
        if i % 3 == 0:
            s3.delete_object(Bucket=SOURCE, Key=key)  # unpublish
        elif i % 3 == 1:
            doc = release_doc(1000 + i, rng)
            if i % 2:
                doc["slug"] = f"renamed-{i:03d}"  # slug change
            s3.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc))
        else:
            continue
        jobs.append(lambda p, k=key: p.sync(k))
    for i in range(count):
        key = f"releases/new-{i:03d}.json"
        s3.put_object(Bucket=SOURCE, Key=key, Body=dumps(release_doc(2000 + i, rng)))
        jobs.append(lambda p, k=key: p.sync(k))
    rng.shuffle(jobs)
    conflicts = run_parallel(12, jobs, endpoint)

    tree = public_tree(s3)
    assert link_problems(tree) == []
    assert front_slugs(tree) == index_slugs(tree)[:12]
    assert tree == full_build(s3)
    assert conflicts > 0


# Deterministic interleavings --------------------------------------------------------
# A storage wrapper runs a second, complete sync at one chosen instant of the
# first, the worst moment a parallel Lambda could pick. The wrapper stands in for
# timing, not for any of our code: both syncs are real Publishers over moto.


def plain(aws: Any) -> Publisher:
    return make_publisher(aws, NOW)


def interleaved(aws: Any, when: Callable[[str, str], bool], then: Callable) -> Publisher:
    pub = plain(aws)
    pub.public = Interleave(pub.public, when, then)  # type: ignore[assignment]
    return pub


def test_a_sync_that_read_an_older_version_never_commits_it_over_a_newer_one(aws: Any) -> None:
    key = "releases/story.json"
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(make_release(title="Version one")))

    def newer_upload_and_its_sync() -> None:
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(make_release(title="Version two")))
        plain(aws).sync(key)

    # the first sync read version one; version two lands and is published
    # before the first sync commits index.json
    first = interleaved(
        aws, lambda op, k: op == "put" and k == "index.json", newer_upload_and_its_sync
    )
    first.sync(key)
    tree = public_tree(aws)
    assert b"Version two" in tree["releases/story/index.html"]
    assert b"Version one" not in b"".join(tree.values())
    assert tree == full_build(aws)


def test_two_files_racing_for_one_slug_never_overwrite_the_holders_page(aws: Any) -> None:
    aws.put_object(
        Bucket=SOURCE, Key="releases/a.json", Body=dumps(make_release(slug="same", title="From A"))
    )
    aws.put_object(
        Bucket=SOURCE, Key="releases/b.json", Body=dumps(make_release(slug="same", title="From B"))
    )

    # B publishes completely at A's first write (its claim of the slug,
    # before any public object)
    a = plain(aws)
    a.source = Interleave(  # type: ignore[assignment]
        a.source,
        lambda op, k: op == "put" and k == claim_key("same"),
        lambda: plain(aws).sync("releases/b.json"),
    )
    receipt = a.sync("releases/a.json")
    assert receipt.status == "rejected"
    assert "releases/b.json" in receipt.errors[0].msg
    tree = public_tree(aws)
    assert b"From B" in tree["releases/same/index.html"]
    assert b"From A" not in b"".join(tree.values())
    assert link_problems(tree) == []


def test_two_batches_claiming_one_new_slug_at_once_one_wins_the_other_is_refused(
    aws: Any,
) -> None:
    """A has claimed the new slug and is writing its page when B, another
    file with the same slug, is published start to finish: B is refused
    with a receipt naming A, and A's page is the only one ever written."""
    aws.put_object(
        Bucket=SOURCE, Key="releases/a.json", Body=dumps(make_release(slug="same", title="From A"))
    )
    aws.put_object(
        Bucket=SOURCE, Key="releases/b.json", Body=dumps(make_release(slug="same", title="From B"))
    )
    refused: list[Any] = []
    a = plain(aws)
    a.public = Interleave(  # type: ignore[assignment]
        a.public,
        lambda op, k: op == "put" and k == "releases/same/index.html",
        lambda: refused.append(plain(aws).sync("releases/b.json")),
    )
    assert a.sync("releases/a.json").status == "published"
    assert [r.status for r in refused] == ["rejected"]
    assert "releases/a.json" in refused[0].errors[0].msg
    tree = public_tree(aws)
    assert b"From A" in tree["releases/same/index.html"]
    assert b"From B" not in b"".join(tree.values())
    assert tree == full_build(aws)
    assert aws.list_objects_v2(Bucket=SOURCE, Prefix=CLAIMS_PREFIX).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    "then", ["kept", "deleted", "claimed by another", "made invalid, claimed by another"]
)
def test_an_invocation_killed_after_its_claim_is_repaired_by_one_sweep(aws: Any, then: str) -> None:
    """An invocation claims a new slug, writes its page and listings, and dies
    just before its commit. One sweep ends on a full build of what the
    sources hold then: the file published (kept), its page taken down
    (deleted), or the slug given to the other file that wants it. (Made
    invalid: the sweep's batch rejected the file and left the slug held by
    it, its page up, for good.)"""
    from chalicelib.sweep import Sweeper

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release(slug="first")))
    plain(aws).sync("releases/first.json")
    aws.put_object(
        Bucket=SOURCE,
        Key="releases/dying.json",
        Body=dumps(make_release(slug="new-slug", title="From the dying one", topics=["Storms"])),
    )

    def die() -> None:
        raise Killed("killed before the commit")

    dying = plain(aws)
    dying.source = Interleave(  # type: ignore[assignment]
        dying.source, lambda op, k: op == "put" and k == STATE_KEY, die
    )
    with pytest.raises(Killed):
        dying.sync("releases/dying.json")
    assert "releases/new-slug/index.html" in public_tree(aws), "its page was written"
    if then.startswith("made invalid"):
        aws.put_object(Bucket=SOURCE, Key="releases/dying.json", Body=b'{"title": ""}')
    elif then != "kept":
        aws.delete_object(Bucket=SOURCE, Key="releases/dying.json")
    if then.endswith("claimed by another"):
        aws.put_object(
            Bucket=SOURCE,
            Key="releases/other.json",
            Body=dumps(make_release(slug="new-slug", title="From the other one")),
        )
        receipt = plain(aws).sync("releases/other.json")
        assert receipt.status == "rejected", "the slug is claimed until the sweep"
    Sweeper(plain(aws)).run()
    tree = public_tree(aws)
    assert tree == full_build(aws)
    assert link_problems(tree) == []
    assert aws.list_objects_v2(Bucket=SOURCE, Prefix=CLAIMS_PREFIX).get("KeyCount", 0) == 0
    if then.endswith("claimed by another"):
        assert b"From the other one" in tree["releases/new-slug/index.html"]


def test_a_page_an_unpublish_drops_survives_a_publish_that_needs_it_again(aws: Any) -> None:
    solo = make_release(
        title="Only harbour release", topics=["Harbour"], published_at="2026-03-01T10:00:00+00:00"
    )
    aws.put_object(Bucket=SOURCE, Key="releases/solo.json", Body=dumps(solo))
    plain(aws).sync("releases/solo.json")
    aws.delete_object(Bucket=SOURCE, Key="releases/solo.json")
    again = make_release(
        title="Harbour again", topics=["Harbour"], published_at="2026-03-09T10:00:00+00:00"
    )
    aws.put_object(Bucket=SOURCE, Key="releases/again.json", Body=dumps(again))

    # while the unpublish removes the Harbour topic and the March archive, a
    # publish that needs both runs start to finish
    for target in ("topics/harbour/index.html", "archive/2026/03/index.html", "index.json"):
        unpublish = interleaved(
            aws,
            lambda op, k, t=target: k == t,
            lambda: plain(aws).sync("releases/again.json"),
        )
        unpublish.sync("releases/solo.json")
        tree = public_tree(aws)
        assert link_problems(tree) == [], target
        assert tree == full_build(aws), target
        # reset: publish solo again, take "again" down
        aws.put_object(Bucket=SOURCE, Key="releases/solo.json", Body=dumps(solo))
        plain(aws).sync("releases/solo.json")
        aws.delete_object(Bucket=SOURCE, Key="releases/again.json")
        plain(aws).sync("releases/again.json")
        aws.delete_object(Bucket=SOURCE, Key="releases/solo.json")
        aws.put_object(Bucket=SOURCE, Key="releases/again.json", Body=dumps(again))


def test_a_publisher_that_gives_up_leaves_no_shared_page_of_an_uncommitted_state(
    aws: Any,
) -> None:
    """A publisher writes the sitemap index from the state it read, then two
    other publishes commit (one adds a month, one adds the loser's own month)
    and it loses its commit and gives up. Its retry changes no month, so its
    plan does not rewrite the sitemap: the page the loser left must still be
    put right (it lacked the month committed under it)."""

    def doc(title: str, month: int) -> dict[str, Any]:
        return make_release(title=title, published_at=f"2025-{month:02d}-10T10:00:00+00:00")

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(doc("First", 1)))
    plain(aws).sync("releases/first.json")
    for name, month in (("loser", 2), ("other-month", 3), ("same-month", 2)):
        aws.put_object(Bucket=SOURCE, Key=f"releases/{name}.json", Body=dumps(doc(name, month)))

    def two_commits_under_it() -> None:
        plain(aws).sync("releases/other-month.json")
        plain(aws).sync("releases/same-month.json")

    loser = interleaved(aws, lambda op, k: op == "put" and k == "sitemap.xml", two_commits_under_it)
    loser.max_attempts = 1
    with pytest.raises(StorageError):
        loser.sync("releases/loser.json")
    plain(aws).sync("releases/loser.json")  # the queue delivers it again
    tree = public_tree(aws)
    assert link_problems(tree) == []
    assert tree == full_build(aws)


def test_the_sweep_puts_back_a_shared_page_no_commit_wrote(aws: Any) -> None:
    """A shared page that differs from the committed state (a crash between
    writing it and the commit) is repaired by the sweep."""
    from chalicelib.sweep import Sweeper

    aws.put_object(Bucket=SOURCE, Key="releases/one.json", Body=dumps(make_release()))
    plain(aws).sync("releases/one.json")
    aws.put_object(Bucket=PUBLIC, Key="sitemap.xml", Body=b"<stale/>")
    aws.delete_object(Bucket=PUBLIC, Key="feed.xml")
    Sweeper(plain(aws)).run()
    assert public_tree(aws) == full_build(aws)


class Killed(BaseException):  # noqa: N818 - not an error our code may catch
    """The Lambda instance died mid-request."""


def test_the_sweep_puts_back_listings_an_invocation_killed_before_its_commit_wrote(
    aws: Any,
) -> None:
    """An invocation writes the month, topic and kind listings of a new
    release, then dies just before its commit; the file is deleted again
    before any retry. Nothing committed names those listings, so only a
    record made before they were written can tell the sweep where to look."""
    from chalicelib.sweep import Sweeper

    first = make_release(
        title="Harbour works", topics=["Harbour"], published_at="2025-01-10T10:00:00+00:00"
    )
    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(first))
    plain(aws).sync("releases/first.json")
    second = make_release(
        title="Storm damage",
        kind="report",
        topics=["Harbour", "Storms"],
        published_at="2025-03-10T10:00:00+00:00",
    )
    aws.put_object(Bucket=SOURCE, Key="releases/second.json", Body=dumps(second))

    def die() -> None:
        raise Killed("killed before the commit")

    dying = plain(aws)
    dying.source = Interleave(  # type: ignore[assignment]
        dying.source,
        lambda op, k: op == "put" and k == STATE_KEY and "topics/storms/index.html" in tree(),
        die,
    )

    def tree() -> dict[str, bytes]:
        return public_tree(aws)

    with pytest.raises(Killed):
        dying.sync("releases/second.json")
    assert "archive/2025/03/index.html" in tree(), "the listings were written"
    aws.delete_object(Bucket=SOURCE, Key="releases/second.json")
    Sweeper(plain(aws)).run()
    assert tree() == full_build(aws)


@pytest.mark.parametrize("then", ["updated", "renamed", "deleted"])
def test_the_sweep_puts_back_a_release_page_an_invocation_killed_before_its_commit_left_stale(
    aws: Any, then: str
) -> None:
    """A batch reads an update (version two) of a live release; before its
    page lands, another batch publishes version three of the file (or moves
    it to another slug, or unpublishes it: the file is deleted) start to
    finish; then the first batch's page of version two lands over that
    commit's and the first batch dies before its commit. Nothing committed
    differs from its source, so only a record made before the page was
    written can tell the sweep to put the page right (failed before the
    intent record named release pages: version two stayed up for good)."""
    from chalicelib.sweep import Sweeper

    stale_page_of_a_killed_update(aws, then)
    Sweeper(plain(aws)).run()
    tree = public_tree(aws)
    assert b"Version two" not in b"".join(tree.values())
    assert link_problems(tree) == []
    assert tree == full_build(aws)


STORY = make_release(slug="story", title="Version one", topics=["Harbour"])


def stale_page_of_a_killed_update(aws: Any, then: str, death: BaseException | None = None) -> None:
    """``releases/story.json`` live (version one); a batch reads version two
    and, just before it writes the page, another batch commits version
    three (``then``: updated in place, renamed, or deleted); the first
    batch's page lands last and it dies before its commit (or its commit
    meets ``death``)."""
    key, page = "releases/story.json", "releases/story/index.html"
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(STORY))
    plain(aws).sync(key)
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps({**STORY, "title": "Version two"}))

    def another_batch_commits_version_three() -> None:
        if then == "deleted":
            aws.delete_object(Bucket=SOURCE, Key=key)
        else:
            slug = "story-moved" if then == "renamed" else "story"
            v3 = {**STORY, "title": "Version three", "slug": slug}
            aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(v3))
        plain(aws).sync(key)

    def die() -> None:
        raise death or Killed("killed before the commit")

    dying = interleaved(
        aws, lambda op, k: op == "put" and k == page, another_batch_commits_version_three
    )
    dying.source = Interleave(  # type: ignore[assignment]
        dying.source, lambda op, k: op == "put" and k == STATE_KEY, die
    )
    with pytest.raises(type(death) if death else Killed):
        dying.sync(key)
    assert b"Version two" in public_tree(aws)[page], "the stale page landed last"


def test_a_release_page_a_batch_that_met_a_fault_left_stale_is_put_right_by_the_sweep(
    aws: Any,
) -> None:
    """As above, but the first batch's commit meets an infrastructure fault:
    it records its shared pages as owed and its message comes back, and the
    redelivery finds the site converged (version three committed). Its
    intent record, kept because it names a release page, leads the sweep
    to the page (failed before: the record went once the pages were owed)."""
    from chalicelib.sweep import Sweeper

    fault = StorageError("the commit timed out", STATE_KEY)
    stale_page_of_a_killed_update(aws, "updated", fault)
    plain(aws).sync("releases/story.json")  # the message comes back
    Sweeper(plain(aws)).run()
    tree = public_tree(aws)
    assert b"Version two" not in b"".join(tree.values())
    assert tree == full_build(aws)


def test_a_batch_whose_page_the_sweep_wrote_over_before_committing_writes_it_again(
    aws: Any,
) -> None:
    """The sweep rewrites the page a killed batch left stale (version three,
    committed) and commits; meanwhile version four was uploaded and a batch
    wrote its page, which the sweep's write then landed over, and that
    batch's commit lost to the sweep's. Its retry finds its entry unchanged
    since its last attempt, but the sweep's commit names the page in the
    head's log, so the retry writes it again (failed without: version
    three's page under version four's entry)."""
    key, page = "releases/story.json", "releases/story/index.html"
    stale_page_of_a_killed_update(aws, "updated")
    at_commit, resume = threading.Event(), threading.Event()
    done: list[Any] = []

    def pause() -> None:
        at_commit.set()
        assert resume.wait(30)

    def batch_of_version_four() -> None:
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps({**STORY, "title": "Version four"}))
        c = plain(aws)
        c.source = Interleave(  # type: ignore[assignment]
            c.source, lambda op, k: op == "put" and k == STATE_KEY, pause
        )
        try:
            done.append(c.sync(key))
        finally:
            at_commit.set()

    runner = threading.Thread(target=batch_of_version_four)

    def start_the_batch() -> None:
        runner.start()
        assert at_commit.wait(30)

    sweep = interleaved(aws, lambda op, k: op == "put" and k == page, start_the_batch)
    sweep.repair_shared()  # the sweep's step that reads the intent records
    resume.set()
    runner.join(30)
    assert [r.status for r in done] == ["published"]
    tree = public_tree(aws)
    assert b"Version four" in tree[page]
    assert tree == full_build(aws)


class Recording(StorageWrapper):
    """Every request once ``on`` is set: (operation, key)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.on, self.seen = False, []

    def _read(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if self.on:
            self.seen.append((op, key))
        return do()

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if self.on:
            self.seen.append((op, key))
        return do()


def test_a_batch_that_lost_the_race_redoes_only_what_the_winner_changed(aws: Any) -> None:
    """The winner commits a release of another topic and an older month while the
    batch is about to commit. The retry reads none of the batch's sources
    and hints again and rewrites only the shared pages the winner wrote too
    (the front page, say), not the month and topic pages only it touches."""

    def doc(title: str, month: int, topic: str) -> dict[str, Any]:
        published = f"2025-{month:02d}-10T10:00:00+00:00"
        return make_release(title=title, topics=[topic], published_at=published)

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(doc("First", 1, "Harbour")))
    plain(aws).sync("releases/first.json")
    batch = [f"releases/school-{i}.json" for i in range(3)]
    for i, key in enumerate(batch):
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(doc(f"School {i}", 3, "Schools")))
    aws.put_object(Bucket=SOURCE, Key="releases/storm.json", Body=dumps(doc("Storm", 1, "Storms")))

    loser = plain(aws)
    source, public = Recording(loser.source), Recording(loser.public)

    def winner() -> None:
        plain(aws).sync("releases/storm.json")
        source.on = public.on = True

    def about_to_commit(op: str, key: str) -> bool:
        # the head's write once the batch's listings are out (not its slug claims)
        return op == "put" and key == STATE_KEY and "topics/schools/index.html" in public_tree(aws)

    loser.source = Interleave(source, about_to_commit, winner)  # type: ignore[assignment]
    loser.public = public  # type: ignore[assignment]
    loser.sync_batch(batch)

    assert loser.conflicts == 1
    read = {k for op, k in source.seen if op == "get"}
    assert not read & set(batch), "the batch's sources are not read again"
    assert not [k for k in read if k.startswith(("state/sources/", "state/slugs/"))]
    assert not [k for op, k in source.seen if k.startswith("state/media-refs/")]
    written = {k for op, k in public.seen if op == "put"}
    assert "index.html" in written, "a page the winner wrote too is written again"
    assert not written & {"archive/2025/03/index.html", "topics/schools/index.html"}
    assert not [k for k in written if k.startswith("releases/")], "release pages stay"
    tree = public_tree(aws)
    assert link_problems(tree) == []
    assert tree == full_build(aws)


def test_a_batch_that_keeps_losing_takes_a_turn_and_commits(aws: Any) -> None:
    """Another publish commits just before each of the batch's commits (a
    faster instance that always wins). After a few lost races the batch takes
    a turn: the others wait for its commit, so it makes progress instead of
    giving up (before turns it used all its attempts whenever the others kept
    committing)."""
    from chalicelib.convergence import TURN_AFTER
    from chalicelib.state import Snapshot
    from chalicelib.storage import S3Storage

    rivals = [f"releases/rival-{i}.json" for i in range(12)]
    for i, key in enumerate(rivals):
        published = f"2025-0{1 + i % 3}-1{i % 9}T10:00:00+00:00"
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(make_release(published_at=published)))
    batch = ["releases/patient.json"]
    aws.put_object(Bucket=SOURCE, Key=batch[0], Body=dumps(make_release(title="Patient")))
    waiting = list(rivals)

    class Rival(StorageWrapper):
        def put(self, key: str, body: bytes, **kwargs: Any) -> str:
            head = Snapshot.read(S3Storage(aws, SOURCE)).head
            if key == STATE_KEY and waiting and head.turn is None and b'"turn"' not in body:
                plain(aws).sync(waiting.pop(0))  # commits first
            return self.inner.put(key, body, **kwargs)

    loser = plain(aws)
    loser.max_attempts = 2 * TURN_AFTER
    loser.source = Rival(loser.source)  # type: ignore[assignment]
    receipt = loser.sync(batch[0])

    assert receipt.status == "published"
    assert loser.conflicts >= TURN_AFTER, "it lost race after race"
    assert waiting, "it committed while the others still had work"
    assert Snapshot.read(S3Storage(aws, SOURCE)).head.turn is None, "its commit ended the turn"
    for key in waiting:
        plain(aws).sync(key)
    tree = public_tree(aws)
    assert link_problems(tree) == []
    assert tree == full_build(aws)


def test_a_batch_read_ahead_of_its_attempt_takes_a_version_committed_in_between(
    aws: Any,
) -> None:
    """A batch reads its sources before the head it commits on; a newer
    version of one of them is uploaded and committed in between. The batch
    must publish the newer one (it reads again what a commit since changed)."""
    keys = ["releases/story.json", "releases/other.json"]
    aws.put_object(Bucket=SOURCE, Key=keys[0], Body=dumps(make_release(title="Version one")))
    aws.put_object(Bucket=SOURCE, Key=keys[1], Body=dumps(make_release(title="Other")))
    heads = []

    class SecondHeadRead(StorageWrapper):
        def _read(self, op: str, key: str, do: Callable[[], Any]) -> Any:
            if key == STATE_KEY:
                heads.append(key)
                if len(heads) == 2:  # the first attempt's: the sources were read before
                    aws.put_object(
                        Bucket=SOURCE, Key=keys[0], Body=dumps(make_release(title="Version two"))
                    )
                    plain(aws).sync(keys[0])
            return do()

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release()))
    plain(aws).sync("releases/first.json")
    batch = plain(aws)
    batch.source = SecondHeadRead(batch.source)  # type: ignore[assignment]
    batch.sync_batch(keys)
    tree = public_tree(aws)
    assert b"Version two" in tree["releases/story/index.html"]
    assert b"Version one" not in b"".join(tree.values())
    assert tree == full_build(aws)


def test_a_commit_replacing_what_a_batch_reads_ahead_does_not_fail_it(aws: Any) -> None:
    """Between the batch's first read of the head and its read of the month
    object that head names, another commit replaces that object (deleting
    the old one). The batch goes on from the newer head."""
    month = "2025-03-1{}T10:00:00+00:00"
    aws.put_object(
        Bucket=SOURCE,
        Key="releases/first.json",
        Body=dumps(make_release(published_at=month.format(1))),
    )
    plain(aws).sync("releases/first.json")
    keys = ["releases/a.json", "releases/b.json"]
    for n, key in enumerate(keys, start=2):
        aws.put_object(
            Bucket=SOURCE, Key=key, Body=dumps(make_release(published_at=month.format(n)))
        )
    aws.put_object(
        Bucket=SOURCE, Key="releases/c.json", Body=dumps(make_release(published_at=month.format(5)))
    )
    done = []

    class CommitUnderIt(StorageWrapper):
        def _read(self, op: str, key: str, do: Callable[[], Any]) -> Any:
            if key == keys[0] and not done:
                done.append(key)
                plain(aws).sync("releases/c.json")  # replaces March's object
            return do()

    batch = plain(aws)
    batch.source = CommitUnderIt(batch.source)  # type: ignore[assignment]
    outcome = batch.sync_batch(keys)
    assert not outcome.failed
    assert public_tree(aws) == full_build(aws)


# A source's hint against two batches racing on the same key ----------------------
# The loser read the older version of the key (month M1, or a slug change), the
# winner the newer one (month M2, or another slug) and commits it; the loser
# writes its hint at the worst moment. Afterwards the hint must still lead to
# the committed entry, or the next update adds a second entry for the key and
# the next delete leaves the release live.

HINT_VARIANTS = {
    # name: (loser's version, winner's version, the hint both write)
    "month": (
        {"published_at": "2025-03-10T10:00:00+00:00"},
        {"published_at": "2025-05-10T10:00:00+00:00"},
        "state/slugs/story.json",
    ),
    "slug": (
        {"slug": "story-a", "published_at": "2025-03-10T10:00:00+00:00"},
        {"slug": "story-b", "published_at": "2025-05-10T10:00:00+00:00"},
        "state/sources/story.json",
    ),
}


class HintRace(StorageWrapper):
    """The loser's source storage: at its write of ``hint``, the winner runs
    whole, and the loser's hint lands ``when``: ``after`` the winner's commit,
    ``before`` the winner starts, or ``between`` the winner's hint write and its
    commit. ``killed``: as ``after``, then the loser dies before its commit."""

    def __init__(
        self, inner: Any, hint: str, when: str, winner: Callable[[Callable], None]
    ) -> None:
        super().__init__(inner)
        self.hint, self.when, self.winner = hint, when, winner
        self.fired = self.landed = False

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if op == "put" and key == STATE_KEY and self.landed and self.when == "killed":
            raise Killed("killed before the commit")
        if op != "put" or key != self.hint or self.fired:
            return do()
        self.fired = True
        out: list[Any] = []

        def land() -> None:
            # the loser's request, answered to the loser (a conditional
            # write may fail), never to the winner it lands under
            try:
                out.append(do())
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
            self.landed = True

        if self.when == "before":
            land()
            self.winner(lambda: None)
        elif self.when == "between":
            self.winner(land)
        else:
            self.winner(lambda: None)
            land()
        if isinstance(out[0], Exception):
            raise out[0]
        return out[0]


class BeforeCommit(StorageWrapper):
    """The winner's source storage: ``then()`` once, just before its commit
    (the first write of the head after a write of ``hint``)."""

    def __init__(self, inner: Any, hint: str, then: Callable[[], None]) -> None:
        super().__init__(inner)
        self.hint, self.then = hint, then
        self.hinted = self.fired = False

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if key == self.hint:
            self.hinted = True
        elif key == STATE_KEY and self.hinted and not self.fired:
            self.fired = True
            self.then()
        return do()


@pytest.mark.parametrize("variant", sorted(HINT_VARIANTS))
@pytest.mark.parametrize("when", ["after", "before", "between", "killed"])
def test_a_hint_an_uncommitted_attempt_writes_never_hides_the_committed_entry(
    aws: Any, variant: str, when: str
) -> None:
    from chalicelib.state import Snapshot
    from chalicelib.sweep import Sweeper

    key = "releases/story.json"
    loser_doc, winner_doc, hint = HINT_VARIANTS[variant]
    aws.put_object(
        Bucket=SOURCE,
        Key="releases/other.json",
        Body=dumps(make_release(title="Other", published_at="2024-11-10T10:00:00+00:00")),
    )
    plain(aws).sync("releases/other.json")
    v0 = make_release(title="Version zero", published_at="2025-01-10T10:00:00+00:00")
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(v0))
    plain(aws).sync(key)
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps({**v0, "title": "Loser", **loser_doc}))

    def winner(before_commit: Callable[[], None]) -> None:
        winner_version = {**v0, "title": "Winner", **winner_doc}
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(winner_version))
        w = plain(aws)
        w.source = BeforeCommit(w.source, hint, before_commit)  # type: ignore[assignment]
        assert w.sync(key).status == "published"

    loser = plain(aws)
    loser.source = HintRace(loser.source, hint, when, winner)  # type: ignore[assignment]
    if when == "killed":
        with pytest.raises(Killed):
            loser.sync(key)
        Sweeper(plain(aws)).run()  # puts back what the dead attempt wrote
    else:
        loser.sync(key)
    assert loser.source.landed  # type: ignore[attr-defined]

    state = S3Storage(aws, SOURCE)
    committed = Snapshot.read(state).entry_of(key)
    assert committed is not None, "the hint names the month of the committed entry"
    assert (committed.title, committed.month_key) == ("Winner", "2025-05")
    tree = public_tree(aws)
    assert tree == full_build(aws)

    # updated once more: the entry moves, and only one entry of the key remains
    final = {**v0, "title": "Final", **winner_doc, "published_at": "2025-07-10T10:00:00+00:00"}
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(final))
    plain(aws).sync(key)
    entry = Snapshot.read(state).entry_of(key)
    assert entry is not None and entry.month_key == "2025-07"
    assert public_tree(aws) == full_build(aws)

    # deleted: the release goes
    aws.delete_object(Bucket=SOURCE, Key=key)
    plain(aws).sync(key)
    tree = public_tree(aws)
    assert not [k for k in tree if k.startswith("releases/story")]
    assert tree == full_build(aws)


class AfterWrite(StorageWrapper):
    """The first time ``when(op, key)`` holds for a write, run ``then()`` once it has landed."""

    def __init__(
        self, inner: Any, when: Callable[[str, str], bool], then: Callable[[], Any]
    ) -> None:
        super().__init__(inner)
        self.when, self.then, self.fired = when, then, False

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        out = do()
        if not self.fired and self.when(op, key):
            self.fired = True
            self.then()
        return out


@pytest.mark.parametrize("moment", ["after its commit", "at its delete"])
def test_an_unpublish_racing_a_republish_never_renders_an_embargoed_version(
    aws: Any, moment: str
) -> None:
    """The file is deleted; once its unpublish has committed (or just as it
    deletes the page), the file comes back and is published again, then is
    overwritten with an embargoed version whose event is not delivered yet.
    The unpublish leaves the page of the republished version alone (after
    its commit: the withdrawal is no longer its to carry out) and never puts
    the page back from the embargoed version the bucket holds now (at its
    delete: it used to render that one into the public bucket)."""
    from invariants import secrecy_problems

    key = "releases/story.json"
    live = make_release(slug="story", title="Live version")
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(live))
    plain(aws).sync(key)
    aws.delete_object(Bucket=SOURCE, Key=key)

    def republished_then_embargoed() -> None:
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(live))
        assert plain(aws).sync(key).status == "published"
        secret = make_release(
            slug="story", title="Secret merger", embargo_until="2027-06-01T09:00:00+00:00"
        )
        aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(secret))

    unpublish = plain(aws)
    if moment == "after its commit":
        unpublish.source = AfterWrite(  # type: ignore[assignment]
            unpublish.source,
            lambda op, k: op == "put" and k == STATE_KEY,
            republished_then_embargoed,
        )
    else:
        unpublish.public = Interleave(  # type: ignore[assignment]
            unpublish.public,
            lambda op, k: op == "delete" and k == "releases/story/index.html",
            republished_then_embargoed,
        )
    unpublish.sync(key)
    tree = public_tree(aws)
    assert secrecy_problems(tree, ["Secret merger"]) == []
    if moment == "after its commit":
        assert b"Live version" in tree["releases/story/index.html"]
        assert link_problems(tree) == []
    plain(aws).sync(key)  # the embargoed upload's event: the live version stays
    assert secrecy_problems(public_tree(aws), ["Secret merger"]) == []


def test_a_sweep_settling_a_live_claim_lets_no_other_file_take_the_slug(aws: Any) -> None:
    """A has claimed a new slug and is about to write its page when a sweep
    starts and turns the claim into a withdrawal. C, another file with the
    same slug that read the head before that, claims the slug in between and
    writes its page; A finds the page taken, overwrites it, and is about to
    commit when C, refused at last, takes its page down. A commits. After
    one more sweep the site must be a full build: A's page there, C's never."""
    from chalicelib.sweep import Sweeper

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release(slug="first")))
    plain(aws).sync("releases/first.json")
    for name in ("a", "c"):
        doc = make_release(slug="same", title=f"From {name.upper()}")
        aws.put_object(Bucket=SOURCE, Key=f"releases/{name}.json", Body=dumps(doc))
    page = "releases/same/index.html"
    c_paged, resume_c = threading.Event(), threading.Event()
    receipts: list[Any] = []

    def c_sync() -> None:
        c = plain(aws)
        c.source = Interleave(  # type: ignore[assignment]
            c.source,
            lambda op, k: op == "put" and k == claim_key("same"),
            lambda: plain(aws).settle_claims(),  # the sweep's first step
        )

        def pause() -> None:
            c_paged.set()
            assert resume_c.wait(30)

        c.public = AfterWrite(c.public, lambda op, k: op == "put" and k == page, pause)  # type: ignore[assignment]
        try:
            receipts.append(c.sync("releases/c.json"))
        finally:
            c_paged.set()  # refused before any page: nothing to wait for

    runner = threading.Thread(target=c_sync)

    def start_c() -> None:
        runner.start()
        assert c_paged.wait(30)

    def finish_c() -> None:
        resume_c.set()
        runner.join(30)

    a = plain(aws)
    a.public = Interleave(a.public, lambda op, k: op == "put" and k == page, start_c)  # type: ignore[assignment]
    a.source = Interleave(a.source, lambda op, k: op == "put" and k == STATE_KEY, finish_c)  # type: ignore[assignment]
    assert a.sync("releases/a.json").status == "published"
    assert [r.status for r in receipts] == ["rejected"]
    Sweeper(plain(aws)).run()
    tree = public_tree(aws)
    assert b"From C" not in b"".join(tree.values())
    assert link_problems(tree) == []
    assert tree == full_build(aws)


class KilledAtWrite(StorageWrapper):
    """The invocation dies at its ``n``-th write from its first claim on
    (counted over both buckets: ``box``), before the write lands."""

    def __init__(self, inner: Any, box: dict[str, Any], n: int) -> None:
        super().__init__(inner)
        self.box, self.n = box, n

    def _write(self, op: str, key: str, do: Callable[[], Any]) -> Any:
        if key.startswith(CLAIMS_PREFIX):
            self.box["armed"] = True
        if self.box.get("armed"):
            self.box["writes"] = self.box.get("writes", 0) + 1
            if self.box["writes"] == self.n:
                raise Killed(f"killed at {op} {key}")
        return do()


@pytest.mark.parametrize(
    "then",
    ["redelivered, sweep", "sweep, redelivered", "deleted, sweep", "other, sweep",
     "deleted, other, sweep"],
)  # fmt: skip
@pytest.mark.parametrize(
    "n", [9, *(pytest.param(n, marks=pytest.mark.stress) for n in range(1, 30) if n != 9)]
)
def test_an_invocation_killed_at_any_write_after_its_claim_converges(
    aws: Any, n: int, then: str
) -> None:
    """An invocation of a new release dies at its ``n``-th write from its
    claim on (the claim itself, its page, the intent record, listings, state
    objects, hints, the commit, what follows it); then, in turn, the queue
    delivers the file again, the sweep runs, the file is deleted, another
    file with the same slug is published. The site ends as a full build, with
    no claim left (the other file holds the slug only if the first one never
    committed, and one of the two is nowhere)."""
    from chalicelib.sweep import Sweeper

    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release(slug="first")))
    plain(aws).sync("releases/first.json")
    doc = make_release(
        slug="new-slug", title="From the dying one", topics=["Storms"],
        published_at="2025-03-10T10:00:00+00:00",
    )  # fmt: skip
    aws.put_object(Bucket=SOURCE, Key="releases/dying.json", Body=dumps(doc))
    box: dict[str, Any] = {}
    dying = make_publisher(aws, NOW, wrap=lambda s: KilledAtWrite(s, box, n))
    with pytest.raises(Killed):
        dying.sync("releases/dying.json")
    for step in then.split(", "):
        if step == "redelivered":
            plain(aws).sync("releases/dying.json")
        elif step == "sweep":
            Sweeper(plain(aws)).run()
        elif step == "deleted":
            aws.delete_object(Bucket=SOURCE, Key="releases/dying.json")
        elif step == "other":
            other = make_release(
                slug="new-slug", title="From the other one",
                published_at="2025-05-10T10:00:00+00:00",
            )  # fmt: skip
            aws.put_object(Bucket=SOURCE, Key="releases/other.json", Body=dumps(other))
            plain(aws).sync("releases/other.json")
    tree = public_tree(aws)
    assert link_problems(tree) == []
    everything = b"".join(tree.values())
    if then == "other, sweep":  # both files there: whoever committed first holds the slug
        assert b"From the other one" not in everything or b"From the dying one" not in everything
    else:
        assert tree == full_build(aws)
    assert aws.list_objects_v2(Bucket=SOURCE, Prefix=CLAIMS_PREFIX).get("KeyCount", 0) == 0


def test_a_new_release_deleted_while_its_claim_is_in_flight_is_never_listed(
    aws: Any,
) -> None:
    """A new release has claimed its slug and written its pages when its file
    is deleted and the delete's batch runs: that batch finds nothing
    committed, but the claim naming the file: it turns the claim into a
    withdrawal and converges the file (as the sweep does): the page comes
    down, and the first batch, losing its commit, reads the file again and
    lists nothing. Before, the delete's
    batch committed nothing and the first batch then committed the version
    it read: live until the next sweep (docs/reliability.md, limit 10)."""
    deleted_while_first_published(aws, lambda op, k: op == "put" and k == STATE_KEY)


@pytest.mark.parametrize("claims", [False, True], ids=["before-its-claim", "with-a-claim-first"])
def test_a_new_release_deleted_before_its_batch_claims_its_slug_is_never_listed(
    aws: Any, claims: bool
) -> None:
    """The delete's batch runs after the publishing batch read the file but
    before that batch claimed the slug: it finds nothing committed and no
    claim. It now names the file in the head's log, so the publishing batch
    loses its commit and reads the file again. Before, that batch committed
    the version it read: live, listed and alerted until the next sweep
    (docs/reliability.md, limit 10). ``with-a-claim-first``: another new
    release of the same delete's batch has a claim in flight, so only part of
    the batch's deleted files are found through claims."""
    at_claim = claim_key("fresh")
    deleted_while_first_published(aws, lambda op, k: op == "put" and k == at_claim, claims)


def deleted_while_first_published(
    aws: Any, at: Callable[[str, str], bool], other_claim: bool = False
) -> None:
    """A new release's first publish, its file deleted and the delete's batch
    run at its first write for which ``at(op, key)`` holds (``other_claim``:
    with another deleted file whose claim is in flight in that batch): in
    the end nothing of it is listed or left, and the site is a full build."""
    aws.put_object(Bucket=SOURCE, Key="releases/first.json", Body=dumps(make_release(slug="first")))
    plain(aws).sync("releases/first.json")
    key = "releases/new.json"
    aws.put_object(Bucket=SOURCE, Key=key, Body=dumps(make_release(slug="fresh", title="Gone")))

    def deleted_and_its_batch() -> None:
        aws.delete_object(Bucket=SOURCE, Key=key)
        keys = [key]
        if other_claim:
            other = "releases/other.json"
            aws.put_object(Bucket=SOURCE, Key=claim_key("other"), Body=dumps({"source_key": other}))
            keys.append(other)
        outcome = plain(aws).sync_batch(keys)
        assert {r.source_key: r.status for r in outcome.receipts}[key] == "unpublished"

    first = plain(aws)
    first.source = Interleave(first.source, at, deleted_and_its_batch)  # type: ignore[assignment]
    first.sync(key)
    tree = public_tree(aws)
    assert "releases/fresh/index.html" not in tree
    listed = json.loads(tree["index.json"])["releases"]
    assert [r["slug"] for r in listed] == ["first"], "listed though its file is gone"
    assert tree == full_build(aws)
    assert aws.list_objects_v2(Bucket=SOURCE, Prefix=CLAIMS_PREFIX).get("KeyCount", 0) == 0
