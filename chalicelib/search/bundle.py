"""Records in, Pagefind bundle out: ``{"pagefind/<file>": bytes}``.

Pagefind (``indexer.Indexer``) indexes one small HTML document per record, in
URL order. Only the files the search page loads are kept (no Pagefind UI, no
playground).

Pagefind names its chunks by content hash, but three of its files are not the
same from run to run: the values of a filter come out in hash-map order, and so
do the languages of ``pagefind-entry.json`` (and the metadata file that names
the filter files follows them). ``_canonical`` sorts those and renames the
files by their new content, so the same records always give byte-identical
bundles: a build is deterministic, and ``update_search`` uploads only what
really changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..keys import PAGEFIND_ENTRY_KEY, PAGEFIND_PREFIX
from .indexer import Indexer, SearchIndexError
from .records import document

PREFIX = PAGEFIND_PREFIX
ENTRY_KEY = PAGEFIND_ENTRY_KEY
ENTRY_NAME = "pagefind-entry.json"
# files of Pagefind's output the search page never loads
_UNUSED = ("pagefind-ui.", "pagefind-component-ui.", "pagefind-modular-ui.", "pagefind-highlight.")
_MAGIC = b"pagefind_dcd"


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
