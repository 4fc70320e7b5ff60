"""``S3Storage``: S3 behind the port.

It takes its boto3 client in the constructor and translates botocore errors
into the project's own (``errors.StorageError`` and subclasses), so nothing
above it imports botocore. Listings page through one ListObjectsV2 loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import ObjectUnreadable, PreconditionFailed, StorageError, TransientStorageError
from .port import Counters, ObjectInfo, StoredObject, md5_etag

_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}


_CONDITIONS = "newsroom_conditions"


def _stash_conditions(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    conditions = {
        h: params.pop(p)
        for p, h in (("IfMatch", "If-Match"), ("IfNoneMatch", "If-None-Match"))
        if p in params
    }
    if conditions:
        context[_CONDITIONS] = conditions


def _send_conditions(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    params["headers"].update(context.pop(_CONDITIONS, {}))


def _sigv4_presign(signature_version: str, **_: Any) -> str | None:
    # botocore presigns S3 URLs with SigV2 unless the client was configured
    # otherwise; buckets made since 2020 refuse SigV2, and only SigV4 bounds a
    # link's life (7 days at most)
    if signature_version in ("v4-query", "s3v4-query", "s3-query"):
        return "s3v4-query"
    return None


class S3Storage:
    """S3 behind the port. Conditional writes use ``IfMatch``/``IfNoneMatch``;
    with an SDK older than S3's conditional writes (the boto3 built into a Lambda
    runtime can be), the same ``If-Match``/``If-None-Match`` headers are sent
    through botocore's event hooks instead, so the semantics do not depend on
    the SDK version."""

    def __init__(self, client: Any, bucket: str, *, native_conditions: bool | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.counters = Counters()
        client.meta.events.register_first(
            "choose-signer.s3.GetObject", _sigv4_presign, "newsroom-sigv4-presign"
        )
        if native_conditions is None:
            members = client.meta.service_model.operation_model("PutObject").input_shape.members
            native_conditions = "IfMatch" in members and "IfNoneMatch" in members
        if not native_conditions:
            events = client.meta.events
            for op in ("PutObject", "DeleteObject"):
                events.register(
                    f"before-parameter-build.s3.{op}", _stash_conditions, f"newsroom-stash-{op}"
                )
                events.register(f"before-call.s3.{op}", _send_conditions, f"newsroom-send-{op}")

    def _translate(self, exc: Exception, key: str) -> StorageError:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (412, 409):
                return PreconditionFailed(f"s3://{self.bucket}/{key}: {code}", key)
            if code == "InvalidObjectState":  # GLACIER / DEEP_ARCHIVE, not restored
                return ObjectUnreadable(key, _ARCHIVED)
            if code == "InvalidRequest" and "Server Side Encryption" in _message(exc):
                return ObjectUnreadable(key, _SSE_C)  # S3's answer for an SSE-C object
            if code in _TRANSIENT_CODES or (status or 0) >= 500:
                return TransientStorageError(f"s3://{self.bucket}/{key}: {code}", key)
            return StorageError(f"s3://{self.bucket}/{key}: {code or exc}", key)
        if isinstance(exc, BotoCoreError):
            return TransientStorageError(f"s3://{self.bucket}/{key}: {exc}", key)
        raise exc

    def get(self, key: str, *, limit: int | None = None) -> StoredObject | None:
        """``limit``: a body larger than this many bytes is not read (``size`` says how large)."""
        self.counters.count("GetObject")
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            size = int(resp.get("ContentLength", -1))
            if limit is not None and size > limit:
                resp["Body"].close()
                return StoredObject(key, b"", resp["ETag"], size)
            body = resp["Body"].read()
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise self._translate(exc, key) from exc
        return StoredObject(key, body, resp["ETag"], len(body))

    def head(self, key: str) -> ObjectInfo | None:
        self.counters.count("HeadObject")
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise self._translate(exc, key) from exc
        return ObjectInfo(key, resp["ETag"], int(resp.get("ContentLength", 0)))

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        cache_control: str,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "CacheControl": cache_control,
        }
        if if_match:
            kwargs["IfMatch"] = if_match
        elif if_none_match:
            kwargs["IfNoneMatch"] = "*"
        self.counters.count("PutObject", len(body))
        try:
            resp = self.client.put_object(**kwargs)
        except Exception as exc:
            if if_match and _is_missing(exc):  # S3's 404 for an If-Match on a deleted key
                raise PreconditionFailed(
                    f"s3://{self.bucket}/{key}: deleted since read", key
                ) from exc
            raise self._translate(exc, key) from exc
        return resp.get("ETag") or md5_etag(body)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self.counters.count("DeleteObject")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match
        try:
            self.client.delete_object(**kwargs)
        except Exception as exc:
            if _is_missing(exc):
                return
            raise self._translate(exc, key) from exc

    def delete_many(self, keys: list[str]) -> None:
        """Delete ``keys`` with DeleteObjects, 1,000 a request (absent keys are
        no error); the first key S3 could not delete raises."""
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            if len(chunk) == 1:
                self.delete(chunk[0])
                continue
            self.counters.count("DeleteObjects")
            try:
                resp = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            except Exception as exc:
                raise self._translate(exc, chunk[0]) from exc
            errors = [e for e in resp.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                code, key = errors[0].get("Code", ""), errors[0].get("Key", chunk[0])
                error = TransientStorageError if code in _TRANSIENT_CODES else StorageError
                raise error(f"s3://{self.bucket}/{key}: {code}", key)

    def presign(self, key: str, expires_in: int) -> str:
        """A URL anyone holding it may GET ``key`` with for ``expires_in``
        seconds (at most 7 days, SigV4's limit); no request is made. It stops
        working earlier if the signing credentials expire first (a Lambda
        role's session does), which is why staff tools sign their own."""
        try:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        for item in self._listing(prefix):
            yield item["Key"]

    def list_folders(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` that hold objects (S3's common
        prefixes, one request per 1,000): the months a rebuild has entries for,
        without listing every object under them."""
        out: list[str] = []
        for resp in self._pages(prefix, Delimiter="/"):
            out += [p["Prefix"][len(prefix) : -1] for p in resp.get("CommonPrefixes", [])]
        return out

    def list_modified(self, prefix: str = "") -> dict[str, tuple[str, float]]:
        """Key -> (ETag, last-modified epoch seconds) of every object under ``prefix``."""
        return {
            item["Key"]: (item["ETag"], item["LastModified"].timestamp())
            for item in self._listing(prefix)
        }

    def list_etags(self, prefix: str = "") -> dict[str, str]:
        """Key -> ETag of every object under ``prefix`` (one request per 1,000 keys)."""
        return {item["Key"]: item["ETag"] for item in self._listing(prefix)}

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        for resp in self._pages(prefix):
            yield from resp.get("Contents", [])

    def _pages(self, prefix: str, **extra: str) -> Iterator[dict[str, Any]]:
        """Every ListObjectsV2 response under ``prefix``, following continuation tokens."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, **extra}
            if token:
                kwargs["ContinuationToken"] = token
            self.counters.count("ListObjectsV2")
            try:
                resp = self.client.list_objects_v2(**kwargs)
            except Exception as exc:
                raise self._translate(exc, prefix) from exc
            yield resp
            if not resp.get("IsTruncated"):
                return
            token = resp.get("NextContinuationToken")


_ARCHIVED = (
    "is in an archive storage class (Glacier or Deep Archive), so it cannot be read; "
    "restore it, or upload it again in the Standard storage class"
)
_SSE_C = (
    "is encrypted with a customer-provided key (SSE-C), which the publisher does not have; "
    "upload it again without SSE-C (the bucket's own encryption protects it)"
)


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")
