"""Every public object: the right Content-Type and a Cache-Control suited to it."""

from __future__ import annotations

import hashlib
import re

from support import PUBLIC, SOURCE, make_release, public_tree, publish, sqs_event

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40 + b"\xff\xd9"
PDF = b"%PDF-1.4\n%%EOF\n"


def expected_type(key: str) -> str:
    if key.endswith("feed.xml"):
        return "application/atom+xml; charset=utf-8"
    ext = key.rsplit(".", 1)[-1]
    return {
        "html": "text/html; charset=utf-8",
        "json": "application/json",
        "xml": "application/xml",
        "css": "text/css",
        "jpg": "image/jpeg",
        "pdf": "application/pdf",
        "svg": "image/svg+xml",
        "txt": "text/plain; charset=utf-8",
    }[ext]


def max_age(cache_control: str) -> int:
    m = re.search(r"(?:^|[ ,])max-age=(\d+)", cache_control)
    assert m, cache_control
    return int(m.group(1))


def populate(app_module, s3) -> dict[str, bytes]:
    for n, (kind, topics) in enumerate(
        [("press-release", ["Clean Water"]), ("report", ["Refugees and Migrants"])]
    ):
        doc = make_release(
            slug=f"release-{n}",
            kind=kind,
            topics=topics,
            published_at=f"201{7 + n}-06-0{n + 1}T09:00:00Z",
            attachments=[{"title": "Report", "url": "/media/report.pdf"}],
        )
        publish(app_module, s3, f"releases/release-{n}.json", doc)
    for key, body in [("media/clinic.jpg", JPEG), ("media/report.pdf", PDF)]:
        s3.put_object(Bucket=SOURCE, Key=key, Body=body)
        app_module.sync_release(sqs_event(key), None)
    return public_tree(s3)


def test_every_public_object_has_the_right_type_and_cache(app_module, aws) -> None:
    tree = populate(app_module, aws)
    listing_ages, page_ages = [], []
    for key, body in sorted(tree.items()):
        head = aws.head_object(Bucket=PUBLIC, Key=key)
        assert head["ContentType"] == expected_type(key), key
        cc = head["CacheControl"]
        assert cc.startswith("public"), (key, cc)
        age = max_age(cc)
        if key.startswith("assets/"):
            # long-lived and immutable: the name changes with the content
            assert age >= 31536000 and "immutable" in cc, key
            digest = re.search(r"\.([0-9a-f]{8,})\.[a-z]+$", key)
            assert digest, key
            assert hashlib.sha256(body).hexdigest().startswith(digest.group(1)), key
        elif key.startswith("media/"):
            assert age >= 3600, key
        elif key.startswith("releases/"):
            page_ages.append(age)
        else:
            assert age <= 300, (key, cc)  # listings, feeds, sitemaps, index.json
            listing_ages.append(age)
    assert page_ages and listing_ages
    assert min(page_ages) > max(listing_ages)


def test_the_stylesheet_is_an_asset_with_a_hashed_name(app_module, aws) -> None:
    tree = populate(app_module, aws)
    css = [k for k in tree if k.endswith(".css")]
    assert len(css) == 1 and css[0].startswith("assets/")
    assert f'href="/{css[0]}"'.encode() in tree["index.html"]


def test_no_source_json_is_public(app_module, aws) -> None:
    tree = populate(app_module, aws)
    # the index and its month files only: no source JSON, no private state
    assert [k for k in tree if k.endswith(".json")] == [
        "index.json", "index/2017-06.json", "index/2018-06.json"
    ]  # fmt: skip
    assert not any(k.startswith(("receipts/", "releases/release-0.json")) for k in tree)
