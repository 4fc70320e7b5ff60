"""The preview store: a scheduled release's page, private, behind a presigned URL.

Runs over moto's S3 as a local HTTP server (the demo's), so each presigned URL
is fetched over HTTP exactly as a browser would, and what comes back is what
staff see.
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support import PUBLIC, SITE_URL, SOURCE, make_release, public_tree, renderer

from chalicelib.core.model import release_from_obj
from chalicelib.previews import (
    PREVIEW_TTL_SECONDS,
    Previews,
    media_source_key,
    point_links,
    preview_key,
)
from chalicelib.storage import S3Storage
from newsroom.endpoint import LocalS3

PUBLISH_AT = datetime.fromisoformat("2026-12-20T09:00:00-05:00")
JPEG = b"\xff\xd8\xff\xe0" + b"clinic photo bytes"
PDF = b"%PDF-1.7 the embargoed report"


@pytest.fixture(scope="module")
def local_s3() -> Iterator[LocalS3]:
    server = LocalS3().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(local_s3: LocalS3, env: dict[str, str]) -> Iterator[Any]:
    client = local_s3.client()
    for bucket in (SOURCE, PUBLIC):
        client.create_bucket(Bucket=bucket)
    yield client
    for bucket in (SOURCE, PUBLIC):
        for key in public_tree(client, bucket):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def previews(s3: Any) -> Previews:
    return Previews(S3Storage(s3, SOURCE), renderer())


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def report(**overrides: Any) -> Any:
    doc = make_release(
        slug="unequal-shores",
        title="Unequal shores: the clean-water report",
        kind="report",
        embargo_until="2026-12-20T09:00:00-05:00",
        summary="Who gets clean water, and who does not.",
        body=(
            "Read [the full report](/media/unequal%20shores.pdf#page=2) or the "
            "[methodology](/media/method.pdf).\n\n![A chart](/media/chart.png)\n\n"
            "See also [our topics](/topics/) and [the UN](https://un.example.org/?a=1&b=2)."
        ),
        attachments=[{"title": "Full report (PDF)", "url": "/media/unequal%20shores.pdf"}],
    )
    doc.update(overrides)
    return release_from_obj(doc, source="releases/unequal-shores.json")


def attrs(page: str, name: str) -> list[str]:
    return [unescape(v) for v in re.findall(rf'\s{name}="([^"]*)"', page)]


def test_preview_is_the_release_page_with_a_banner_and_noindex(s3: Any, previews: Previews) -> None:
    url = previews.put("releases/unequal-shores.json", report(), PUBLISH_AT)

    status, ctype, body = fetch(url)
    page = body.decode()
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    assert (
        '<div class="preview-banner" role="status">Preview — not public until '
        '<time datetime="2026-12-20T09:00:00-05:00">December 20, 2026, 09:00 UTC-05:00</time></div>'
    ) in page
    assert '<meta name="robots" content="noindex">' in page
    # the same page readers will get: the public render's article, media links aside
    public = renderer().release(report()).page.decode()
    article = re.compile(r'<article class="release">.*?</article>', re.S)
    url_attr = re.compile(r'(src|href)="[^"]*"')
    assert url_attr.sub("", article.search(page).group(0)) == url_attr.sub(  # type: ignore[union-attr]
        "",
        article.search(public).group(0),  # type: ignore[union-attr]
    )
    assert "Unequal shores: the clean-water report" in page
    # stored privately in the source bucket, nothing in the public one
    assert list(public_tree(s3, SOURCE)) == ["previews/unequal-shores/index.html"]
    assert public_tree(s3) == {}
    head = s3.head_object(Bucket=SOURCE, Key="previews/unequal-shores/index.html")
    assert head["CacheControl"] == "no-store"


def test_preview_url_is_a_sigv4_get_url_valid_seven_days(previews: Previews) -> None:
    url = previews.put("releases/unequal-shores.json", report(), PUBLISH_AT)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(PREVIEW_TTL_SECONDS)] == ["604800"]
    assert urlsplit(url).path.endswith("/previews/unequal-shores/index.html")


def test_media_in_the_preview_are_presigned_source_objects(s3: Any, previews: Previews) -> None:
    s3.put_object(Bucket=SOURCE, Key="media/clinic.jpg", Body=JPEG)
    s3.put_object(Bucket=SOURCE, Key="media/unequal shores.pdf", Body=PDF)
    s3.put_object(Bucket=SOURCE, Key="media/chart.png", Body=b"\x89PNG\r\n\x1a\nchart")
    page = fetch(previews.put("releases/unequal-shores.json", report(), PUBLISH_AT))[2].decode()

    media = [u for u in attrs(page, "src") + attrs(page, "href") if "/media/" in u]
    # lead image, body image, two body links, the attachment
    assert len(media) == 5
    for u in media:
        parts = urlsplit(u)
        assert f"/{SOURCE}/media/" in parts.path or parts.netloc.startswith(f"{SOURCE}.")
        assert "X-Amz-Signature=" in parts.query, u
    names = sorted((urlsplit(u).path.rsplit("/", 1)[1], urlsplit(u).fragment) for u in media)
    assert names == [
        ("chart.png", ""),
        ("clinic.jpg", ""),
        ("method.pdf", ""),
        ("unequal%20shores.pdf", ""),
        ("unequal%20shores.pdf", "page=2"),  # the body link keeps its fragment
    ]
    by_name = {urlsplit(u).path.rsplit("/", 1)[1]: u for u in media}
    assert fetch(by_name["clinic.jpg"])[2] == JPEG
    assert fetch(by_name["unequal%20shores.pdf"].split("#")[0])[2] == PDF
    # og:image and twitter:image name the presigned photo, not the public URL
    images = [u for u in attrs(page, "content") if "clinic.jpg" in u]
    assert len(images) == 2 and all("X-Amz-Signature=" in u for u in images)
    assert f"{SITE_URL}/media/" not in page.split("application/ld+json")[0]
    # other site paths lead to the public site; outside links stay as written
    assert f'href="{SITE_URL}/topics/"' in page
    assert f'href="{SITE_URL}/"' in page
    assert 'href="https://un.example.org/?a=1&amp;b=2"' in page
    # the stylesheet travels inline (the preview is not served by the site)
    css = re.search(r'rel="stylesheet" href="data:text/css;base64,([^"]+)"', page)
    assert css and b".preview-banner {" in base64.b64decode(css.group(1))
    assert public_tree(s3) == {}


def test_put_replaces_and_remove_deletes_idempotently(s3: Any, previews: Previews) -> None:
    key = "releases/unequal-shores.json"
    previews.put(key, report(), PUBLISH_AT)
    url = previews.put(key, report(title="Unequal shores, second draft"), PUBLISH_AT)
    assert list(public_tree(s3, SOURCE)) == ["previews/unequal-shores/index.html"]
    page = fetch(url)[2].decode()
    assert "Unequal shores, second draft" in page
    assert "the clean-water report" not in page
    assert previews.url(key) is not None

    previews.remove(key)
    previews.remove(key)  # already gone: no error
    assert public_tree(s3, SOURCE) == {}
    assert fetch(url)[0] in (403, 404)
    assert previews.url(key) is None


def test_file_names_with_spaces_and_plus_signs(s3: Any, previews: Previews) -> None:
    key = "releases/Beta Two+(3).json"
    assert preview_key(key) == "previews/Beta Two+(3)/index.html"
    status, _, body = fetch(previews.put(key, report(), PUBLISH_AT))
    assert status == 200 and b"Preview" in body
    assert list(public_tree(s3, SOURCE)) == ["previews/Beta Two+(3)/index.html"]


def test_banner_shows_the_instant_in_the_offset_staff_wrote(previews: Previews) -> None:
    page = previews.page(report(), datetime.fromisoformat("2027-01-02T00:30:00+00:00")).decode()
    assert (
        'not public until <time datetime="2027-01-02T00:30:00+00:00">January 2, 2027, 00:30 UTC</time>'
        in page
    )
    page = previews.page(report(), datetime.fromisoformat("2027-01-02T05:30:00+05:30")).decode()
    assert "January 2, 2027, 05:30 UTC+05:30" in page


def test_point_links_rewrites_only_site_paths() -> None:
    def signed(key: str) -> str:
        return f"https://src.example/{key}?sig=1&x=2"

    page = (
        '<img src="/media/a%20b.jpg"><a href="/media/r.pdf#p=3">r</a>'
        f'<meta property="og:image" content="{SITE_URL}/media/a.jpg">'
        '<meta name="description" content="/media/x.jpg is text here">'
        '<a href="/archive/">a</a><a href="//cdn.example/x">c</a>'
        '<a href="https://elsewhere.example/media/y.jpg">e</a><a href="#top">t</a>'
    )
    out = point_links(page, SITE_URL, signed)
    assert '<img src="https://src.example/media/a b.jpg?sig=1&amp;x=2">' in out
    assert 'href="https://src.example/media/r.pdf?sig=1&amp;x=2#p=3"' in out
    assert 'content="https://src.example/media/a.jpg?sig=1&amp;x=2"' in out
    assert 'content="/media/x.jpg is text here"' in out
    assert f'href="{SITE_URL}/archive/"' in out
    assert 'href="//cdn.example/x"' in out
    assert 'href="https://elsewhere.example/media/y.jpg"' in out
    assert 'href="#top"' in out


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/media/a.jpg", "media/a.jpg"),
        ("/media/2018/a%20b.pdf?x=1#p=2", "media/2018/a b.pdf"),
        ("/media/", None),
        ("/mediafile.jpg", None),
        ("/releases/x/", None),
    ],
)
def test_media_source_key(path: str, key: str | None) -> None:
    assert media_source_key(path) == key
