"""CloudFront: one invalidation per publish, listing exactly the changed paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support import (
    PUBLIC,
    SOURCE,
    cloudfront_distribution,
    make_release,
    public_tree,
    publish,
    sqs_event,
)

from chalicelib import service
from chalicelib.keys import invalidation_paths

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40 + b"\xff\xd9"


def served_paths(key: str) -> set[str]:
    """How readers reach a public key: pages as /x/ and /x/index.html."""
    if key == "index.html":
        return {"/", "/index.html"}
    if key.endswith("/index.html"):
        return {"/" + key[: -len("index.html")], "/" + key}
    return {"/" + key}


def paths_of(keys: set[str]) -> set[str]:
    out: set[str] = set()
    for key in keys:
        out |= served_paths(key)
    return out


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


@pytest.fixture
def cloudfront(aws, monkeypatch) -> Any:
    cf, dist_id = cloudfront_distribution(monkeypatch)
    cf.dist_id = dist_id  # type: ignore[attr-defined]
    return cf


def invalidation_ids(cf) -> list[str]:
    listing = cf.list_invalidations(DistributionId=cf.dist_id)["InvalidationList"]
    return [item["Id"] for item in listing.get("Items", [])]


def paths_sent(cf, inv_id: str) -> set[str]:
    inv = cf.get_invalidation(DistributionId=cf.dist_id, Id=inv_id)["Invalidation"]
    paths = inv["InvalidationBatch"]["Paths"]
    assert paths["Quantity"] == len(paths["Items"])
    return set(paths["Items"])


class Sent:
    """Invalidations sent since the last look (no reliance on listing order)."""

    def __init__(self, cf) -> None:
        self.cf = cf
        self.seen: set[str] = set()

    def new(self) -> list[set[str]]:
        ids = [i for i in invalidation_ids(self.cf) if i not in self.seen]
        self.seen.update(ids)
        return [paths_sent(self.cf, i) for i in ids]


@pytest.fixture
def public_puts(aws) -> Iterator[list[str]]:
    """Keys the Lambda's S3 client writes to the public bucket."""
    seen: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == PUBLIC:
            seen.append(params["Key"])

    client = service.s3_client()
    client.meta.events.register("before-parameter-build.s3.PutObject", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-parameter-build.s3.PutObject", record)


def test_each_publish_invalidates_exactly_the_changed_paths(
    app_module, aws, cloudfront, public_puts
) -> None:
    sent = Sent(cloudfront)
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics"))
    first = public_tree(aws)
    [inv] = sent.new()
    assert inv == paths_of(set(first))  # empty bucket: the whole tree is new
    assert {"/releases/clinics/", "/releases/clinics/index.html", "/", "/index.html"} <= inv

    public_puts.clear()
    publish(
        app_module,
        aws,
        "releases/water.json",
        make_release(
            slug="water",
            title="Water report",
            kind="report",
            published_at="2018-12-20T10:00:00-05:00",
            topics=["Clean Water"],
        ),
    )
    second = public_tree(aws)
    diff = changed(first, second)
    assert sent.new() == [paths_of(diff)]
    assert set(public_puts) == {k for k in diff if k in second}
    # each page once; index.json (the commit point) may take a claim write first
    assert all(public_puts.count(k) == 1 for k in public_puts if k != "index.json")
    # untouched: another kind's page, the 404 page, the stylesheet
    assert "kinds/statement/index.html" not in diff
    assert "404.html" not in diff
    assert not any(k.startswith("assets/") for k in diff)


def test_body_edit_touches_only_the_page(
    app_module, aws, cloudfront, public_puts
) -> None:
    sent = Sent(cloudfront)
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics"))
    sent.new()
    before = public_tree(aws)
    public_puts.clear()
    doc = make_release(slug="clinics", body="A corrected body. Nothing else changed.")
    publish(app_module, aws, "releases/clinics.json", doc)
    after = public_tree(aws)
    diff = changed(before, after)
    # the listings and index.json show the summary, not the body: their bytes
    # are the same (the page's new revision is private state)
    assert diff == {"releases/clinics/index.html"}
    assert set(public_puts) == diff
    assert public_puts.count("releases/clinics/index.html") == 1
    assert sent.new() == [{"/releases/clinics/", "/releases/clinics/index.html"}]


def test_republishing_identical_bytes_rewrites_and_invalidates_nothing(
    app_module, aws, cloudfront, public_puts
) -> None:
    sent = Sent(cloudfront)
    doc = make_release(slug="clinics")
    publish(app_module, aws, "releases/clinics.json", doc)
    assert len(sent.new()) == 1
    before = public_tree(aws)
    public_puts.clear()
    publish(app_module, aws, "releases/clinics.json", doc)
    app_module.sync_release(sqs_event("releases/clinics.json"), None)  # duplicate event
    assert public_puts == []
    assert sent.new() == []
    assert public_tree(aws) == before


def test_unpublish_invalidates_the_deleted_and_changed_paths(app_module, aws, cloudfront) -> None:
    sent = Sent(cloudfront)
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics"))
    publish(
        app_module,
        aws,
        "releases/other.json",
        make_release(slug="other", topics=["Other Topic"], published_at="2017-05-01T09:00:00Z"),
    )
    sent.new()
    before = public_tree(aws)
    aws.delete_object(Bucket=SOURCE, Key="releases/other.json")
    app_module.sync_release(sqs_event("releases/other.json", "ObjectRemoved:Delete"), None)
    after = public_tree(aws)
    diff = changed(before, after)
    gone = diff - after.keys()
    assert {"releases/other/index.html", "topics/other-topic/index.html"} <= gone
    assert "sitemaps/2017-05.xml" in gone
    assert sent.new() == [paths_of(diff)]


def test_media_changes_are_invalidated_unchanged_media_are_not(app_module, aws, cloudfront) -> None:
    sent = Sent(cloudfront)
    # media follow releases: one public release uses the photo
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics"))
    sent.new()
    aws.put_object(Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG)
    app_module.sync_release(sqs_event("media/clinic.jpg"), None)
    assert sent.new() == [{"/media/clinic.jpg"}]
    app_module.sync_release(sqs_event("media/clinic.jpg"), None)
    assert sent.new() == []
    aws.put_object(Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG + b"\x00")
    app_module.sync_release(sqs_event("media/clinic.jpg"), None)
    assert sent.new() == [{"/media/clinic.jpg"}]
    aws.delete_object(Bucket=SOURCE, Key="media/clinic.jpg")
    app_module.sync_release(sqs_event("media/clinic.jpg", "ObjectRemoved:Delete"), None)
    assert sent.new() == [{"/media/clinic.jpg"}]


def test_a_media_name_with_spaces_is_invalidated_percent_encoded(
    app_module, aws, cloudfront
) -> None:
    sent = Sent(cloudfront)
    image = {"url": "/media/My%20Photo%20(1)%20%5Bfinal%5D.jpg", "alt": "Nurses"}
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics", image=image))
    sent.new()
    key = "media/My Photo (1) [final].jpg"
    aws.put_object(Bucket=SOURCE, Key=key, Body=JPEG)
    app_module.sync_release(sqs_event("media/My+Photo+%281%29+%5Bfinal%5D.jpg"), None)
    assert key in public_tree(aws)
    # CloudFront matches the path a browser asks for: spaces and brackets encoded
    assert sent.new() == [{"/media/My%20Photo%20(1)%20%5Bfinal%5D.jpg"}]
    aws.delete_object(Bucket=SOURCE, Key=key)
    app_module.sync_release(
        sqs_event("media/My+Photo+%281%29+%5Bfinal%5D.jpg", "ObjectRemoved:Delete"), None
    )
    assert sent.new() == [{"/media/My%20Photo%20(1)%20%5Bfinal%5D.jpg"}]


def test_invalidation_paths_are_percent_encoded() -> None:
    assert invalidation_paths("media/Café & Co (1).jpg") == ["/media/Caf%C3%A9%20&%20Co%20(1).jpg"]
    assert invalidation_paths("media/a+b,c;d=e@f~g!h$i'j.pdf") == ["/media/a+b,c;d=e@f~g!h$i'j.pdf"]
    assert invalidation_paths("releases/clinics/index.html") == [
        "/releases/clinics/",
        "/releases/clinics/index.html",
    ]


def test_no_distribution_means_no_invalidation(app_module, aws, cloudfront, monkeypatch) -> None:
    monkeypatch.delenv("NEWSROOM_DISTRIBUTION_ID")
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics"))
    assert "releases/clinics/index.html" in public_tree(aws)
    assert invalidation_ids(cloudfront) == []
