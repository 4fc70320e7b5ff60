"""``LocalStorage``: a folder behind the port.

The same layout as the bucket, with the same conditional-write semantics (ETag
= MD5 of the bytes), so ``newsroom build`` and the Lambda share every code path
above the port.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import PreconditionFailed, StorageError
from .port import Counters, ObjectInfo, StoredObject, md5_etag


def _file_etag(path: Path) -> str:
    """The MD5 ETag of a file too large to hold, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


class LocalStorage:
    """A folder with the public bucket's layout; keys map to relative paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.counters = Counters()
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"unsafe key {key!r}", key)
        return self.root.joinpath(*parts)

    def get(self, key: str, *, limit: int | None = None) -> StoredObject | None:
        """``limit``: a body larger than this many bytes is not read (``size`` says how large)."""
        self.counters.count("GetObject")
        path = self._path(key)
        try:
            size = path.stat().st_size
            if limit is not None and size > limit:
                return StoredObject(key, b"", _file_etag(path), size)
            body = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return StoredObject(key, body, md5_etag(body), len(body))

    def head(self, key: str) -> ObjectInfo | None:
        found = self.get(key)
        return None if found is None else ObjectInfo(key, found.etag, len(found.body))

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
        path = self._path(key)
        self.counters.count("PutObject", len(body))
        with self._lock:
            if if_match or if_none_match:
                try:
                    current: str | None = md5_etag(path.read_bytes())
                except FileNotFoundError:
                    current = None
                if (if_none_match and current is not None) or (if_match and current != if_match):
                    raise PreconditionFailed(f"{path}: changed since read", key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(body)
            os.replace(tmp, path)
        return md5_etag(body)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self.counters.count("DeleteObject")
        path = self._path(key)
        try:
            with self._lock:
                if if_match is not None and md5_etag(path.read_bytes()) != if_match:
                    raise PreconditionFailed(f"{path}: changed since read", key)
                path.unlink()
        except FileNotFoundError:
            return
        # prune now-empty folders so the tree matches the bucket's key set
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def list_folders(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` that hold objects."""
        rests = (k[len(prefix) :] for k in self.list(prefix))
        return sorted({r.split("/", 1)[0] for r in rests if "/" in r})

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self.counters.count("ListObjectsV2")
        if not self.root.is_dir():
            return
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                key = rel.replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)
