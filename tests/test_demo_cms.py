"""The demo's CMS step (``newsroom/demo_cms.py``): a two-locale Strapi 5 entry
posted to the app's own webhook route publishes two linked releases."""

from __future__ import annotations

import io
import json
from pathlib import Path

from newsroom.demo import PUBLIC_BUCKET, SOURCE_BUCKET, Demo
from newsroom.demo_cms import publish_from_cms

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_two_locales_publish_two_linked_releases(tmp_path: Path) -> None:
    demo = Demo(samples=SAMPLES, port=0, bind=False, out=io.StringIO(), err=io.StringIO())
    try:
        demo.start()
        receipts = publish_from_cms(demo)
        assert [r["status"] for r in receipts] == ["published", "published"], demo.err.getvalue()  # type: ignore[union-attr]
        keys = [r["source_key"] for r in receipts]
        docs = [
            json.loads(demo.client.get_object(Bucket=SOURCE_BUCKET, Key=k)["Body"].read())
            for k in keys
        ]
        assert [d["language"] for d in docs] == ["en", "fr"]
        assert docs[0]["translation_key"] == docs[1]["translation_key"]
        slugs = {"en": receipts[0]["slug"], "fr": receipts[1]["slug"]}
        for r, lang in zip(receipts, ("en", "fr"), strict=True):
            page = demo.client.get_object(
                Bucket=PUBLIC_BUCKET, Key=f"releases/{r['slug']}/index.html"
            )["Body"].read()
            assert f'<html lang="{lang}"'.encode() in page
            # the two locales link to each other (the English page was
            # published first and re-rendered when the French one appeared)
            for other, slug in slugs.items():
                assert f'hreflang="{other}" href="'.encode() in page
                assert f"/releases/{slug}/".encode() in page
        out = demo.out.getvalue()  # type: ignore[union-attr]
        assert "cms: strapi webhook (en) wrote releases/mangrove-replanting-saltmarsh.json" in out
    finally:
        demo.stop()
