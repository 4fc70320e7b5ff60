"""``newsroom publish`` over moto: validate locally, upload the valid files, then
report the receipt the real ``sync_release`` handler writes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import SITE_URL, SOURCE, dumps, make_release, sqs_event, upload

from newsroom.cli import main


def source_keys(aws: Any) -> list[str]:
    return sorted(o["Key"] for o in aws.list_objects_v2(Bucket=SOURCE).get("Contents", []))


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(doc if isinstance(doc, bytes) else dumps(doc))
    return path


def publish(*args: str) -> Any:
    return CliRunner().invoke(main, ["publish", *args])


@pytest.fixture
def notified(aws: Any) -> None:
    """The source bucket notifies the publish queue, as a deployed publisher's does."""
    import boto3

    from newsroom import lambda_sqs

    sqs = boto3.client("sqs", region_name="us-east-1")
    _, arn = lambda_sqs.create_queue(sqs, "newsroom-publish")
    lambda_sqs.notify_queue(aws, SOURCE, arn)


@pytest.fixture
def lambda_on_upload(aws: Any, app_module: Any, notified: None) -> Iterator[None]:
    """Stands in for the S3 notification: runs the real handler, in the background,
    on every release key whose bytes change while the test runs."""
    stop = threading.Event()
    seen: dict[str, str] = {}

    def watch() -> None:
        while not stop.is_set():
            for item in aws.list_objects_v2(Bucket=SOURCE, Prefix="releases/").get("Contents", []):
                key, etag = item["Key"], item["ETag"]
                if seen.get(key) != etag:
                    seen[key] = etag
                    app_module.sync_release(sqs_event(key.replace(" ", "+")), None)
            stop.wait(0.05)

    for item in aws.list_objects_v2(Bucket=SOURCE, Prefix="releases/").get("Contents", []):
        seen[item["Key"]] = item["ETag"]
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def test_only_valid_files_are_uploaded(aws: Any, tmp_path: Path) -> None:
    good = write(tmp_path, "clinics.json", make_release())
    bad = write(tmp_path, "bad.json", make_release(kind="opinion", title=None))
    broken = write(tmp_path, "broken.json", b'{"title": ')
    not_json = write(tmp_path, "notes.txt", make_release())
    loud = write(tmp_path, "Loud.JSON", make_release(slug="loud"))

    result = publish(
        str(good),
        str(bad),
        str(broken),
        str(not_json),
        str(loud),
        "--bucket",
        SOURCE,
        "--wait",
        "0",
    )

    assert result.exit_code == 1
    assert source_keys(aws) == ["releases/clinics.json"]
    body = aws.get_object(Bucket=SOURCE, Key="releases/clinics.json")
    assert body["Body"].read() == good.read_bytes()
    assert body["ContentType"] == "application/json"
    assert result.stdout == f"{good}: uploaded to s3://{SOURCE}/releases/clinics.json\n"
    errors = result.stderr.splitlines()
    assert f"{bad}: kind: " in result.stderr and f"{bad}: title: " in result.stderr
    assert any(e.startswith(f"{broken}: (file): is not valid JSON") for e in errors)
    assert f"{not_json}: (file): the file name must end in .json" in errors
    # S3 would hear no event for Loud.JSON: refused with what to do instead
    assert (
        f"{loud}: (file): is not published: a release file's name must end in .json "
        "(lower case); rename it to Loud.json"
    ) in errors


def test_all_valid_exits_zero_and_bucket_defaults_from_settings(aws: Any, tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", make_release(slug="a"))
    b = write(tmp_path, "b.json", make_release(slug="b"))

    result = publish(str(a), str(b), "--wait", "0")  # NEWSROOM_SOURCE_BUCKET is set

    assert result.exit_code == 0, result.stderr
    assert source_keys(aws) == ["releases/a.json", "releases/b.json"]


def test_prints_the_published_outcome(aws: Any, tmp_path: Path, lambda_on_upload: None) -> None:
    path = write(tmp_path, "clinics.json", make_release())
    soon = write(
        tmp_path, "soon.json", make_release(slug="soon", embargo_until="2999-01-01T00:00:00Z")
    )

    result = publish(str(path), str(soon), "--bucket", SOURCE, "--wait", "20")

    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert f"{path}: published: {SITE_URL}/releases/clinics/" in lines
    assert (
        f"{soon}: scheduled: embargoed until 2999-01-01T00:00:00+00:00 ({SITE_URL}/releases/soon/)"
        in lines
    )
    # the receipt's warnings are passed on (the sample image is not uploaded)
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"{path}: warning: image.url: /media/clinic.jpg ")


def test_a_rejection_by_the_publisher_is_shown_and_fails(
    aws: Any, app_module: Any, tmp_path: Path, lambda_on_upload: None
) -> None:
    # valid on its own, but the slug belongs to a release already live
    upload(aws, "releases/clinics.json", make_release())
    app_module.sync_release(sqs_event("releases/clinics.json"), None)
    other = write(tmp_path, "other.json", make_release(slug="clinics", title="Another"))

    result = publish(str(other), "--bucket", SOURCE, "--wait", "20")

    assert result.exit_code == 1
    assert f"{other}: rejected: " in result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{other}: slug: ") and "releases/clinics.json" in line


def test_an_older_receipt_is_not_taken_for_the_new_upload(
    aws: Any, tmp_path: Path, notified: None
) -> None:
    """No handler runs: the receipt left by an earlier upload must not be reported."""
    earlier = {"source_key": "releases/clinics.json", "status": "published", "url": "x"}
    aws.put_object(
        Bucket=SOURCE, Key="receipts/releases/clinics.json", Body=json.dumps(earlier).encode()
    )
    path = write(tmp_path, "clinics.json", make_release())

    result = publish(str(path), "--bucket", SOURCE, "--wait", "0.6")

    assert result.exit_code == 2  # uploaded, outcome unknown
    assert "published" not in result.stdout
    assert "Is the publisher deployed" in result.stderr
    assert f"{path}: no receipt after 0.6 s" in result.stderr
    assert f"s3://{SOURCE}/receipts/releases/clinics.json" in result.stderr


def test_a_bucket_that_notifies_no_publisher_is_said_at_once(aws: Any, tmp_path: Path) -> None:
    """No event notification on the bucket: no receipt can come, so the command
    does not wait for one; the upload is done and the note says why."""
    path = write(tmp_path, "clinics.json", make_release())

    result = publish(str(path), "--bucket", SOURCE, "--wait", "5")

    assert result.exit_code == 0, result.stderr
    assert source_keys(aws) == ["releases/clinics.json"]
    assert f"{path}: uploaded to s3://{SOURCE}/releases/clinics.json" in result.stdout
    assert f"s3://{SOURCE} sends its changes to no publisher" in result.stderr
    assert "no receipt after" not in result.stderr


def test_without_credentials_nothing_is_uploaded_and_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    path = write(tmp_path, "clinics.json", make_release())

    result = publish(str(path), "--bucket", SOURCE)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "error: no AWS credentials found: set AWS_PROFILE (after `aws sso login` or "
        "`aws configure`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; nothing was uploaded"
    )
    assert "receipts/" not in result.stderr and "Unable to locate" not in result.stderr
