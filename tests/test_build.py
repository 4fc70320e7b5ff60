"""The folder build behind ``newsroom build``: workers read, render and write
the release pages and the shared pages themselves; the folder ends holding
exactly the objects the in-memory build (the same renderer as the Lambda)
gives, whether the work ran in forked workers or in one process."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import SAMPLES, dumps, make_release, renderer

from newsroom import build

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def sources(tmp_path: Path) -> list[tuple[str, str]]:
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(SAMPLES.glob("*.json")):
        (src / p.name).write_bytes(p.read_bytes())
    extra = {
        # an earlier claim on a sample's slug wins it; a later one is refused
        "aaa-early-claim.json": make_release(
            slug="youth-climate-delegation", published_at="2001-01-01T00:00:00Z"
        ),
        "zzz-late-claim.json": make_release(
            slug="coastal-clinics-reopen", published_at="2026-11-01T00:00:00Z"
        ),
        "embargoed.json": make_release(slug="embargoed", embargo_until="2999-01-01T00:00:00Z"),
        "future-dated.json": make_release(slug="future-dated", published_at="2999-01-01T00:00:00Z"),
        "poison.json": make_release(slug="poison", body="half a character \ud800"),
    }
    for name, doc in extra.items():
        (src / name).write_text(json.dumps(doc))  # ASCII: the surrogate as its escape
    (src / "broken.json").write_bytes(b"{")
    return [(f"releases/{p.name}", str(p)) for p in sorted(src.glob("*.json"))]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def in_memory(files: list[tuple[str, str]]) -> build.SiteBuild:
    """The reference: the in-memory build plus the search bundle of its releases."""
    from chalicelib.search import records_from_sources, site_files

    raws = {key: Path(path).read_bytes() for key, path in files}
    result = build.build_site(list(raws.items()), renderer(), now=NOW, workers=1)
    result.files.update(site_files(records_from_sources(result.index.entries, raws), renderer()))
    return result


@pytest.mark.parametrize("workers", [1, 2])
def test_folder_build_equals_the_in_memory_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)  # fork even for a small site
    files = sources(tmp_path)
    expected = in_memory(files)
    out = tmp_path / "out"
    result = build.build_folder(files, renderer(), str(out), now=NOW, workers=workers)
    assert tree(out) == expected.files
    assert result.index == expected.index
    assert sorted((p.source, p.error) for p in result.problems) == sorted(
        (p.source, p.error) for p in expected.problems
    )
    assert {p.source for p in result.problems} >= {
        "releases/broken.json",
        "releases/poison.json",
        "releases/zzz-late-claim.json",
        "releases/youth-climate-delegation.json",
    }
    scheduled = sorted(s.source_key for s in result.scheduled)
    assert scheduled == sorted(s.source_key for s in expected.scheduled)
    assert {"releases/embargoed.json", "releases/future-dated.json"} <= set(scheduled)
    assert result.written == len(expected.files) and result.unchanged == 0


def test_a_second_build_writes_nothing_and_an_edit_rewrites_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    files = sources(tmp_path)
    out = tmp_path / "out"
    first = build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    stamps = {p: os.stat(p).st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build.build_folder(
        files, renderer(), str(out), now=NOW, workers=2, previous=first.index
    )
    assert again.written == 0 and again.removed == []
    assert stamps == {p: os.stat(p).st_mtime_ns for p in out.rglob("*") if p.is_file()}
    # an edit and a removal: the folder then equals a fresh build of the new sources
    edited = dict(files)
    Path(edited["releases/flood-season-appeal.json"]).write_bytes(
        dumps(make_release(slug="flood-season-appeal", title="Appeal, corrected"))
    )
    del edited["releases/rescue-ship-detention.json"]
    files = sorted(edited.items())
    third = build.build_folder(
        files, renderer(), str(out), now=NOW, workers=2, previous=again.index
    )
    assert tree(out) == in_memory(files).files
    assert "releases/rescue-ship-detention/index.html" in third.removed
    assert not (out / "releases" / "rescue-ship-detention").exists()
    assert 0 < third.written < len(stamps) / 2


def test_a_file_that_cannot_be_read_is_that_files_problem(tmp_path: Path) -> None:
    files = [*sources(tmp_path), ("releases/gone.json", str(tmp_path / "gone.json"))]
    result = build.build_folder(files, renderer(), str(tmp_path / "out"), now=NOW, workers=1)
    assert any(
        p.source == "releases/gone.json" and p.error.loc == "(file)" for p in result.problems
    )
    assert (tmp_path / "out" / "index.json").is_file()


def test_without_search_the_folder_holds_the_site_alone(tmp_path: Path) -> None:
    files = sources(tmp_path)
    out = tmp_path / "out"
    build.build_folder(files, renderer(), str(out), now=NOW, workers=1, search=False)
    site = in_memory(files).files
    assert tree(out) == {
        k: v for k, v in site.items() if not k.startswith(("pagefind/", "search/"))
    }


def test_language_versions_link_to_each_other_as_in_the_in_memory_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release page links to the other language versions, known only after
    every file is read: the folder build renders those pages again then, and
    still equals the reference."""
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    files = sources(tmp_path)
    expected = in_memory(files)
    out = tmp_path / "out"
    build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    assert tree(out) == expected.files
    linked = [
        k for k, v in expected.files.items() if k.startswith("releases/") and b'hreflang="fr"' in v
    ]
    assert len(linked) >= 2, "the samples hold language versions that link to each other"


@pytest.mark.parametrize("named_by_slug", [True, False])
def test_the_search_bundle_is_the_reference_whether_files_arrive_in_url_order_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_by_slug: bool
) -> None:
    """Pagefind is fed while pages render, in the order files arrive; that
    order is URL order when files are named after their slugs, and the bundle
    must be the one ``build_bundle`` makes from the records either way."""
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    src = tmp_path / "src"
    src.mkdir()
    slugs = ["a", "a-b", "b0", "water-2", "water-10", "zeta"]
    for i, slug in enumerate(slugs):
        name = slug if named_by_slug else f"{len(slugs) - i:02d}-{slug}"
        doc = make_release(slug=slug, published_at=f"2020-01-0{i + 1}T09:00:00Z")
        (src / f"{name}.json").write_bytes(dumps(doc))
    files = [(f"releases/{p.name}", str(p)) for p in sorted(src.glob("*.json"))]
    out = tmp_path / "out"
    build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    assert tree(out) == in_memory(files).files


def _years(src: Path, slugs_by_year: dict[int, list[str]]) -> list[tuple[str, str]]:
    src.mkdir()
    for year, slugs in slugs_by_year.items():
        for i, slug in enumerate(slugs):
            doc = make_release(slug=slug, published_at=f"{year}-0{i + 1}-02T09:00:00Z")
            (src / f"{slug}.json").write_bytes(dumps(doc))
    return [(f"releases/{p.name}", str(p)) for p in sorted(src.glob("*.json"))]


def test_pagefind_indexes_each_year_from_the_guess_made_before_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sources render piece by piece and each piece goes to Pagefind as its
    documents come back; when the guess read from the sources' bytes holds,
    no piece is indexed twice, and the bundle is the reference."""
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    files = _years(
        tmp_path / "src",
        {2019: ["harbour", "zinc"], 2020: ["alpha", "quay", "mills"], 2021: ["beta"]},
    )
    out = tmp_path / "out"
    result = build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    assert result.search_again == 0
    assert tree(out) == in_memory(files).files
    assert {"pagefind/2019/pagefind-entry.json", "pagefind/2021/pagefind-entry.json"} <= set(
        tree(out)
    )


def test_a_wrong_guess_at_a_piece_is_indexed_again_and_the_bundle_is_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guess is only an order of work: a slug that is not its file name
    (so the piece arrives out of URL order), a slug claimed twice, a release
    under embargo and a file that is no release are all found once the index
    is built, and only the pieces they touch are indexed again."""
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    src = tmp_path / "src"
    files = _years(src, {2019: ["harbour", "zinc"], 2020: ["alpha", "quay"], 2021: ["beta"]})
    renamed = make_release(slug="aaa-first", published_at="2019-03-02T09:00:00Z")
    (src / "zz-named-otherwise.json").write_bytes(dumps(renamed))
    claim = make_release(slug="quay", published_at="2018-01-01T00:00:00Z")
    (src / "an-earlier-quay.json").write_bytes(dumps(claim))
    embargoed = make_release(slug="later", embargo_until="2999-01-01T00:00:00Z")
    (src / "later.json").write_bytes(dumps(embargoed))
    (src / "broken.json").write_bytes(b'{"published_at": "2021-05-01T00:00:00Z"')
    files = [(f"releases/{p.name}", str(p)) for p in sorted(src.glob("*.json"))]
    out = tmp_path / "out"
    result = build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    assert tree(out) == in_memory(files).files
    # 2019 (out of URL order) and 2020 (its quay lost the slug); not 2021
    assert result.search_again == 2


def test_a_piece_whose_documents_and_files_are_unchanged_is_not_indexed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build over an earlier one keeps each search piece whose documents are
    the ones it was indexed from and whose files are as that build left them;
    an edited release, or a piece's file gone, has its piece indexed again.
    The folder always equals a fresh build of the same sources."""
    monkeypatch.setattr(build, "PARALLEL_THRESHOLD", 2)
    src = tmp_path / "src"
    files = _years(src, {2019: ["harbour", "zinc"], 2020: ["alpha", "quay"], 2021: ["beta"]})
    out = tmp_path / "out"
    first = build.build_folder(files, renderer(), str(out), now=NOW, workers=2)
    assert set(first.search_state) == {"2019", "2020", "2021"} and first.search_kept == 0
    stamps = {p: os.stat(p).st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def again(previous: build.FolderBuild) -> build.FolderBuild:
        return build.build_folder(
            files, renderer(), str(out), now=NOW, workers=2,
            previous=previous.index, previous_search=previous.search_state,
        )  # fmt: skip

    second = again(first)
    assert second.search_kept == 3 and second.written == 0 and second.removed == []
    assert stamps == {p: os.stat(p).st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert second.search_state == first.search_state
    # an edit in 2020: that piece alone is indexed again
    doc = make_release(slug="quay", title="Quay, corrected", published_at="2020-02-02T09:00:00Z")
    (src / "quay.json").write_bytes(dumps(doc))
    third = again(second)
    assert third.search_kept == 2
    assert third.search_state["2020"] != second.search_state["2020"]
    assert tree(out) == in_memory(files).files
    # a file of the 2019 piece gone: its files no longer match, it is indexed again
    fragment = next((out / "pagefind" / "2019" / "fragment").iterdir())
    fragment.unlink()
    fourth = again(third)
    assert fourth.search_kept == 2 and fragment.is_file()
    assert tree(out) == in_memory(files).files


def test_a_worker_forked_while_pagefind_runs_does_not_hold_its_input_open() -> None:
    """Pagefind ends when its input closes: a process forked while a build
    feeds it (the shared pages' workers) must not keep that pipe open."""
    import multiprocessing as mp

    from newsroom.build_search import let_go, open_indexer

    indexer = open_indexer()
    try:
        stdin, stdout = indexer.pipes
        queue = mp.get_context("fork").SimpleQueue()

        def look() -> None:
            queue.put([os.readlink(f"/proc/self/fd/{fd}") for fd in (stdin, stdout)])

        child = mp.get_context("fork").Process(target=look)
        child.start()
        child.join(30)
        assert queue.get() == [os.devnull, os.devnull]
        assert os.readlink(f"/proc/self/fd/{stdin}").startswith("pipe:")  # the parent's stays
    finally:
        indexer.kill()
        let_go(indexer)


def test_a_number_pagefind_held_and_another_pipe_now_holds_is_left_alone_in_a_child() -> None:
    """Once Pagefind has ended its descriptor numbers are free, and a process
    pool's own pipes may take them before the build forgets them: a worker
    forked then must keep those pipes (pointed at /dev/null, the pool's
    first worker read EOF from its call queue and the build failed)."""
    import multiprocessing as mp

    from newsroom.build_search import let_go, open_indexer

    indexer = open_indexer()
    stdin, _stdout = indexer.pipes
    indexer.close()  # its input closed, Pagefind ends: the number is free
    r, w = os.pipe()
    os.dup2(w, stdin)  # another pipe takes the number, as a pool's own may
    try:
        queue = mp.get_context("fork").SimpleQueue()

        def look() -> None:
            queue.put(os.readlink(f"/proc/self/fd/{stdin}"))

        child = mp.get_context("fork").Process(target=look)
        child.start()
        child.join(30)
        assert queue.get().startswith("pipe:")
    finally:
        let_go(indexer)
        for fd in {stdin, r, w}:
            os.close(fd)


def test_the_pages_of_one_month_are_rendered_by_one_worker_month_after_month() -> None:
    """Each entry's card is then rendered once (the archive's month page, its
    topics' and its kind's list the same entries), and work stays balanced."""
    from chalicelib.core.site import Page

    pages = {}
    for month in ("2024/01", "2024/02", "2024/03", "2025/07"):
        group = tuple(range(10 if month != "2025/07" else 30))
        pages[f"archive/{month}/index.html"] = Page("archive_month", (group,))
        pages[f"topics/water/{month}/index.html"] = Page("topic_month", (group,))
        pages[f"kinds/statement/{month}/index.html"] = Page("kind_month", (group,))
    pages["feed.xml"] = Page("feed", (tuple(range(20)),))
    pages["404.html"] = Page("404", ())
    groups = build._balanced(pages, 2)
    assert sorted(k for g in groups for k in g) == sorted(pages)
    for month in ("2024/01", "2024/02", "2024/03", "2025/07"):
        holding = [i for i, g in enumerate(groups) if any(f"/{month}/" in k for k in g)]
        assert len(holding) == 1, month
    for g in groups:  # month after month within a worker
        months = [k.split("/")[-3] + k.split("/")[-2] for k in g if k.endswith("/index.html")]
        assert months == sorted(months)
    loads = [sum(1 + sum(len(a) for a in pages[k].args) for k in g) for g in groups]
    assert max(loads) - min(loads) <= 33  # the largest month's pages: one unit
