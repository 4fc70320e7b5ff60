"""The storage port: the few verbs the publisher needs, over S3 or a folder.

- ``port``: the verbs (``Storage``), what they return, the request counters and
  ``put_if_unchanged``, the commit step of every read-modify-write.
- ``s3``: ``S3Storage``, the boto3 client passed in, botocore's errors
  translated into the project's own, so nothing above it imports botocore.
- ``local``: ``LocalStorage``, a folder with the bucket's layout and the same
  conditional-write semantics, so ``newsroom build`` and the Lambda share every
  code path above the port.
"""

from .local import LocalStorage
from .port import Counters, ObjectInfo, Storage, StoredObject, md5_etag, put_if_unchanged
from .s3 import S3Storage

__all__ = [
    "Counters",
    "LocalStorage",
    "ObjectInfo",
    "S3Storage",
    "Storage",
    "StoredObject",
    "md5_etag",
    "put_if_unchanged",
]
