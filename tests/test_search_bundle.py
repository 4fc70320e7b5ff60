"""The search bundle: built from public releases only, deterministic, per language.

Checked in the bundle files themselves: a fragment is a gzip file that starts
with ``pagefind_dcd`` followed by the JSON of one indexed page (its URL,
content, metadata and filters); a language's words are in its index chunks.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, dumps, make_release, renderer

from chalicelib.core.model import parse_release
from chalicelib.search import ENTRY_KEY, MANIFEST_KEY, SEARCH_PAGE_KEY, build_bundle, site_files
from chalicelib.search.bundle import _decode
from chalicelib.search.pieces import PIECE_SIZE, pieces_of
from chalicelib.search.records import document, record

NEWSROOM = str(Path(sys.executable).parent / "newsroom")


FRAGMENT = re.compile(r"^pagefind/[0-9-]+/fragment/")


def fragments(files: dict[str, bytes]) -> list[dict]:
    """Every indexed page, from the fragments of every piece."""
    out = []
    for key, body in files.items():
        if FRAGMENT.match(key):
            raw = gzip.decompress(body)
            assert raw.startswith(b"pagefind_dcd")
            out.append(json.loads(raw[len(b"pagefind_dcd") :]))
    return sorted(out, key=lambda f: f["url"])


def words(files: dict[str, bytes], lang: str) -> set[str]:
    found: set[str] = set()
    for key, body in files.items():
        if re.match(rf"^pagefind/[0-9-]+/index/{lang}_", key):
            for item in _decode(body)[0]:
                found.add(item[0])
    return found


def rec(**overrides):
    doc = make_release(**overrides)
    release = parse_release(dumps(doc), name=f"releases/{doc.get('slug', 'x')}.json")
    return record(release, release.summary or "")


def test_record_holds_the_searchable_fields_and_nothing_private():
    r = rec(slug="clinics", body="The **clinics** reopened.\n\nCall <press@x.example>.")
    assert r["title"] == "Coastal clinics reopen after the storm"
    assert r["text"].startswith("The clinics reopened.")
    assert r["topics"] == ["Clean Water", "Côte d'Ivoire"]
    assert (r["kind"], r["kind_label"], r["date"]) == (
        "press-release",
        "Press Release",
        "December 19, 2018",
    )
    assert "contacts" not in r and "source_key" not in r and "Ada Ode" not in json.dumps(r)


def test_document_escapes_every_field_as_text():
    html = document(rec(slug="x", title="<script>alert(1)</script> & co", topics=["a<b"]))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "a&lt;b" in html


def test_bundle_indexes_each_release_in_its_own_language_with_filters_and_meta():
    files = build_bundle(
        [
            rec(slug="clinics"),
            rec(
                slug="inondations",
                language="fr",
                title="Inondations à Abidjan",
                body="Les familles déplacées demandent un relogement digne.",
                summary=None,
                kind="statement",
                topics=["Logement"],
                published_at="2019-03-02T09:00:00+00:00",
            ),
        ]
    )
    entry = json.loads(files[ENTRY_KEY])
    assert sorted(entry["languages"]) == ["en", "fr"]
    frs = fragments(files)
    assert [f["url"] for f in frs] == ["/releases/clinics/", "/releases/inondations/"]
    fr = frs[1]
    assert fr["meta"]["title"] == "Inondations à Abidjan"
    assert fr["meta"]["language"] == "fr"
    # its kind and date as its own page shows them
    assert (fr["meta"]["kind"], fr["meta"]["date"]) == ("Déclaration", "2 mars 2019")
    assert fr["filters"] == {"kind": ["statement"], "topic": ["Logement"], "year": ["2019"]}
    # "déplacées" is indexed under its French stem, in the French index only
    assert "deplace" in words(files, "fr")
    assert not any(w.startswith("deplac") for w in words(files, "en"))
    assert not any("pagefind-ui" in k for k in files)


def test_one_index_per_year_under_a_shell_that_holds_the_runtime_once():
    files = build_bundle(
        [
            rec(slug="old", published_at="2018-05-01T09:00:00+00:00"),
            rec(slug="older", published_at="2018-01-01T09:00:00-05:00", language="fr"),
            rec(slug="new", published_at="2021-03-02T09:00:00+00:00"),
        ]
    )
    manifest = json.loads(files[MANIFEST_KEY])
    assert manifest == {
        "version": 1,
        "pieces": [
            {"name": "2021", "year": "2021", "languages": ["en"]},
            {"name": "2018", "year": "2018", "languages": ["en", "fr"]},
        ],
        "topics": ["Clean Water", "Côte d'Ivoire"],
    }
    assert [f["url"] for f in fragments({k: v for k, v in files.items() if "/2018/" in k})] == [
        "/releases/old/",
        "/releases/older/",
    ]
    # each piece is a whole Pagefind index; the runtime is at the top, once
    for piece in ("2018", "2021"):
        entry = json.loads(files[f"pagefind/{piece}/pagefind-entry.json"])
        for info in entry["languages"].values():
            assert f"pagefind/{piece}/pagefind.{info['hash']}.pf_meta" in files
    assert not any(
        k.startswith("pagefind/20") and ("wasm." in k or k.endswith(".js")) for k in files
    )
    assert {"pagefind/pagefind.js", "pagefind/pagefind-worker.js"} <= set(files)
    assert {"pagefind/wasm.en.pagefind", "pagefind/wasm.fr.pagefind"} <= set(files)
    # the shell: an empty index per language, the primary the pieces merge into
    shell = json.loads(files[ENTRY_KEY])
    assert sorted(shell["languages"]) == ["en", "fr"]
    assert shell["languages"]["en"]["page_count"] == 0
    for info in shell["languages"].values():
        meta = _decode(files[f"pagefind/pagefind.{info['hash']}.pf_meta"])
        assert meta[1:] == [[], [], [], [], []]


def test_a_large_year_is_cut_into_equal_runs_of_months():
    assert pieces_of({"2020-01": 5, "2020-12": 7}) == {"2020-01": "2020", "2020-12": "2020"}
    most = PIECE_SIZE - 10
    by_half = pieces_of({"2021-02": most, "2021-05": 10, "2021-09": most})
    assert by_half == {"2021-02": "2021-01", "2021-05": "2021-01", "2021-09": "2021-07"}
    by_quarter = pieces_of({"2021-02": most, "2021-05": 11, "2021-09": most})
    assert by_quarter == {"2021-02": "2021-01", "2021-05": "2021-04", "2021-09": "2021-07"}
    # one month above the limit is one piece; its neighbours get their own
    alone = pieces_of({"2022-01": PIECE_SIZE + 1, "2022-02": 1})
    assert alone == {"2022-01": "2022-01", "2022-02": "2022-02"}


def test_the_same_records_give_byte_identical_bundles_whatever_their_order():
    records = [
        rec(slug=f"r{i}", topics=[f"Topic {i % 5}", "Water"], language=["en", "fr", "de"][i % 3])
        for i in range(30)
    ]
    records += [rec(slug="y2017", published_at="2017-01-01T00:00:00+00:00")]
    assert build_bundle(records) == build_bundle(list(reversed(records)))


def test_no_records_no_bundle():
    assert build_bundle([]) == {}
    r = renderer()
    files = site_files([], r)
    assert sorted(files) == [SEARCH_PAGE_KEY, r.search_script_key]
    assert f'src="/{r.search_script_key}"'.encode() in files[SEARCH_PAGE_KEY]


def test_build_indexes_public_releases_only(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "live.json").write_bytes(dumps(make_release(title="Harbour wall finished")))
    (src / "later.json").write_bytes(
        dumps(
            make_release(
                title="Secret embargoed dredging report",
                embargo_until="2999-01-01T00:00:00+00:00",
            )
        )
    )
    out = tmp_path / "out"
    files = built_bundle(src, out)
    frs = fragments(files)
    assert [f["url"] for f in frs] == ["/releases/live/"]
    assert b"dredging" not in b"".join(
        gzip.decompress(b) for k, b in files.items() if k.endswith(("pf_fragment", "pf_index"))
    )
    assert (out / "search" / "index.html").is_file()
    # a second build of the same sources changes nothing under pagefind/
    again = tmp_path / "again"
    shutil.copytree(out, again)
    assert built_bundle(src, again) == files


def built_bundle(src: Path, out: Path) -> dict[str, bytes]:
    """``newsroom build SRC --out OUT``; the files it left under ``pagefind/``."""
    run = subprocess.run(
        [NEWSROOM, "build", str(src), "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and p.relative_to(out).as_posix().startswith("pagefind/")
    }


@pytest.mark.parametrize("missing", ["/nonexistent/pagefind"])
def test_a_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, missing: str):
    from chalicelib.search import SearchIndexError

    monkeypatch.setenv("PAGEFIND_BINARY_PATH", missing)
    with pytest.raises(SearchIndexError, match="pagefind failed to run"):
        build_bundle([rec(slug="x")])
