"""The search bundle in bounded pieces: one Pagefind index per year.

Pagefind holds the whole index it builds in memory (about 125 KiB per
release), so one index of the whole archive needs memory in proportion to the
archive, and rebuilding it after one publish costs the whole archive's time.
The bundle is therefore cut into *pieces*, each a complete Pagefind index of
the releases of one year (by ``published_at`` in the release's own offset, as
the year filter and the month files are), built one after the other (never two
Pagefind processes at once) under ``pagefind/<piece>/``:

- a year of at most ``PIECE_SIZE`` releases is one piece, named ``<yyyy>``;
- a larger year is cut into equal runs of months (halves, quarters, thirds of
  quarters, two months, single months: the fewest that keep every run at most
  ``PIECE_SIZE``), each named by its first month, ``<yyyy>-<mm>``; a single
  month above the limit stays one piece (memory is then bounded by the largest
  month).

At the top of ``pagefind/`` sit what every piece shares: Pagefind's script,
worker and WebAssembly (one copy, the same bytes for every piece), a *shell*
index (``pagefind-entry.json`` naming one empty metadata file per language:
the search page's primary Pagefind instance, which loads the WebAssembly from
the top and merges the pieces into itself with ``mergeIndex``), and the
manifest ``pieces.json``, the entry point the search page reads first:
``{"version": 1, "pieces": [{"name", "year", "languages"}, …], "topics": […]}``,
pieces newest first, with every topic (the search page's topic choices).

The pieces a release lands in follow from the number of releases per month
only, so ``newsroom build`` and ``update_search`` cut the same archive the
same way and write the same bytes; ``update_search`` rebuilds only the pieces
whose months changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..keys import PAGEFIND_MANIFEST_KEY
from .bundle import ENTRY_KEY, ENTRY_NAME, PREFIX, build_piece, decode, encode, piece_prefix
from .records import month_of

MANIFEST_KEY = PAGEFIND_MANIFEST_KEY
# releases per piece: Pagefind needs about 125 KiB of memory per release it indexes
PIECE_SIZE = 1500
_SPANS = (12, 6, 3, 2, 1)  # months per piece, from a whole year to one month
_RUNTIME_FILES = ("pagefind.js", "pagefind-worker.js")


def pieces_of(counts: Mapping[str, int], limit: int = PIECE_SIZE) -> dict[str, str]:
    """``{month: piece}`` for the months (``yyyy-mm``) of ``counts``, each the
    number of releases of that month."""
    years: dict[str, dict[int, int]] = {}
    for month, n in counts.items():
        if n > 0:
            years.setdefault(month[:4], {})[int(month[5:7])] = n
    out: dict[str, str] = {}
    for year, months in years.items():
        for span in _SPANS:
            totals: Counter[int] = Counter()
            for m, n in months.items():
                totals[(m - 1) // span] += n
            if max(totals.values()) <= limit or span == 1:
                break
        for m in months:
            first = (m - 1) // span * span + 1
            out[f"{year}-{m:02d}"] = year if span == 12 else f"{year}-{first:02d}"
    return out


def piece_of_key(key: str) -> str | None:
    """The piece a bundle key belongs to (None: the shared top of the bundle)."""
    rest = key[len(PREFIX) :] if key.startswith(PREFIX) else ""
    head, sep, _tail = rest.partition("/")
    return head if sep and head[:1].isdigit() else None


def month_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(month_of(r) for r in records))


def build_pieces(
    records: Iterable[dict[str, Any]], counts: Mapping[str, int] | None = None
) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
    """``({piece: its files}, runtime files)`` of ``records``, the pieces built
    one after the other. ``counts`` (releases per month) decide the pieces;
    by default the records' own."""
    records = list(records)
    of = pieces_of(counts if counts is not None else month_counts(records))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        grouped.setdefault(of.get(month_of(rec), month_of(rec)[:4]), []).append(rec)
    pieces: dict[str, dict[str, bytes]] = {}
    runtime: dict[str, bytes] = {}
    for piece in sorted(grouped):
        files, more = build_piece(piece, grouped.pop(piece))
        if files:
            pieces[piece] = files
            runtime.update(more)
    return pieces, runtime


def build_bundle(
    records: Iterable[dict[str, Any]], counts: Mapping[str, int] | None = None
) -> dict[str, bytes]:
    """The whole search bundle of ``records`` (empty when there is nothing to
    index): every piece, the shell, the manifest and Pagefind's runtime."""
    pieces, runtime = build_pieces(records, counts)
    files: dict[str, bytes] = {}
    entries, topics = {}, {}
    for piece, piece_files in pieces.items():
        files.update(piece_files)
        entries[piece] = json.loads(piece_files[piece_prefix(piece) + ENTRY_NAME])
        topics[piece] = piece_topics(piece_files, piece)
    top, needed = shell(entries, topics)
    files.update(top)
    files.update({k: runtime[k] for k in needed if k in runtime})
    return files


def piece_topics(files: Mapping[str, bytes], piece: str) -> list[str]:
    """The topics of a piece, from its own topic filter files (one per language)."""
    prefix = piece_prefix(piece)
    topics: set[str] = set()
    for key in files:
        if key.startswith(prefix + "pagefind.") and key.endswith(".pf_meta"):
            for name, chunk in decode(files[key])[3]:
                if name == "topic":
                    topics.update(
                        v[0] for v in decode(files[f"{prefix}filter/{chunk}.pf_filter"])[1]
                    )
    return sorted(topics)


def shell(
    entries: Mapping[str, dict[str, Any]], topics: Mapping[str, Iterable[str]]
) -> tuple[dict[str, bytes], list[str]]:
    """The top of the bundle for pieces whose ``pagefind-entry.json`` are
    ``entries`` and whose topics are ``topics``: ``({key: bytes} of the shell
    entry, its empty metadata files and the manifest}, [the runtime keys they
    need])``. Empty without pieces. The manifest carries every topic, so the
    search page offers the topic choices without reading any piece's filters."""
    if not entries:
        return {}, []
    languages: dict[str, dict[str, Any]] = {}
    version = ""
    include: list[str] = []
    for piece in sorted(entries):
        entry = entries[piece]
        version = max(version, str(entry.get("version", "")))
        include = include or list(entry.get("include_characters", []))
        for lang, info in entry.get("languages", {}).items():
            # the shell holds no page: it changes only when the languages do
            languages.setdefault(lang, {"wasm": info.get("wasm"), "page_count": 0})
    files: dict[str, bytes] = {}
    shell_languages = {}
    for lang in sorted(languages):
        # an index of no page: the primary instance the pieces merge into
        body = encode([version, [], [], [], [], []])
        name = f"{lang}_{hashlib.sha256(body).hexdigest()[:10]}"
        files[f"{PREFIX}pagefind.{name}.pf_meta"] = body
        shell_languages[lang] = {"hash": name, **languages[lang]}
    entry = {"version": version, "languages": shell_languages, "include_characters": include}
    files[ENTRY_KEY] = _json(entry)
    manifest = {
        "version": 1,
        "pieces": [
            {"name": p, "year": p[:4], "languages": sorted(entries[p].get("languages", {}))}
            for p in sorted(entries, reverse=True)
        ],
        "topics": sorted({t for p in entries for t in topics.get(p, ())}),
    }
    files[MANIFEST_KEY] = _json(manifest)
    wasm = sorted({str(v["wasm"]) for v in languages.values() if v.get("wasm")})
    needed = [PREFIX + f for f in _RUNTIME_FILES] + [f"{PREFIX}wasm.{w}.pagefind" for w in wasm]
    return files, needed


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
