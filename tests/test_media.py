"""Media: media/ in the source bucket -> /media/ on the site, through the publish queue."""

from __future__ import annotations

import json
import struct
import zlib
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from support import (
    PUBLIC,
    SITE_URL,
    SOURCE,
    make_release,
    public_tree,
    publish,
    receipt,
    sqs_event,
    upload,
)

from chalicelib import service
from chalicelib.media import media_key_problem
from newsroom.cli import main

JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 64
    + b"\xff\xd9"
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def put_media(app_module, s3, key: str, body: bytes, encoded: str | None = None):
    """Upload, deliver the notification through the publish queue's handler,
    and return the media receipt it wrote."""
    s3.put_object(Bucket=SOURCE, Key=key, Body=body)
    assert app_module.sync_release(sqs_event(encoded or key), None) == {"batchItemFailures": []}
    return [media_receipt(s3, key)]


def reference(app_module, s3, *keys: str, name: str = "uses-media", **fields) -> None:
    """Publish a release whose attachments reference ``keys`` (media follow releases)."""
    doc = make_release(
        slug=name,
        image=None,
        attachments=[{"title": k, "url": "/" + k} for k in keys],
        **fields,
    )
    upload(s3, f"releases/{name}.json", doc)
    app_module.sync_release(sqs_event(f"releases/{name}.json"), None)


def media_receipt(s3, key: str) -> dict:
    return receipt(s3, key + ".json")


def head(s3, key: str) -> dict:
    return s3.head_object(Bucket=PUBLIC, Key=key)


@pytest.mark.parametrize(
    ("key", "body", "ctype"),
    [
        ("media/clinic.jpg", JPEG, "image/jpeg"),
        ("media/2018/photo.JPEG", JPEG, "image/jpeg"),
        ("media/chart.png", png(), "image/png"),
        ("media/reports/water-report_v2.pdf", PDF, "application/pdf"),
    ],
)
def test_upload_appears_under_media_with_its_type(app_module, aws, key, body, ctype) -> None:
    reference(app_module, aws, key)
    [out] = put_media(app_module, aws, key, body)
    assert out["status"] == "published"
    assert out["url"] == f"{SITE_URL}/{key}"
    h = head(aws, key)
    assert h["ContentType"] == ctype
    assert "max-age=" in h["CacheControl"]
    assert aws.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == body
    r = media_receipt(aws, key)
    assert r["status"] == "published" and r["errors"] == []


@pytest.mark.parametrize(
    ("key", "body", "why"),
    [
        ("media/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "file type"),
        ("media/page.html", b"<script>alert(1)</script>", "file type"),
        ("media/data.json", b"{}", "file type"),
        ("media/index.html", b"<h1>x</h1>", "file type"),
        ("media/noextension", JPEG, "file type"),
        ("media/fake.jpg", b"<html><script>alert(1)</script></html>", "does not look like a JPG"),
        ("media/.hidden.jpg", JPEG, "not a safe media path"),
    ],
)
def test_refused_files_never_reach_the_public_bucket(app_module, aws, key, body, why) -> None:
    reference(app_module, aws, key)
    [out] = put_media(app_module, aws, key, body)
    assert out["status"] == "rejected"
    assert why in out["errors"][0]["msg"]
    assert media_receipt(aws, key)["status"] == "rejected"
    assert key not in public_tree(aws)


def test_a_staff_name_arrives_encoded_and_follows_its_release(app_module, aws) -> None:
    key = "media/My Photo (1).jpg"
    image = {"url": "/media/My%20Photo%20(1).jpg", "alt": "Nurses outside a clinic"}
    body = "See [the photo](/media/My%20Photo%20(1).jpg) in full."
    upload(aws, "releases/photo.json", make_release(slug="photo", image=image, body=body))
    app_module.sync_release(sqs_event("releases/photo.json"), None)
    [warning] = receipt(aws, "releases/photo.json")["warnings"]  # the file is not up yet
    assert warning["loc"] == "image.url" and "does not exist yet" in warning["msg"]
    [out] = put_media(app_module, aws, key, JPEG, "media/My+Photo+%281%29.jpg")
    assert out["source_key"] == key
    assert out["status"] == "published", out
    assert out["url"] == SITE_URL + "/media/My%20Photo%20(1).jpg"
    tree = public_tree(aws)
    assert tree[key] == JPEG
    assert head(aws, key)["ContentType"] == "image/jpeg"
    page = tree["releases/photo/index.html"].decode()
    assert 'src="/media/My%20Photo%20(1).jpg"' in page
    assert 'href="/media/My%20Photo%20(1).jpg"' in page
    assert "/media/My Photo" not in page
    entry = json.loads(tree["index.json"])["releases"][0]
    assert "/media/My%20Photo%20(1).jpg" in entry["image"]["url"]
    assert SITE_URL + "/media/My%20Photo%20(1).jpg" in tree["feed.xml"].decode()

    aws.delete_object(Bucket=SOURCE, Key="releases/photo.json")
    app_module.sync_release(sqs_event("releases/photo.json", "ObjectRemoved:Delete"), None)
    assert key not in public_tree(aws)
    assert media_receipt(aws, key)["status"] == "removed"


def test_punctuation_and_non_ascii_letters_in_names_are_published(app_module, aws) -> None:
    key = "media/Q&A, it's [final] +1 @home $5; a=b~! Café/Ünïcode ✓.pdf"
    path = "/media/" + quote(key[len("media/") :], safe="/!$&'()*+,;=:@")
    doc = make_release(slug="qa", image=None, attachments=[{"title": "Q&A", "url": path}])
    upload(aws, "releases/qa.json", doc)
    app_module.sync_release(sqs_event("releases/qa.json"), None)
    [out] = put_media(app_module, aws, key, PDF, quote_plus(key, safe="/"))
    assert out["status"] == "published", out
    assert public_tree(aws)[key] == PDF
    page = public_tree(aws)["releases/qa/index.html"].decode()
    # in HTML the "&" is escaped; the reader's browser asks for the encoded path
    assert 'href="/media/Q&amp;A,%20it&#39;s%20%5Bfinal%5D%20+1%20@home%20$5;%20a=b~!' in page


def test_a_name_written_unencoded_in_the_release_is_encoded_on_the_page(app_module, aws) -> None:
    image = {"url": "/media/Café[1].jpg", "alt": "A café"}
    upload(aws, "releases/cafe.json", make_release(slug="cafe", image=image))
    app_module.sync_release(sqs_event("releases/cafe.json"), None)
    [out] = put_media(app_module, aws, "media/Café[1].jpg", JPEG, quote_plus("media/Café[1].jpg"))
    assert out["status"] == "published", out
    page = public_tree(aws)["releases/cafe/index.html"].decode()
    assert 'src="/media/Caf%C3%A9%5B1%5D.jpg"' in page


def test_a_reference_with_a_literal_space_is_refused(app_module, aws) -> None:
    image = {"url": "/media/My Photo (1).jpg", "alt": "Nurses outside a clinic"}
    publish(app_module, aws, "releases/space.json", make_release(slug="space", image=image))
    out = receipt(aws, "releases/space.json")
    assert out["status"] == "rejected"
    assert out["errors"][0]["loc"] == "image.url"
    assert "spaces" in out["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("media/a//b.jpg", "empty folder"),
        ("media/.hidden.jpg", "starts with a dot"),
        ("media/ lead.jpg", "starts with a dot or a space"),
        ("media/folder /a.jpg", "ends with a space"),
        ("media/a/../b.jpg", "starts with a dot"),
        ("media/a..b.jpg", "'..'"),
        ("media/a\\b.jpg", "holds '\\\\'"),
        ("media/a?b.jpg", "holds '?'"),
        ("media/a#b.jpg", "holds '#'"),
        ("media/100%.jpg", "holds '%'"),
        ('media/a"b.jpg', "holds '\"'"),
        ("media/a<b.jpg", "holds '<'"),
        ("media/a>b.jpg", "holds '>'"),
        ("media/a*b.jpg", "holds '*'"),
        ("media/a\x7fb.jpg", "U+007F"),
        ("media/a\u2028b.jpg", "U+2028"),
        ("media/a\u2029b.jpg", "U+2029"),
        ("media/" + "a" * 300 + ".jpg", "longer than 300"),
    ],
)
def test_unsafe_names_get_a_rejected_receipt(app_module, aws, key, why) -> None:
    reference(app_module, aws, key)
    [out] = put_media(app_module, aws, key, JPEG, quote_plus(key, safe="/"))
    assert out["source_key"] == key
    assert out["status"] == "rejected"
    assert "is not a safe media path" in out["errors"][0]["msg"]
    assert why in out["errors"][0]["msg"]
    assert not any(k.startswith("media/") for k in public_tree(aws))


@pytest.mark.parametrize(
    "key",
    [
        "media/../index.html.jpg",
        "media/a//b.jpg",
        "media/a/./b.jpg",
        "releases/x.jpg",
        "media/a\x01b.jpg",
        "media/tab\tname.jpg",
        "media/line\nbreak.jpg",
        "media/lone\ud800.jpg",
        "media/non\uffffchar.jpg",
        "media/trailing.jpg ",
        "media/My Photo (1).svg",
    ],
)
def test_media_key_problem_refuses_unsafe_paths(key) -> None:
    assert media_key_problem(key) is not None


@pytest.mark.parametrize(
    "key",
    [
        "media/My Photo (1).JPG",
        "media/2018/Press kit – final/Ärztin im Einsatz.jpeg",
        "media/Q&A, it's [final] +1 @home $5; a=b~!.pdf",
        "media/写真.png",
    ],
)
def test_media_key_problem_accepts_names_as_staff_give_them(key) -> None:
    assert media_key_problem(key) is None


def test_delete_removes_it_and_events_converge(app_module, aws) -> None:
    reference(app_module, aws, "media/clinic.jpg")
    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    # a duplicate, late create event after the delete: still converges to "gone"
    aws.delete_object(Bucket=SOURCE, Key="media/clinic.jpg")
    app_module.sync_release(sqs_event("media/clinic.jpg", "ObjectRemoved:Delete"), None)
    assert "media/clinic.jpg" not in public_tree(aws)
    assert media_receipt(aws, "media/clinic.jpg")["status"] == "removed"
    app_module.sync_release(sqs_event("media/clinic.jpg"), None)
    out = media_receipt(aws, "media/clinic.jpg")
    assert out["status"] == "removed"
    assert "media/clinic.jpg" not in public_tree(aws)


def test_same_bytes_again_are_not_rewritten(app_module, aws) -> None:
    reference(app_module, aws, "media/clinic.jpg")
    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    public = service.publisher().public
    before = public.counters.requests.get("PutObject", 0)
    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    assert public.counters.requests.get("PutObject", 0) == before
    put_media(app_module, aws, "media/clinic.jpg", JPEG + b"\x00")
    assert public.counters.requests.get("PutObject", 0) == before + 1


def test_a_replacement_that_is_refused_keeps_the_live_version(app_module, aws) -> None:
    reference(app_module, aws, "media/clinic.jpg")
    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    [out] = put_media(app_module, aws, "media/clinic.jpg", b"not an image")
    assert out["status"] == "rejected"
    assert "previously published version stays live" in out["message"]
    assert aws.get_object(Bucket=PUBLIC, Key="media/clinic.jpg")["Body"].read() == JPEG


def test_an_archived_replacement_is_rejected_saying_why_and_the_live_one_stays(
    app_module, aws
) -> None:
    """A media file S3 keeps in Glacier cannot be read by any retry: before,
    its message failed until the dead-letter queue."""
    reference(app_module, aws, "media/clinic.jpg")
    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    aws.put_object(
        Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG + b"\x00", StorageClass="GLACIER"
    )
    assert app_module.sync_release(sqs_event("media/clinic.jpg"), None) == {"batchItemFailures": []}
    out = media_receipt(aws, "media/clinic.jpg")
    assert out["status"] == "rejected" and "archive storage class" in out["errors"][0]["msg"]
    assert aws.get_object(Bucket=PUBLIC, Key="media/clinic.jpg")["Body"].read() == JPEG


def test_release_pointing_at_missing_media_gets_a_warning(app_module, aws) -> None:
    doc = make_release(attachments=[{"title": "Full report", "url": "/media/report.pdf"}])
    publish(app_module, aws, "releases/clinics.json", doc)
    r = receipt(aws, "releases/clinics.json")
    assert r["status"] == "published"
    locs = {w["loc"]: w["msg"] for w in r["warnings"]}
    assert set(locs) == {"image.url", "attachments.0.url"}
    assert "/media/clinic.jpg does not exist yet" in locs["image.url"]
    assert "media/ in the source bucket" in locs["image.url"]

    put_media(app_module, aws, "media/clinic.jpg", JPEG)
    put_media(app_module, aws, "media/report.pdf", PDF)
    app_module.sync_release(sqs_event("releases/clinics.json"), None)
    assert receipt(aws, "releases/clinics.json")["warnings"] == []


def test_https_images_are_not_checked(app_module, aws) -> None:
    doc = make_release(image={"url": "https://cdn.example.org/x.jpg", "alt": "A clinic"})
    publish(app_module, aws, "releases/clinics.json", doc)
    assert receipt(aws, "releases/clinics.json")["warnings"] == []


def test_build_copies_only_allowed_media(tmp_path) -> None:
    src = tmp_path / "src"
    (src / "media").mkdir(parents=True)
    (src / "media" / "clinic.jpg").write_bytes(JPEG)
    (src / "media" / "evil.svg").write_bytes(b"<svg/>")
    (src / "media" / "unused.jpg").write_bytes(JPEG)
    (src / "clinics.json").write_text(__import__("json").dumps(make_release()), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "media" / "clinic.jpg").read_bytes() == JPEG
    assert not (out / "media" / "evil.svg").exists()
    assert not (out / "media" / "unused.jpg").exists(), "media follow releases"
    assert "evil.svg: (file): has a file type that is not published" in result.output


def test_build_copies_media_named_as_staff_name_them(tmp_path) -> None:
    src = tmp_path / "src"
    (src / "media" / "Press kit").mkdir(parents=True)
    (src / "media" / "Press kit" / "My Photo (1).jpg").write_bytes(JPEG)
    image = {"url": "/media/Press%20kit/My%20Photo%20(1).jpg", "alt": "Nurses"}
    doc = make_release(image=image)
    (src / "clinics.json").write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "will be broken" not in result.output
    assert (out / "media" / "Press kit" / "My Photo (1).jpg").read_bytes() == JPEG
    page = next(out.glob("releases/*/index.html")).read_text(encoding="utf-8")
    assert 'src="/media/Press%20kit/My%20Photo%20(1).jpg"' in page


# Media follow releases ---------------------------------------------------------
def test_media_no_public_release_references_are_held(app_module, aws) -> None:
    [out] = put_media(app_module, aws, "media/report.pdf", PDF)
    assert out["status"] == "held"
    assert "media/report.pdf" not in public_tree(aws)


def test_upload_order_does_not_matter(app_module, aws) -> None:
    # media first: held, then public with the release that uses it
    put_media(app_module, aws, "media/first.pdf", PDF)
    reference(app_module, aws, "media/first.pdf", name="a")
    assert public_tree(aws)["media/first.pdf"] == PDF
    assert media_receipt(aws, "media/first.pdf")["status"] == "published"
    # release first: the upload goes public at once
    reference(app_module, aws, "media/second.pdf", name="b")
    assert "media/second.pdf" not in public_tree(aws)
    [out] = put_media(app_module, aws, "media/second.pdf", PDF)
    assert out["status"] == "published"
    assert public_tree(aws)["media/second.pdf"] == PDF


def test_the_last_reference_gone_removes_the_media(app_module, aws) -> None:
    put_media(app_module, aws, "media/shared.pdf", PDF)
    reference(app_module, aws, "media/shared.pdf", name="one")
    reference(app_module, aws, "media/shared.pdf", name="two")
    aws.delete_object(Bucket=SOURCE, Key="releases/one.json")
    app_module.sync_release(sqs_event("releases/one.json", "ObjectRemoved:Delete"), None)
    assert "media/shared.pdf" in public_tree(aws), "still referenced by the other"
    aws.delete_object(Bucket=SOURCE, Key="releases/two.json")
    app_module.sync_release(sqs_event("releases/two.json", "ObjectRemoved:Delete"), None)
    assert "media/shared.pdf" not in public_tree(aws)
    assert media_receipt(aws, "media/shared.pdf")["status"] == "removed"


def test_body_links_and_images_reference_media(app_module, aws) -> None:
    put_media(app_module, aws, "media/chart.png", png())
    put_media(app_module, aws, "media/annex.pdf", PDF)
    body = "![Chart](/media/chart.png)\n\nRead [the annex](" + SITE_URL + "/media/annex.pdf)."
    upload(aws, "releases/body.json", make_release(slug="body", image=None, body=body))
    app_module.sync_release(sqs_event("releases/body.json"), None)
    tree = public_tree(aws)
    assert "media/chart.png" in tree and "media/annex.pdf" in tree


def test_an_embargoed_report_s_pdf_is_not_public_before_the_report(aws) -> None:
    from datetime import UTC, datetime, timedelta

    from test_embargo import Clock, make_publisher

    instant = datetime(2030, 3, 1, 14, 0, tzinfo=UTC)
    clock = Clock(instant - timedelta(days=2))
    pub = make_publisher(clock)
    aws.put_object(Bucket=SOURCE, Key="media/report.pdf", Body=PDF)
    doc = make_release(
        slug="report",
        image=None,
        attachments=[{"title": "Report", "url": "/media/report.pdf"}],
        embargo_until=instant.isoformat(),
    )
    upload(aws, "releases/report.json", doc)
    assert pub.sync("releases/report.json").status == "scheduled"
    assert [r.status for r in pub.sync_media(["media/report.pdf"])] == ["held"]
    assert "media/report.pdf" not in public_tree(aws)
    clock.now = instant
    [done] = pub.publish_due()
    assert done.status == "published"
    assert public_tree(aws)["media/report.pdf"] == PDF
