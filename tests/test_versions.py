"""Language versions on the Lambda path (chalicelib/versions.py): a release
published through ``sync_release`` links to its versions exactly as a full
build of the same sources does, when a version appears, changes or goes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from support import (
    PUBLIC,
    SAMPLES,
    SOURCE,
    FlakyStorage,
    make_release,
    public_tree,
    publish,
    receipt,
    renderer,
    sqs_event,
    upload,
)

from chalicelib.errors import TransientStorageError
from chalicelib.keys import versions_key
from chalicelib.publisher import Publisher
from chalicelib.storage import S3Storage
from newsroom.build import build_site

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def version(slug: str, language: str, key: str = "floods", **overrides: Any) -> dict:
    return make_release(
        slug=slug,
        language=language,
        translation_key=key,
        title=f"Floods ({language})",
        published_at="2025-07-02T10:00:00+02:00",
        **overrides,
    )


def hreflangs(tree: dict[str, bytes], slug: str) -> dict[str, str]:
    page = tree[f"releases/{slug}/index.html"].decode()
    return dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="[^"]*/releases/([^/"]+)/"', page))


def built(s3: Any) -> dict[str, bytes]:
    sources = sorted(
        (k, v) for k, v in public_tree(s3, SOURCE).items() if k.startswith("releases/")
    )
    return build_site(sources, renderer(), now=NOW, workers=1).files


def assert_same_as_build(s3: Any) -> dict[str, bytes]:
    tree = public_tree(s3)
    expected = built(s3)
    differ = sorted(k for k in set(tree) | set(expected) if tree.get(k) != expected.get(k))
    assert differ == []
    return tree


def delete(app_module: Any, s3: Any, key: str) -> None:
    s3.delete_object(Bucket=SOURCE, Key=key)
    assert app_module.sync_release(sqs_event(key, "ObjectRemoved:Delete"), None) == {
        "batchItemFailures": []
    }


def test_the_samples_published_one_by_one_equal_a_build_and_link_their_versions(
    app_module: Any, aws: Any
) -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        publish(app_module, aws, f"releases/{path.name}", path.read_bytes())
    tree = assert_same_as_build(aws)
    links = hreflangs(tree, "coastal-clinics-reopen")
    assert set(links) >= {"en", "fr", "es", "ar"}
    # every version links to the same set, itself included
    for slug in links.values():
        assert hreflangs(tree, slug) == links


def test_a_version_appearing_changing_and_going_rerenders_its_siblings(
    app_module: Any, aws: Any
) -> None:
    publish(app_module, aws, "releases/floods.json", version("floods", "en"))
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {}  # alone: nothing to link to

    # appears: the English page, published before, now links to French
    publish(app_module, aws, "releases/inondations.json", version("inondations", "fr"))
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}
    assert hreflangs(tree, "inondations") == hreflangs(tree, "floods")
    assert 'lang="fr"' in tree["releases/floods/index.html"].decode()  # the visible switcher

    # a third: both earlier pages follow
    publish(app_module, aws, "releases/inundaciones.json", version("inundaciones", "es"))
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods")["es"] == "inundaciones"
    assert hreflangs(tree, "inondations")["es"] == "inundaciones"

    # changes slug and language: the links follow, the old page is gone
    publish(app_module, aws, "releases/inondations.json", version("hochwasser", "de"))
    tree = assert_same_as_build(aws)
    assert "releases/inondations/index.html" not in tree
    assert hreflangs(tree, "floods") == {"de": "hochwasser", "en": "floods", "es": "inundaciones"}

    # leaves the translation key: no longer linked, and links nowhere
    publish(app_module, aws, "releases/inondations.json", version("hochwasser", "de", key="other"))
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "es": "inundaciones"}
    assert hreflangs(tree, "hochwasser") == {}

    # goes: the last sibling links to nothing
    delete(app_module, aws, "releases/inundaciones.json")
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {}
    record = json.loads(aws.get_object(Bucket=SOURCE, Key=versions_key("floods"))["Body"].read())
    assert [m["slug"] for m in record["members"]] == ["floods"]


def test_two_versions_in_one_batch_link_to_each_other(app_module: Any, aws: Any) -> None:
    upload(aws, "releases/floods.json", version("floods", "en"))
    upload(aws, "releases/inondations.json", version("inondations", "fr"))
    event = sqs_event("releases/floods.json")
    event["Records"] += sqs_event("releases/inondations.json")["Records"]
    assert app_module.sync_release(event, None) == {"batchItemFailures": []}
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}
    assert receipt(aws, "releases/inondations.json")["status"] == "published"


def test_the_record_names_no_private_field_in_public_and_lives_in_the_source_bucket(
    app_module: Any, aws: Any
) -> None:
    publish(app_module, aws, "releases/floods.json", version("floods", "en"))
    publish(app_module, aws, "releases/inondations.json", version("inondations", "fr"))
    assert not any(k.startswith("state/") for k in public_tree(aws))
    record = json.loads(aws.get_object(Bucket=SOURCE, Key=versions_key("floods"))["Body"].read())
    assert sorted(m["source_key"] for m in record["members"]) == [
        "releases/floods.json",
        "releases/inondations.json",
    ]


def test_an_embargoed_version_is_not_linked_until_public_and_its_preview_links_the_others(
    aws: Any,
) -> None:
    clock = [NOW]
    publisher = Publisher(
        S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), clock=lambda: clock[0]
    )
    from chalicelib.previews import Previews

    publisher.previews = Previews(S3Storage(aws, SOURCE), renderer())
    upload(aws, "releases/floods.json", version("floods", "en"))
    publisher.sync("releases/floods.json")
    upload(
        aws,
        "releases/inondations.json",
        version("inondations", "fr", embargo_until="2026-12-01T00:00:00Z"),
    )
    assert publisher.sync("releases/inondations.json").status == "scheduled"
    tree = public_tree(aws)
    assert hreflangs(tree, "floods") == {}  # nothing links to an embargoed page
    preview = aws.get_object(Bucket=SOURCE, Key="previews/inondations/index.html")["Body"].read()
    assert b'hreflang="en"' in preview and b"/releases/floods/" in preview
    clock[0] = datetime(2026, 12, 2, tzinfo=UTC)
    publisher.publish_due()
    tree = public_tree(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}


@pytest.mark.parametrize("after", [False, True])
def test_a_crash_writing_the_record_is_finished_by_the_retry(aws: Any, after: bool) -> None:
    good = Publisher(S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), clock=lambda: NOW)
    upload(aws, "releases/floods.json", version("floods", "en"))
    good.sync("releases/floods.json")

    class RecordFault(FlakyStorage):
        def _write(self, op: str, key: str, do: Any) -> Any:
            if key.startswith("state/versions/") and not self.fault.failed:
                self.fault.fail_at = self.fault.writes + 1
            return super()._write(op, key, do)

    flaky = Publisher(
        RecordFault(S3Storage(aws, SOURCE), after=after),
        S3Storage(aws, PUBLIC),
        renderer(),
        clock=lambda: NOW,
    )
    upload(aws, "releases/inondations.json", version("inondations", "fr"))
    with pytest.raises(TransientStorageError):
        flaky.sync("releases/inondations.json")
    good.sync("releases/inondations.json")  # the queue delivers the message again
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}


def test_a_crash_rerendering_a_sibling_is_finished_by_the_retry(aws: Any) -> None:
    good = Publisher(S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), clock=lambda: NOW)
    upload(aws, "releases/floods.json", version("floods", "en"))
    good.sync("releases/floods.json")

    class SiblingFault(FlakyStorage):
        def _write(self, op: str, key: str, do: Any) -> Any:
            if key == "releases/floods/index.html" and not self.fault.failed:
                self.fault.fail_at = self.fault.writes + 1
            return super()._write(op, key, do)

    flaky = Publisher(
        S3Storage(aws, SOURCE), SiblingFault(S3Storage(aws, PUBLIC)), renderer(), clock=lambda: NOW
    )
    upload(aws, "releases/inondations.json", version("inondations", "fr"))
    with pytest.raises(TransientStorageError):
        flaky.sync("releases/inondations.json")
    assert hreflangs(public_tree(aws), "floods") == {}
    good.sync("releases/inondations.json")  # the retry finds the sibling stale
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}


def test_a_fault_reading_the_record_is_retried_never_a_rejection(aws: Any) -> None:
    from support import StorageWrapper

    class RecordReadFault(StorageWrapper):
        failed = False

        def _read(self, op: str, key: str, do: Any) -> Any:
            if key.startswith("state/versions/") and not self.failed:
                self.failed = True
                raise TransientStorageError("injected read fault", key)
            return do()

    flaky = Publisher(
        RecordReadFault(S3Storage(aws, SOURCE)), S3Storage(aws, PUBLIC), renderer(), clock=lambda: NOW
    )
    upload(aws, "releases/floods.json", version("floods", "en"))
    outcome = flaky.sync_batch(["releases/floods.json"])
    assert "releases/floods.json" in outcome.failed  # its message comes back
    assert outcome.receipts == []
    assert flaky.sync("releases/floods.json").status == "published"


def test_an_unreadable_record_is_rewritten_from_the_index(app_module: Any, aws: Any) -> None:
    aws.put_object(Bucket=SOURCE, Key=versions_key("floods"), Body=b"{not json")
    publish(app_module, aws, "releases/floods.json", version("floods", "en"))
    publish(app_module, aws, "releases/inondations.json", version("inondations", "fr"))
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}


def test_a_rebuild_writes_the_records_the_pages_imply(aws: Any) -> None:
    import boto3

    from chalicelib.rebuild import RebuildService, SqsQueue
    from newsroom.rebuild import create_rebuild_queue, work

    for slug, lang in (("floods", "en"), ("inondations", "fr")):
        upload(aws, f"releases/{slug}.json", version(slug, lang))
    sqs = boto3.client("sqs", region_name="us-east-1")
    create_rebuild_queue(sqs, "rebuild")
    rebuilder = RebuildService(
        S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), SqsQueue(sqs, "rebuild"),
        clock=lambda: NOW, chunk_size=1,  # each version rendered in its own chunk
    )  # fmt: skip
    rid = rebuilder.start().rebuild_id
    work(rebuilder.handle, sqs, "rebuild", wait_seconds=0,
         stop=lambda: rebuilder.progress(rid).report is not None)  # fmt: skip
    tree = assert_same_as_build(aws)
    assert hreflangs(tree, "floods") == {"en": "floods", "fr": "inondations"}
    # a publish after the rebuild finds both versions in the record
    publisher = Publisher(
        S3Storage(aws, SOURCE), S3Storage(aws, PUBLIC), renderer(), clock=lambda: NOW
    )
    upload(aws, "releases/inundaciones.json", version("inundaciones", "es"))
    publisher.sync("releases/inundaciones.json")
    tree = assert_same_as_build(aws)
    assert set(hreflangs(tree, "floods")) == {"en", "es", "fr"}
