"""``newsroom publish``, the staff path over the live source bucket
(``newsroom rebuild`` is in ``rebuild.py``): validate locally, upload only valid
files to ``releases/<name>.json``, then wait for the receipt the Lambda writes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chalicelib.core.model import parse_release
from chalicelib.errors import InvalidRelease, StorageError
from chalicelib.keys import RELEASES_PREFIX, is_release_key, receipt_key
from chalicelib.receipts import misnamed_release
from chalicelib.storage import S3Storage


def upload_release(storage: S3Storage, name: str, body: bytes) -> tuple[str, str | None]:
    """Upload ``body`` as ``releases/<name>``; return the key and the ETag its
    receipt had before (so the new receipt can be told apart)."""
    key = RELEASES_PREFIX + name
    before = storage.get(receipt_key(key))
    storage.put(key, body, content_type="application/json", cache_control="no-store")
    return key, before.etag if before else None


def wait_for_receipt(
    storage: S3Storage,
    key: str,
    previous_etag: str | None,
    *,
    timeout: float,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Poll ``receipts/<key>`` until a receipt newer than the upload appears."""
    deadline = monotonic() + timeout
    while True:
        found = storage.get(receipt_key(key))
        if found is not None and found.etag != previous_etag:
            return json.loads(found.body)
        if monotonic() >= deadline:
            return None
        sleep(max(0.0, min(interval, deadline - monotonic())))


def bucket_notifies(client: Any, bucket: str) -> bool | None:
    """Whether ``bucket`` sends its events anywhere (a queue, a topic, a function
    or EventBridge), so that a publisher can answer an upload with a receipt;
    ``None`` when that cannot be read (no ``s3:GetBucketNotification``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        conf = client.get_bucket_notification_configuration(Bucket=bucket)
    except (BotoCoreError, ClientError):
        return None
    targets = ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")
    return "EventBridgeConfiguration" in conf or any(conf.get(t) for t in targets)


# The commands ---------------------------------------------------------------------
def _s3_client() -> Any:
    from chalicelib.service import s3_client

    return s3_client()


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--bucket", envvar="NEWSROOM_SOURCE_BUCKET", required=True,
    help="Source bucket (default: NEWSROOM_SOURCE_BUCKET).",
)  # fmt: skip
@click.option(
    "--wait", "wait_s", type=click.FloatRange(0), default=30, show_default=True,
    help="Seconds to wait for each receipt; 0 = upload only.",
)  # fmt: skip
def publish(files: tuple[Path, ...], bucket: str, wait_s: float) -> None:
    """Validate release files locally, upload the valid ones to the source bucket
    and print what the publisher made of each.

    Exit status: 0 all published or scheduled (or uploaded to a bucket that
    notifies no publisher, said at once); 1 a file was invalid, refused or
    could not be uploaded; 2 uploaded, but no receipt came within --wait.
    Uses the usual AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...).
    """
    _publish(files, bucket, wait_s)


def _publish(files: tuple[Path, ...], bucket: str, wait_s: float) -> None:
    """Validate release files locally, upload the valid ones to the source bucket
    as releases/<name>.json, and print what the publisher made of each."""
    failed = unknown = False
    valid: list[tuple[Path, str, bytes]] = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            click.echo(f"{path}: (file): cannot be read ({exc.strerror})", err=True)
            failed = True
            continue
        if not is_release_key(RELEASES_PREFIX + path.name):
            advice = misnamed_release(RELEASES_PREFIX + path.name)
            click.echo(f"{path}: (file): {advice or 'the file name must end in .json'}", err=True)
            failed = True
            continue
        try:
            parse_release(raw, name=path.name)
        except InvalidRelease as exc:
            for e in exc.errors:
                click.echo(f"{path}: {e.loc}: {e.msg}", err=True)
            failed = True
            continue
        valid.append((path, path.name, raw))

    if valid and (problem := _credentials_problem()):
        click.echo(f"error: {problem}; nothing was uploaded", err=True)
        sys.exit(1)
    storage = S3Storage(_s3_client(), bucket) if valid else None
    pending: list[tuple[Path, str, str | None]] = []
    for path, name, raw in valid:
        assert storage is not None
        try:
            key, before = upload_release(storage, name, raw)
        except StorageError as exc:
            click.echo(f"{path}: (upload): {_explain(exc, bucket)}", err=True)
            failed = True
            continue
        click.echo(f"{path}: uploaded to s3://{bucket}/{key}")
        pending.append((path, key, before))

    if wait_s > 0 and pending and bucket_notifies(_s3_client(), bucket) is False:
        # no publisher hears this bucket: say so at once rather than wait for nothing
        click.echo(
            f"note: s3://{bucket} sends its changes to no publisher (it has no event "
            f"notification), so no receipt will come; the upload is done. Deploy the "
            f"publisher for this bucket (chalice deploy) to have it published.",
            err=True,
        )
        wait_s = 0
    if wait_s > 0 and pending:
        assert storage is not None
        deadline = time.monotonic() + wait_s
        for path, key, before in pending:
            doc = wait_for_receipt(
                storage, key, before, timeout=max(0.0, deadline - time.monotonic())
            )
            if doc is None:
                click.echo(
                    f"{path}: no receipt after {wait_s:g} s: uploaded, but whether it is live "
                    f"is not known. Is the publisher deployed and is this its source bucket? "
                    f"The receipt will appear at s3://{bucket}/{receipt_key(key)}",
                    err=True,
                )
                unknown = True
                continue
            failed |= _print_receipt(path, doc)
    # 1: something was refused or failed; 2: uploaded, outcome unknown
    sys.exit(1 if failed else 2 if unknown else 0)


def _credentials_problem() -> str | None:
    """Why boto3 cannot sign a request here, in words an operator can act on."""
    import boto3

    try:
        found = boto3.session.Session().get_credentials()
    except Exception as exc:  # a broken profile or config file
        return f"AWS credentials could not be loaded ({exc})"
    if found is None:
        return (
            "no AWS credentials found: set AWS_PROFILE (after `aws sso login` or "
            "`aws configure`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return None


def _explain(exc: StorageError, bucket: str) -> str:
    text = str(exc)
    if "AccessDenied" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return f"{text}: these AWS credentials may not write to s3://{bucket}/releases/"
    if "NoSuchBucket" in text:
        return f"{text}: there is no bucket {bucket!r} (check --bucket or NEWSROOM_SOURCE_BUCKET)"
    return text


def _print_receipt(path: Path, doc: dict[str, Any]) -> bool:
    """Print one receipt; True if the release was rejected."""
    status = doc.get("status")
    if status == "published":
        click.echo(f"{path}: published: {doc.get('url')}")
    elif status == "scheduled":
        click.echo(
            f"{path}: scheduled: embargoed until {doc.get('embargo_until')} ({doc.get('url')})"
        )
    elif status == "rejected":
        click.echo(f"{path}: rejected: {doc.get('message', '')}")
        for e in doc.get("errors", []):
            click.echo(f"{path}: {e.get('loc')}: {e.get('msg')}", err=True)
        return True
    else:
        click.echo(f"{path}: {status}: {doc.get('message', '')}")
    for w in doc.get("warnings", []):
        click.echo(f"{path}: warning: {w.get('loc')}: {w.get('msg')}", err=True)
    return False
