"""``update_search`` on moto: the real scheduled handler over the corpus the
listener keeps, checked in the bundle files it leaves in the public bucket."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

from support import PUBLIC, SOURCE, make_release, sqs_event, upload

from chalicelib import service
from chalicelib.core.model import parse_release
from chalicelib.listeners import Commit, Published
from chalicelib.search import ENTRY_KEY, MANIFEST_KEY, SEARCH_PAGE_KEY
from chalicelib.search.corpus import SearchCorpus
from chalicelib.storage import S3Storage

SCHEDULED = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2030-03-01T14:05:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/newsroom-update_search"],
    "detail": {},
}


def publish(s3: Any, app: Any, name: str, **overrides: Any) -> None:
    """Upload a release and hand its event to the publisher, which tells the
    search corpus what its commit did."""
    key = f"releases/{name}.json"
    upload(s3, key, make_release(**overrides))
    app.sync_release(sqs_event(key), None)


def unpublish(s3: Any, app: Any, name: str) -> None:
    key = f"releases/{name}.json"
    s3.delete_object(Bucket=SOURCE, Key=key)
    app.sync_release(sqs_event(key, "ObjectRemoved:Delete"), None)


def bundle(s3: Any) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=PUBLIC, Prefix="pagefind/"):
        for item in page.get("Contents", []):
            out[item["Key"]] = s3.get_object(Bucket=PUBLIC, Key=item["Key"])["Body"].read()
    return out


def indexed(s3: Any) -> dict[str, str]:
    """URL -> title of every page in the bundle's fragments (the search results)."""
    out = {}
    for key, body in bundle(s3).items():
        if FRAGMENT.match(key):
            raw = gzip.decompress(body)
            assert raw.startswith(b"pagefind_dcd")
            doc = json.loads(raw[len(b"pagefind_dcd") :])
            out[doc["url"]] = doc["meta"]["title"]
    return out


FRAGMENT = re.compile(r"^pagefind/[0-9-]+/fragment/")


def read(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=PUBLIC, Key=key)["Body"].read())


def referenced(s3: Any) -> set[str]:
    """Meta files the current manifest leads to (what a new reader loads first):
    the shell's and every piece's."""
    out = {
        f"pagefind/pagefind.{v['hash']}.pf_meta" for v in read(s3, ENTRY_KEY)["languages"].values()
    }
    for piece in read(s3, MANIFEST_KEY)["pieces"]:
        entry = read(s3, f"pagefind/{piece['name']}/pagefind-entry.json")
        out |= {
            f"pagefind/{piece['name']}/pagefind.{v['hash']}.pf_meta"
            for v in entry["languages"].values()
        }
    return out


class Calls:
    """The S3 writes the handlers' client sends to the public bucket, in order
    (botocore's own events; unregistered on exit)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        # the client of the updater the handler runs (not a fresh one: the
        # service's client cache may have built a newer client since)
        self.client = service.search_updater().public.client

    def _record(self, params: dict, model: Any, **_: Any) -> None:
        if params.get("Bucket") == PUBLIC:
            op = "put" if model.name == "PutObject" else "delete"
            self.calls.append((op, params["Key"]))

    def __enter__(self) -> Calls:
        for op in ("PutObject", "DeleteObject"):
            self.client.meta.events.register(f"provide-client-params.s3.{op}", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for op in ("PutObject", "DeleteObject"):
            self.client.meta.events.unregister(f"provide-client-params.s3.{op}", self._record)


def test_update_search_indexes_public_releases_and_serves_the_search_page(app_module: Any):
    s3 = app_module and __import__("boto3").client("s3", region_name="us-east-1")
    publish(s3, app_module, "clinics", slug="clinics", title="Coastal clinics reopen")
    publish(
        s3,
        app_module,
        "secret",
        slug="secret",
        title="Dredging permit report",
        embargo_until="2999-01-01T00:00:00+00:00",
    )
    with Calls() as calls:
        out = app_module.update_search(SCHEDULED, None)
    assert out["changed"] is True and out["records"] == 1
    assert indexed(s3) == {"/releases/clinics/": "Coastal clinics reopen"}
    # the manifest, the search page's entry point, once everything is in place
    puts = [k for _op, k in calls.calls]
    assert [k for k in puts if k.startswith("pagefind/")][-2:] == [ENTRY_KEY, MANIFEST_KEY]
    assert puts[-1] == SEARCH_PAGE_KEY
    words = b"".join(gzip.decompress(b) for b in bundle(s3).values() if b[:2] == b"\x1f\x8b")
    assert b"Dredging" not in words and b"dredg" not in words
    head = s3.head_object(Bucket=PUBLIC, Key="pagefind/pagefind.js")
    assert head["ContentType"].startswith("text/javascript")
    page = s3.get_object(Bucket=PUBLIC, Key=SEARCH_PAGE_KEY)
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert b"Search needs JavaScript" in page["Body"].read()


def test_nothing_changed_nothing_written(app_module: Any):
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    publish(s3, app_module, "clinics", slug="clinics")
    app_module.update_search(SCHEDULED, None)
    with Calls() as calls:
        out = app_module.update_search(SCHEDULED, None)
    assert out == {
        "changed": False,
        "records": 0,
        "pieces": 0,
        "uploaded": 0,
        "deleted": 0,
        "seconds": out["seconds"],
    }
    assert calls.calls == []


def test_a_publish_uploads_only_changed_files_entry_point_first_then_stale_files_go(
    app_module: Any,
):
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    for i in range(12):
        publish(s3, app_module, f"r{i}", slug=f"r{i}", title=f"Harbour report number {i}")
    app_module.update_search(SCHEDULED, None)
    first = bundle(s3)
    first_meta = referenced(s3)
    publish(s3, app_module, "new", slug="new", title="Lighthouse keepers strike")
    with Calls() as calls:
        app_module.update_search(SCHEDULED, None)
    second = bundle(s3)
    puts = [k for op, k in calls.calls if op == "put"]
    deleted = [k for op, k in calls.calls if op == "delete"]
    # the fragments of the twelve unchanged releases were not uploaded again
    fragments = [k for k in first if FRAGMENT.match(k)]
    assert len(fragments) == 12 and not set(fragments) & set(puts)
    assert [k for k in puts if FRAGMENT.match(k)] == [
        k for k in second if FRAGMENT.match(k) and k not in first
    ]
    assert "pagefind/pagefind.js" not in puts and "pagefind/wasm.en.pagefind" not in puts
    # a piece's entry comes after every file it names, and the deletions of
    # the piece's old files after its new entry; the shell and the manifest
    # (same pieces, same languages) are as they were
    piece_entry = "pagefind/2018/pagefind-entry.json"
    bundle_puts = [k for k in puts if k.startswith("pagefind/")]
    assert bundle_puts[-1] == piece_entry and MANIFEST_KEY not in puts and ENTRY_KEY not in puts
    assert referenced(s3) - set(bundle_puts) == {
        k for k in first_meta if not k.startswith("pagefind/2018/")
    }  # the shell's, unchanged
    order = [k for _op, k in calls.calls]
    assert {k for k in first_meta if k.startswith("pagefind/2018/")} <= set(deleted)
    assert order.index(piece_entry) < min(order.index(k) for k in deleted)
    assert max(order.index(k) for k in puts if k.startswith("pagefind/2018/")) == order.index(
        piece_entry
    )
    # nothing left that the new manifest does not lead to, nothing missing
    assert set(second) == (set(first) | set(puts)) - set(deleted)
    assert referenced(s3) <= set(second)
    assert "/releases/new/" in indexed(s3)
    for key in (MANIFEST_KEY, ENTRY_KEY, piece_entry):
        assert s3.head_object(Bucket=PUBLIC, Key=key)["CacheControl"] == "no-cache"


def test_a_publish_in_one_year_rewrites_only_that_years_piece(app_module: Any):
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    for year in (2016, 2017, 2018):
        for i in range(3):
            publish(s3, app_module, f"r{year}-{i}", slug=f"r{year}-{i}",
                    title=f"Harbour report {year} number {i}",
                    published_at=f"{year}-0{i + 3}-10T09:00:00+00:00")  # fmt: skip
    app_module.update_search(SCHEDULED, None)
    first = bundle(s3)
    assert [p["name"] for p in read(s3, MANIFEST_KEY)["pieces"]] == ["2018", "2017", "2016"]
    publish(s3, app_module, "dock", slug="dock", title="Dock workers vote",
            published_at="2017-11-02T09:00:00+00:00")  # fmt: skip
    with Calls() as calls:
        out = app_module.update_search(SCHEDULED, None)
    assert out["pieces"] == 1 and out["records"] == 4  # 2017's three, and the new one
    touched = {k for _op, k in calls.calls}
    assert {k.split("/")[1] for k in touched if k.startswith("pagefind/20")} == {"2017"}
    # the other years' files are as they were, and still what their entries name
    second = bundle(s3)
    for key in first:
        if key.startswith(("pagefind/2016/", "pagefind/2018/")):
            assert second[key] == first[key]
    assert "/releases/dock/" in indexed(s3)
    assert read(s3, MANIFEST_KEY)["topics"] == ["Clean Water", "Côte d'Ivoire"]
    # a year with no release left loses its piece (2017 is rebuilt, 2016 goes)
    unpublish(s3, app_module, "dock")
    for i in range(3):
        unpublish(s3, app_module, f"r2016-{i}")
    out = app_module.update_search(SCHEDULED, None)
    assert out["pieces"] == 1 and out["deleted"] >= len([k for k in first if "/2016/" in k])
    assert [p["name"] for p in read(s3, MANIFEST_KEY)["pieces"]] == ["2018", "2017"]
    assert not any(k.startswith("pagefind/2016/") for k in bundle(s3))
    assert set(indexed(s3)) == {f"/releases/r{y}-{i}/" for y in (2017, 2018) for i in range(3)}


def test_a_deleted_release_leaves_the_index(app_module: Any):
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    publish(s3, app_module, "keep", slug="keep", title="Harbour wall finished")
    publish(s3, app_module, "gone", slug="gone", title="Mistaken casualty figures")
    app_module.update_search(SCHEDULED, None)
    assert set(indexed(s3)) == {"/releases/keep/", "/releases/gone/"}
    unpublish(s3, app_module, "gone")
    app_module.update_search(SCHEDULED, None)
    assert set(indexed(s3)) == {"/releases/keep/"}
    text = b"".join(
        gzip.decompress(b)
        for k, b in bundle(s3).items()
        if k.endswith((".pf_fragment", ".pf_index"))
    )
    assert b"casualty" not in text and b"Mistaken" not in text


def test_a_record_the_site_does_not_list_is_never_indexed(app_module: Any):
    """Even if the corpus wrongly holds an embargoed release (a listener bug, a
    stale month), the public month files decide what is indexed."""
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    publish(s3, app_module, "open", slug="open", title="Open letter")
    key = "releases/later.json"
    doc = make_release(slug="later", title="Embargoed budget", embargo_until="2999-01-01T00:00:00Z")
    upload(s3, key, doc)
    app_module.sync_release(sqs_event(key), None)
    release = parse_release(s3.get_object(Bucket=SOURCE, Key=key)["Body"].read(), name=key)
    SearchCorpus(S3Storage(s3, SOURCE)).on_commit(
        Commit(published=[Published(key, release, {"summary": "x"}, True)])
    )
    app_module.update_search(SCHEDULED, None)
    assert set(indexed(s3)) == {"/releases/open/"}


def test_a_new_pagefind_version_rebuilds_every_piece(app_module: Any):
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    for year in (2016, 2017):
        publish(s3, app_module, f"r{year}", slug=f"r{year}", title=f"Harbour report {year}",
                published_at=f"{year}-05-10T09:00:00+00:00")  # fmt: skip
    app_module.update_search(SCHEDULED, None)
    # the bundle was written by another Pagefind than the one installed now
    state = json.loads(s3.get_object(Bucket=SOURCE, Key="search/state.json")["Body"].read())
    state["pagefind"] = "1.0.0"
    s3.put_object(Bucket=SOURCE, Key="search/state.json", Body=json.dumps(state).encode())
    publish(s3, app_module, "dock", slug="dock", title="Dock workers vote",
            published_at="2017-11-02T09:00:00+00:00")  # fmt: skip
    out = app_module.update_search(SCHEDULED, None)
    assert out["pieces"] == 2 and out["records"] == 3  # 2016 too, though its months did not change
    state = json.loads(s3.get_object(Bucket=SOURCE, Key="search/state.json")["Body"].read())
    assert state["pagefind"] == read(s3, ENTRY_KEY)["version"] != "1.0.0"


def test_the_single_index_layout_gives_way_to_the_pieces(app_module: Any):
    """A bucket indexed before the pieces: its flat files go once the pieces
    and the manifest are in place; the runtime stays."""
    s3 = __import__("boto3").client("s3", region_name="us-east-1")
    publish(s3, app_module, "clinics", slug="clinics", title="Coastal clinics reopen")
    old = ["pagefind/fragment/en_0ld.pf_fragment", "pagefind/pagefind.en_0ld.pf_meta"]
    for key in old:
        s3.put_object(Bucket=PUBLIC, Key=key, Body=b"old")
    state = {"fingerprint": "before", "bundle": [*old, "pagefind/pagefind.js"]}
    s3.put_object(Bucket=SOURCE, Key="search/state.json", Body=json.dumps(state).encode())
    app_module.update_search(SCHEDULED, None)
    keys = set(bundle(s3))
    assert not keys & set(old) and "pagefind/pagefind.js" in keys
    assert indexed(s3) == {"/releases/clinics/": "Coastal clinics reopen"}
    assert referenced(s3) <= keys
