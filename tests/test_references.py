"""Which media a release references: the keys behind its /media/ paths."""

from __future__ import annotations

import json

import pytest
from support import SITE_URL, make_release

from chalicelib.core.model import parse_release
from chalicelib.core.references import body_media_paths, media_refs


def refs(**fields) -> tuple[str, ...]:
    doc = make_release(**{"image": None, **fields})
    return media_refs(parse_release(json.dumps(doc).encode(), name="x.json"), SITE_URL)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("See [the photo](/media/My%20Photo%20(1).jpg).", "media/My Photo (1).jpg"),
        ("![A chart](/media/chart%20(2024)%20(final).png)", "media/chart (2024) (final).png"),
        ('<a href="/media/Q&amp;A%20notes.pdf">notes</a>', "media/Q&A notes.pdf"),
        (f"[annex]({SITE_URL}/media/Caf%C3%A9%20menu.pdf)", "media/Café menu.pdf"),
        ("(see /media/plain.pdf)", "media/plain.pdf"),
        ("[Q&A](/media/Q&A,%20it's%20final.pdf)", "media/Q&A, it's final.pdf"),
        ("<img src='/media/it%27s.png' alt='x'>", "media/it's.png"),
        ("[a](/media/a[1].jpg) and [/media/b.jpg]", "media/a[1].jpg"),
        ("[x](/media/a+b.pdf?download=1#p2)", "media/a+b.pdf"),
    ],
)
def test_a_body_path_is_percent_decoded_to_its_key(body, key) -> None:
    assert key in refs(body=body)
    assert all(k == key or k == "media/b.jpg" for k in refs(body=body))


def test_image_and_attachment_paths_are_percent_decoded() -> None:
    image = {"url": "/media/My%20Photo%20(1).jpg", "alt": "Nurses"}
    attachments = [{"title": "Report", "url": f"{SITE_URL}/media/Report%20%5Bfinal%5D.pdf"}]
    assert refs(image=image, attachments=attachments) == (
        "media/My Photo (1).jpg",
        "media/Report [final].pdf",
    )


def test_a_body_without_media_has_no_paths() -> None:
    assert body_media_paths("No media here; /mediator/x.jpg is not one.") == []
