"""Records in, Pagefind bundle out: ``{"pagefind/<file>": bytes}``.

The Pagefind binary (PyPI ``pagefind[bin]`` locally, the search layer in
Lambda) indexes one small HTML document per record. The documents go to the
binary's service mode (``pagefind --service``) over a pipe, in URL order, as a
stream: no document is written to disk, and the order Pagefind numbers its
pages in comes from the records, never from a folder listing (its folder mode
takes pages in directory order, which differs from one file system to the
next). Only the files the search page loads are kept (no Pagefind UI, no
playground). Pagefind's own Python API polls for each answer every 0.1 s, so
``Indexer`` speaks the same protocol itself, without waiting between requests.

Pagefind names its chunks by content hash, but three of its files are not the
same from run to run: the values of a filter come out in hash-map order, and so
do the languages of ``pagefind-entry.json`` (and the metadata file that names
the filter files follows them). ``_canonical`` sorts those and renames the
files by their new content, so the same records always give byte-identical
bundles: a build is deterministic, and ``update_search`` uploads only what
really changed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..keys import PAGEFIND_ENTRY_KEY, PAGEFIND_PREFIX
from .records import document

PREFIX = PAGEFIND_PREFIX
ENTRY_KEY = PAGEFIND_ENTRY_KEY
ENTRY_NAME = "pagefind-entry.json"
# files of Pagefind's output the search page never loads
_UNUSED = ("pagefind-ui.", "pagefind-component-ui.", "pagefind-modular-ui.", "pagefind-highlight.")
_MAGIC = b"pagefind_dcd"


class SearchIndexError(RuntimeError):
    """Pagefind could not build the bundle (missing binary, failed run)."""


def executable() -> str:
    """The Pagefind binary: ``PAGEFIND_BINARY_PATH``, else the one ``pagefind[bin]``
    installs (locally the pip package, in Lambda the search layer)."""
    path = os.environ.get("PAGEFIND_BINARY_PATH", "")
    if path:
        return path
    try:
        from pagefind_bin import get_executable  # not in the release handler's zip
    except ImportError:
        raise SearchIndexError(
            "the pagefind binary is missing: install 'pagefind[bin]' (Lambda: the search layer)"
        ) from None
    return str(get_executable())


class Indexer:
    """One Pagefind index fed over ``pagefind --service``: ``add`` sends a page
    without waiting for Pagefind's answer (a thread collects the answers), and
    ``write`` waits for every answer, then has Pagefind write the bundle.

    Pagefind numbers pages in the order they are added, and that numbering is
    in the bundle's bytes: callers add in a canonical order (URL order)."""

    def __init__(self) -> None:
        try:
            self._proc = subprocess.Popen(
                [executable(), "--service"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise SearchIndexError(f"pagefind failed to run: {exc}") from exc
        # its input and output descriptors (see newsroom/build_search.py)
        self.pipes = (self._proc.stdin.fileno(), self._proc.stdout.fileno())  # type: ignore[union-attr]
        self._sent = 0
        self._errors: list[str] = []
        self._answers: dict[int, dict[str, Any]] = {}  # answers to ``_call``s
        self._closed = False
        self._done = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="pagefind-answers", daemon=True)
        self._reader.start()
        self._index_id = self._call({"type": "NewIndex", "config": None})["index_id"]
        self.pages = 0

    def _send(self, payload: dict[str, Any]) -> int:
        self._sent += 1
        message = json.dumps({"message_id": self._sent, "payload": payload}).encode("utf-8")
        try:
            self._proc.stdin.write(base64.b64encode(message) + b",")  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError) as exc:
            raise self._failure(f"pagefind stopped: {exc}") from exc
        return self._sent

    def _read(self) -> None:
        """Collect answers (base64 JSON, each ended by a comma) until EOF."""
        out = self._proc.stdout
        assert out is not None
        buf = b""
        while chunk := out.read1(1 << 16):  # type: ignore[attr-defined]
            buf += chunk
            *messages, buf = buf.split(b",")
            with self._done:
                for raw in messages:
                    try:
                        answer = json.loads(base64.b64decode(raw))
                    except ValueError:
                        self._errors.append(f"unreadable answer {raw[:80]!r}")
                        continue
                    payload = answer.get("payload") or {}
                    if payload.get("type") == "Error":
                        self._errors.append(str(payload.get("message", payload))[:500])
                    if payload.get("type") in ("NewIndex", "WriteFiles"):
                        self._answers[answer.get("message_id")] = payload
                self._done.notify_all()
        with self._done:
            self._closed = True
            self._done.notify_all()

    def _wait(self, message_id: int, timeout: float) -> dict[str, Any]:
        with self._done:
            self._done.wait_for(lambda: message_id in self._answers or self._closed, timeout)
            if self._errors:
                raise self._failure("pagefind: " + "; ".join(self._errors[:3]))
            if message_id not in self._answers:
                raise self._failure("pagefind stopped answering")
            return self._answers.pop(message_id)

    def _call(self, payload: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        count = self._send(payload)
        self._proc.stdin.flush()  # type: ignore[union-attr]
        return self._wait(count, timeout)

    def _failure(self, message: str) -> SearchIndexError:
        self.close()
        return SearchIndexError(message)

    def add(self, url: str, html: str) -> None:
        """Index ``html`` as the page at ``url`` (a folder path, ``/…/``)."""
        if not (url.startswith("/") and url.endswith("/")) or ".." in url.split("/"):
            raise SearchIndexError(f"record url must be a folder path, got {url!r}")
        self._send({"type": "AddFile", "index_id": self._index_id, "file_path": None,
                    "url": url, "file_contents": html})  # fmt: skip
        self.pages += 1

    def write(self, folder: str, timeout: float = 3600) -> None:
        """Wait until every page is indexed, then write the bundle into ``folder``."""
        folder = os.path.abspath(folder)
        try:
            self._call(
                {"type": "WriteFiles", "index_id": self._index_id, "output_path": folder},
                timeout,
            )
            self._settle(folder)
        finally:
            self.close()

    def _settle(self, folder: str, timeout: float = 120) -> None:
        """Pagefind answers ``WriteFiles`` while its last writes are still in
        flight (tokio finishes them in the background), and it exits as soon
        as its input closes, dropping whatever is unfinished. Every file is
        open by then, so once none under ``folder`` is still open, all are
        complete."""
        fds = f"/proc/{self._proc.pid}/fd"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                names = os.listdir(fds)
            except OSError:  # no /proc: give the writes a moment instead
                time.sleep(0.5)
                return
            busy = False
            for name in names:
                try:
                    target = os.readlink(f"{fds}/{name}")
                except OSError:
                    continue
                if target.startswith(folder + os.sep):
                    busy = True
                    break
            if not busy:
                return
            time.sleep(0.005)
        raise self._failure("pagefind did not finish writing the bundle")

    def kill(self) -> None:
        """Drop this index: Pagefind stops at once, nothing is written."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()


# Pagefind's own script, worker and WebAssembly: the same bytes for every piece
# (of one Pagefind version), kept once at the top of the bundle
_RUNTIME = ("pagefind.js", "pagefind-worker.js", "wasm.")


def is_runtime(rel: str) -> bool:
    """A file of Pagefind's output (path within it) that is its runtime, not its index."""
    return rel.startswith(_RUNTIME) and "/" not in rel


def piece_prefix(piece: str) -> str:
    return f"{PREFIX}{piece}/"


def bundle_files(folder: str, piece: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The files of the index Pagefind wrote into ``folder`` that the search page
    loads: the piece's own (``pagefind/<piece>/…``, in canonical form) and the
    runtime (``pagefind/…``)."""
    files: dict[str, bytes] = {}
    runtime: dict[str, bytes] = {}
    prefix = piece_prefix(piece)
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(_UNUSED):
            continue
        if is_runtime(rel):
            runtime[PREFIX + rel] = path.read_bytes()
        else:
            files[prefix + rel] = path.read_bytes()
    return _canonical(files, prefix), runtime


def build_piece(
    piece: str, records: Iterable[dict[str, Any]]
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """One piece's index of ``records`` (each indexed as the page at its URL, in
    URL order) and Pagefind's runtime files, as ``bundle_files`` gives them.
    One Pagefind process, ended before this returns."""
    ordered = sorted(records, key=lambda r: r["url"])
    if not ordered:
        return {}, {}
    indexer = Indexer()
    try:
        for rec in ordered:
            indexer.add(rec["url"], document(rec))
    except BaseException:
        indexer.close()
        raise
    with tempfile.TemporaryDirectory(prefix="newsroom-search-") as tmp:
        indexer.write(tmp)
        return bundle_files(tmp, piece)


# Canonical form ---------------------------------------------------------------------
def _canonical(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    """``files`` of one index (keys under ``prefix``) in canonical form."""
    renamed: dict[str, str] = {}  # old hash name -> new
    out = dict(files)
    for key in sorted(k for k in files if k.startswith(prefix + "filter/")):
        data = _decode(files[key])
        if isinstance(data, list) and len(data) == 2 and isinstance(data[1], list):
            data = [data[0], sorted(data[1], key=lambda v: str(v[0]))]
        body = _encode(data)
        lang, _old = key.rsplit("/", 1)[1].split(".")[0].rsplit("_", 1)
        new = f"{lang}_{hashlib.sha256(body).hexdigest()[:7]}"
        renamed[key.rsplit("/", 1)[1].split(".")[0]] = new
        del out[key]
        out[f"{prefix}filter/{new}.pf_filter"] = body
    meta_names: dict[str, str] = {}
    for key in sorted(
        k for k in files if k.startswith(prefix + "pagefind.") and k.endswith(".pf_meta")
    ):
        data = _replace(_decode(files[key]), renamed)
        if isinstance(data, list) and len(data) > 3 and isinstance(data[3], list):
            data[3] = sorted(data[3], key=lambda f: str(f[0]))  # the filter list
        body = _encode(data)
        old = key[len(prefix + "pagefind.") : -len(".pf_meta")]
        lang = old.rsplit("_", 1)[0]
        new = f"{lang}_{hashlib.sha256(body).hexdigest()[:10]}"
        meta_names[old] = new
        del out[key]
        out[f"{prefix}pagefind.{new}.pf_meta"] = body
    entry_key = prefix + ENTRY_NAME
    if entry_key in files:
        entry = json.loads(files[entry_key])
        languages = {}
        for lang in sorted(entry.get("languages", {})):
            info = dict(entry["languages"][lang])
            info["hash"] = meta_names.get(info["hash"], info["hash"])
            languages[lang] = info
        entry["languages"] = languages
        out[entry_key] = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    return out


def _replace(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_replace(v, names) for v in value]
    return value


def _decode(raw: bytes) -> Any:
    data = gzip.decompress(raw)
    if not data.startswith(_MAGIC):
        raise SearchIndexError("unexpected Pagefind file (no pagefind_dcd header)")
    value, end = _cbor_read(data, len(_MAGIC))
    if end != len(data):
        raise SearchIndexError("unexpected bytes after a Pagefind record")
    return value


def decode(raw: bytes) -> Any:
    """What a Pagefind metadata or filter file holds."""
    return _decode(raw)


def encode(value: Any) -> bytes:
    """A Pagefind metadata or filter file holding ``value``."""
    return _encode(value)


def _encode(value: Any) -> bytes:
    return gzip.compress(_MAGIC + _cbor_write(value), mtime=0)


# The few CBOR types Pagefind's metadata and filter files use, in its minimal encoding.
def _cbor_read(data: bytes, pos: int) -> tuple[Any, int]:
    head = data[pos]
    major, info = head >> 5, head & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        arg = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    else:
        raise SearchIndexError(f"unsupported CBOR item 0x{head:02x}")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major == 2:
        return bytes(data[pos : pos + arg]), pos + arg
    if major == 3:
        return data[pos : pos + arg].decode("utf-8"), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = _cbor_read(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        pairs = {}
        for _ in range(arg):
            k, pos = _cbor_read(data, pos)
            v, pos = _cbor_read(data, pos)
            pairs[k] = v
        return pairs, pos
    if major == 7 and arg in (20, 21, 22):
        return {20: False, 21: True, 22: None}[arg], pos
    raise SearchIndexError(f"unsupported CBOR item 0x{head:02x}")


def _cbor_head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise SearchIndexError("CBOR integer too large")


def _cbor_write(value: Any) -> bytes:
    if value is False or value is True or value is None:
        return bytes([0xE0 | {False: 20, True: 21, None: 22}[value]])
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _cbor_head(3, len(raw)) + raw
    if isinstance(value, list):
        return _cbor_head(4, len(value)) + b"".join(_cbor_write(v) for v in value)
    if isinstance(value, dict):
        return _cbor_head(5, len(value)) + b"".join(
            _cbor_write(k) + _cbor_write(v) for k, v in value.items()
        )
    raise SearchIndexError(f"cannot encode {type(value).__name__} as CBOR")
