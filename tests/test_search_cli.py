"""``newsroom search-corpus``: a site published before search gets its corpus
whole, and ``update_search`` then indexes exactly its public releases."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from support import SOURCE, make_release, sqs_event, upload
from test_search_updater import SCHEDULED, indexed

from newsroom.cli import main


def test_search_corpus_fills_the_corpus_and_update_search_indexes_it(app_module: Any):
    s3 = app_module and __import__("boto3").client("s3", region_name="us-east-1")
    upload(s3, "releases/a.json", make_release(slug="a", title="Harbour wall finished"))
    upload(
        s3,
        "releases/b.json",
        make_release(slug="b", title="Ferry back", published_at="2019-02-01T09:00:00Z"),
    )
    upload(
        s3,
        "releases/later.json",
        make_release(slug="later", title="Budget", embargo_until="2999-01-01T00:00:00Z"),
    )
    upload(s3, "releases/bad.json", {"title": "no kind"})
    for key in ("a", "b", "later", "bad"):
        app_module.sync_release(sqs_event(f"releases/{key}.json"), None)
    # the corpus as a site without search has it: empty
    for item in s3.list_objects_v2(Bucket=SOURCE, Prefix="search/").get("Contents", []):
        s3.delete_object(Bucket=SOURCE, Key=item["Key"])

    result = CliRunner().invoke(main, ["search-corpus"])
    assert result.exit_code == 0, result.output
    assert "search corpus: 2 releases, 2 month files" in result.output
    dec = json.loads(s3.get_object(Bucket=SOURCE, Key="search/2018-12.json")["Body"].read())
    assert [r["slug"] for r in dec["records"]] == ["a"]
    app_module.update_search(SCHEDULED, None)
    assert indexed(s3) == {"/releases/a/": "Harbour wall finished", "/releases/b/": "Ferry back"}
