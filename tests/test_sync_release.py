"""sync_release, invoked as Lambda invokes it, with real S3 event JSON over moto."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from support import (
    EVENTS,
    PUBLIC,
    SAMPLES,
    SITE_URL,
    SOURCE,
    make_release,
    public_tree,
    publish,
    receipt,
    sqs_event,
    upload,
)

from chalicelib.core.render import Renderer
from chalicelib.settings import Settings
from newsroom.build import build_site


def index_slugs(s3) -> list[str]:
    doc = json.loads(s3.get_object(Bucket=PUBLIC, Key="index.json")["Body"].read())
    return [r["slug"] for r in doc["releases"]]


def test_url_encoded_key_from_a_real_event_file(app_module, aws) -> None:
    upload(aws, "releases/My Release (1).json", make_release(slug="my-release"))
    event = json.loads((EVENTS / "sqs_put_encoded_key.json").read_text())
    notification = json.loads(event["Records"][0]["body"])
    assert notification["Records"][0]["s3"]["object"]["key"] == "releases/My+Release+%281%29.json"
    assert app_module.sync_release(event, None) == {"batchItemFailures": []}
    r = receipt(aws, "releases/My Release (1).json")
    assert r["status"] == "published" and r["slug"] == "my-release"
    assert r["url"] == f"{SITE_URL}/releases/my-release/"
    assert r["errors"] == [] and r["processed_at"]
    assert "releases/my-release/index.html" in public_tree(aws)


def test_plus_in_a_key_is_a_space_and_percent_2b_is_a_plus(app_module, aws) -> None:
    publish(
        app_module,
        aws,
        "releases/a b+c.json",
        make_release(slug="abc"),
        encoded="releases/a+b%2Bc.json",
    )
    assert receipt(aws, "releases/a b+c.json")["status"] == "published"


def test_first_publish_writes_the_whole_tree(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    keys = set(public_tree(aws))
    for key in [
        "index.html",
        "index.json",
        "feed.xml",
        "sitemap.xml",
        "404.html",
        "archive/index.html",
        "archive/2018/12/index.html",
        "topics/index.html",
        "topics/clean-water/index.html",
        "topics/cote-d-ivoire/index.html",
        "releases/clinics/index.html",
    ]:
        assert key in keys, key
    assert any(k.startswith("assets/style.") and k.endswith(".css") for k in keys)
    assert "index/2018-12.json" in keys
    # no source JSON and no private state: only the index and its month files
    assert {k for k in keys if k.endswith(".json")} == {"index.json", "index/2018-12.json"}


def test_lambda_path_equals_local_build_byte_for_byte(app_module, aws) -> None:
    files = sorted(SAMPLES.glob("*.json"))
    for f in files:
        publish(app_module, aws, f"releases/{f.name}", f.read_bytes())
    tree = public_tree(aws)
    settings = Settings.from_env()
    built = build_site(
        [(f"releases/{f.name}", f.read_bytes()) for f in files],
        Renderer(settings),
        now=datetime.now(timezone.utc),
    )
    assert set(tree) == set(built.files)
    for key, body in built.files.items():
        assert tree[key] == body, key


def test_front_page_and_index_are_newest_first(app_module, aws) -> None:
    publish(
        app_module,
        aws,
        "releases/old.json",
        make_release(title="Old", published_at="2018-01-01T10:00:00Z"),
    )
    publish(
        app_module,
        aws,
        "releases/new.json",
        make_release(title="New", published_at="2019-01-01T10:00:00Z"),
    )
    publish(
        app_module,
        aws,
        "releases/mid.json",
        make_release(title="Mid", published_at="2018-06-01T10:00:00Z"),
    )
    assert index_slugs(aws) == ["new", "mid", "old"]
    front = aws.get_object(Bucket=PUBLIC, Key="index.html")["Body"].read().decode()
    assert (
        front.index("/releases/new/")
        < front.index("/releases/mid/")
        < front.index("/releases/old/")
    )


def test_equal_instants_are_ordered_by_slug(app_module, aws) -> None:
    for slug in ["b", "c", "a"]:
        publish(
            app_module,
            aws,
            f"releases/{slug}.json",
            make_release(published_at="2018-01-01T10:00:00-05:00"),
        )
    publish(app_module, aws, "releases/d.json", make_release(published_at="2018-01-01T15:00:00Z"))
    assert index_slugs(aws) == ["a", "b", "c", "d"]


def test_index_json_entries(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    doc = json.loads(aws.get_object(Bucket=PUBLIC, Key="index.json")["Body"].read())
    assert doc["version"] == 2
    assert doc["months"] == [
        {"month": "2018-12", "url": f"{SITE_URL}/index/2018-12.json", "count": 1}
    ]
    month = json.loads(aws.get_object(Bucket=PUBLIC, Key="index/2018-12.json")["Body"].read())
    assert month["version"] == 2 and month["month"] == "2018-12"
    assert month["releases"] == doc["releases"]
    (e,) = doc["releases"]
    # public fields only: no source file name, digest or revision
    assert set(e) == {
        "slug", "title", "kind", "kind_label", "published_at", "updated_at", "summary",
        "url", "image", "topics", "language",
    }  # fmt: skip
    assert e["language"] == "en"
    assert e["slug"] == "clinics" and e["kind"] == "press-release"
    assert e["title"] == "Coastal clinics reopen after the storm"
    assert e["published_at"] == "2018-12-19T10:00:00-05:00"
    assert e["summary"] == "Three clinics reopen in Bayline."
    assert e["url"] == f"{SITE_URL}/releases/clinics/"
    assert e["image"]["alt"] == "Nurses outside a clinic"
    assert e["topics"] == ["Clean Water", "Côte d'Ivoire"]


def test_overwrite_updates_in_place(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    publish(app_module, aws, "releases/clinics.json", make_release(title="Clinics reopen: update"))
    page = aws.get_object(Bucket=PUBLIC, Key="releases/clinics/index.html")["Body"].read().decode()
    assert "Clinics reopen: update" in page
    assert index_slugs(aws) == ["clinics"]
    front = aws.get_object(Bucket=PUBLIC, Key="index.html")["Body"].read().decode()
    assert "Clinics reopen: update" in front and "after the storm" not in front


def test_changing_the_slug_moves_the_page(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    publish(app_module, aws, "releases/clinics.json", make_release(slug="clinics-reopen"))
    keys = set(public_tree(aws))
    assert "releases/clinics-reopen/index.html" in keys
    assert "releases/clinics/index.html" not in keys
    assert index_slugs(aws) == ["clinics-reopen"]


def test_delete_takes_the_release_down_everywhere(app_module, aws) -> None:
    publish(
        app_module, aws, "releases/keep.json", make_release(title="Keep me", topics=["Climate"])
    )
    publish(app_module, aws, "releases/clinics.json", make_release(title="Remove me"))
    aws.delete_object(Bucket=SOURCE, Key="releases/clinics.json")
    app_module.sync_release(sqs_event("releases/clinics.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert "releases/clinics/index.html" not in tree
    assert "topics/clean-water/index.html" not in tree  # its only release is gone
    for key, body in tree.items():
        assert b"Remove me" not in body, key
        assert b"/releases/clinics/" not in body, key
    assert index_slugs(aws) == ["keep"]
    r = receipt(aws, "releases/clinics.json")
    assert r["status"] == "unpublished" and r["errors"] == []
    assert r["slug"] == "clinics"  # names what was taken down
    assert json.loads(tree["index.json"]).get("withdrawing") is None


def test_deleting_the_last_release_leaves_an_empty_newsroom(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    aws.delete_object(Bucket=SOURCE, Key="releases/clinics.json")
    app_module.sync_release(sqs_event("releases/clinics.json", "ObjectRemoved:Delete"), None)
    tree = public_tree(aws)
    assert index_slugs(aws) == []
    assert b"No releases have been published yet." in tree["index.html"]
    assert not any(k.startswith("releases/") for k in tree)


def test_invalid_upload_is_rejected_with_field_errors_and_changes_nothing(app_module, aws) -> None:
    publish(app_module, aws, "releases/good.json", make_release())
    before = public_tree(aws)
    out = publish(
        app_module,
        aws,
        "releases/bad.json",
        make_release(image={"url": "/media/a.jpg"}, kind="blog"),
    )
    assert out == {"batchItemFailures": []}, "bad input is not retried"
    r = receipt(aws, "releases/bad.json")
    assert r["status"] == "rejected"
    locs = {e["loc"] for e in r["errors"]}
    assert {"image.alt", "kind"} <= locs
    assert public_tree(aws) == before


def test_invalid_overwrite_keeps_the_published_version_live(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    before = public_tree(aws)
    publish(app_module, aws, "releases/clinics.json", make_release(titel="typo"))
    r = receipt(aws, "releases/clinics.json")
    assert r["status"] == "rejected" and "stays live" in r["message"]
    assert public_tree(aws) == before


def test_a_second_file_claiming_a_held_slug_is_rejected_naming_the_holder(app_module, aws) -> None:
    publish(app_module, aws, "releases/first.json", make_release(slug="shared", title="First"))
    before = public_tree(aws)
    publish(app_module, aws, "releases/second.json", make_release(slug="shared", title="Second"))
    r = receipt(aws, "releases/second.json")
    assert r["status"] == "rejected"
    assert r["errors"][0]["loc"] == "slug" and "releases/first.json" in r["errors"][0]["msg"]
    assert public_tree(aws) == before
    # deleting the holder frees the slug
    aws.delete_object(Bucket=SOURCE, Key="releases/first.json")
    app_module.sync_release(sqs_event("releases/first.json", "ObjectRemoved:Delete"), None)
    app_module.sync_release(sqs_event("releases/second.json"), None)
    assert receipt(aws, "releases/second.json")["status"] == "published"
    page = aws.get_object(Bucket=PUBLIC, Key="releases/shared/index.html")["Body"].read()
    assert b"Second" in page


def test_duplicate_event_changes_no_byte(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    before = {k: v for k, v in public_tree(aws).items()}
    etags = {o["Key"]: o["ETag"] for o in aws.list_objects_v2(Bucket=PUBLIC)["Contents"]}
    app_module.sync_release(sqs_event("releases/clinics.json"), None)
    assert public_tree(aws) == before
    assert {o["Key"]: o["ETag"] for o in aws.list_objects_v2(Bucket=PUBLIC)["Contents"]} == etags


def test_late_created_event_after_delete_does_not_resurrect(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    aws.delete_object(Bucket=SOURCE, Key="releases/clinics.json")
    app_module.sync_release(sqs_event("releases/clinics.json", "ObjectRemoved:Delete"), None)
    app_module.sync_release(sqs_event("releases/clinics.json", "ObjectCreated:Put"), None)  # late
    assert "releases/clinics/index.html" not in public_tree(aws)


def test_late_removed_event_after_reupload_does_not_take_it_down(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    app_module.sync_release(sqs_event("releases/clinics.json", "ObjectRemoved:Delete"), None)
    assert "releases/clinics/index.html" in public_tree(aws)
    assert receipt(aws, "releases/clinics.json")["status"] == "published"


def test_keys_outside_releases_are_ignored_by_the_handler(app_module, aws) -> None:
    aws.put_object(Bucket=SOURCE, Key="notes/readme.json", Body=b"{}")
    out = app_module.sync_release(sqs_event("notes/readme.json"), None)
    assert out == {"batchItemFailures": []}
    assert public_tree(aws) == {}
    assert "receipts/notes/readme.json" not in public_tree(aws, SOURCE)


def test_every_object_has_content_type_and_cache_control(app_module, aws) -> None:
    publish(app_module, aws, "releases/clinics.json", make_release())
    expected = {
        ".html": "text/html; charset=utf-8",
        ".json": "application/json",
        ".css": "text/css",
        ".svg": "image/svg+xml",
        ".txt": "text/plain; charset=utf-8",
    }
    for item in aws.list_objects_v2(Bucket=PUBLIC)["Contents"]:
        key = item["Key"]
        head = aws.head_object(Bucket=PUBLIC, Key=key)
        assert head.get("CacheControl"), key
        if key.endswith("feed.xml"):
            assert head["ContentType"] == "application/atom+xml; charset=utf-8"
        elif key.endswith(".xml"):
            assert head["ContentType"] == "application/xml"
        else:
            assert head["ContentType"] == expected[key[key.rfind(".") :]], key
