"""The search bundle of ``newsroom build``, indexed while the pages render.

Pagefind is the largest single cost of a build with search, and it is one
process at a time (its memory is bounded by one piece: ``chalicelib.search.
pieces``). Started only once every page was rendered, it ran alone on one core
while the other had nothing left to do. So the build guesses each source's
piece before it renders anything (``piece_hints``: the month and slug read
from the source's bytes), renders the sources piece by piece, and a thread
feeds each piece's search documents to Pagefind, in URL order, as the workers
hand them back: Pagefind indexes the first piece while the workers render the
next ones.

The guess is only an order of work. Once the index is built the parent hands
over the real pieces (``finalize``); a piece whose documents, order or name
differ from what was fed (a scheduled release in a month near a piece's
limit, a contested slug, a slug that is not the file name) is indexed again
from the real list, and a guessed piece that does not exist is dropped. So the
bundle is always the one ``chalicelib.search.build_bundle`` gives for the
same records and month counts, byte for byte.

A build into a folder that already holds a build does not index a piece again
when what Pagefind would be given is what it was given last time, and the
piece's files are still there as that build left them (a digest of their
names and sizes). A document is made from its source's bytes by the code
(the theme's fingerprint covers the renderer's, with the Pagefind binary and
the search package's), so a piece's inputs are digested from its URLs and
source digests in order, without making a document; an unchanged source's
document is made (from its file, in the thread) only when its piece is indexed
again. Those digests are the build's private state, kept beside the folder
(``newsroom.cli``), never in it. Pagefind was most of a no-op build's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from chalicelib.keys import release_path

Doc = tuple[str, int, int]  # where a search document is: (file, offset, length)

_MONTH = re.compile(rb'"published_at"\s*:\s*"(\d{4}-\d{2})-')
_SLUG = re.compile(rb'"slug"\s*:\s*"([a-z0-9]+(?:-[a-z0-9]+)*)"')


# The pipes of the running Pagefind. A worker forked while it runs (the shared
# pages' workers are forked while the thread feeds Pagefind) must not keep the
# write end of its input open: Pagefind ends only when its input closes. In
# the child they are pointed at /dev/null (not closed: the objects that own
# the numbers may still close them). Each is remembered with the pipe it was
# (device and inode): once Pagefind has ended its numbers may be reused, by a
# process pool's own pipes for one, before ``let_go`` forgets them, and a
# child must not blind those. The lock keeps a fork from falling between
# starting Pagefind and recording its pipes.
_PIPES: set[tuple[int, int, int]] = set()
_PIPES_LOCK = threading.Lock()


def _forget_pipes_in_child() -> None:
    _PIPES_LOCK.release()
    null = os.open(os.devnull, os.O_RDWR)
    for fd, dev, ino in _PIPES:
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (dev, ino):
                os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)
    _PIPES.clear()


os.register_at_fork(
    before=_PIPES_LOCK.acquire,
    after_in_parent=_PIPES_LOCK.release,
    after_in_child=_forget_pipes_in_child,
)


def _identified(fds: Iterable[int]) -> set[tuple[int, int, int]]:
    """Each open descriptor of ``fds`` with the device and inode of its pipe."""
    out = set()
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        out.add((fd, st.st_dev, st.st_ino))
    return out


def open_indexer() -> Any:
    """A Pagefind index (``chalicelib.search.bundle.Indexer``) whose pipes no
    process forked from now on holds; ``let_go`` once it has ended."""
    from chalicelib.search.indexer import Indexer

    with _PIPES_LOCK:
        indexer = Indexer()
        indexer.identified = _identified(indexer.pipes)
        _PIPES.update(indexer.identified)
    return indexer


def let_go(indexer: Any) -> None:
    """``indexer`` has ended: its descriptor numbers may be reused."""
    with _PIPES_LOCK:
        _PIPES.difference_update(indexer.identified)


def piece_hints(files: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``{source key: (piece, url)}`` guessed from each file's bytes without
    parsing it (a file that cannot be read or guessed is left out). Only an
    order of work: ``SearchPieces.finalize`` checks it against the index."""
    from chalicelib.search.pieces import pieces_of

    found: dict[str, tuple[str, str]] = {}
    counts: dict[str, int] = {}
    for key, path in files:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        month = _MONTH.search(raw)
        if month is None:
            continue
        slug = _SLUG.search(raw)
        name = key.rsplit("/", 1)[-1][: -len(".json")] if key.lower().endswith(".json") else ""
        m = month.group(1).decode()
        found[key] = (m, release_path(slug.group(1).decode() if slug else name))
        counts[m] = counts.get(m, 0) + 1
    of = pieces_of(counts)
    return {key: (of.get(m, m[:4]), url) for key, (m, url) in found.items()}


class _OffPlan(Exception):
    """The documents of a planned piece do not arrive in URL order."""


def _salt() -> bytes:
    """What shapes a piece's files besides its documents: the Pagefind binary
    (its size and time) and the code that makes its output canonical."""
    from chalicelib import search
    from chalicelib.core.render import files_digest
    from chalicelib.search.indexer import executable

    st = os.stat(executable())
    code = files_digest(Path(search.__file__).parent, "*.py")
    return f"{st.st_size}:{st.st_mtime_ns}:{code}\n".encode()


def files_digest(folder: str) -> str:
    """The names and sizes of the files under ``folder`` (a piece as a build
    left it): a file removed, added or rewritten to another size changes it."""
    found = []
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            found.append(f"{os.path.relpath(path, folder)}\0{os.path.getsize(path)}")
    return hashlib.sha256("\n".join(sorted(found)).encode()).hexdigest() if found else ""


class SearchPieces:
    """The search bundle of a build, in pieces, made in a thread: each piece's
    documents, in URL order, go to one Pagefind process, which writes the
    piece and ends before the next one starts.

    ``planned`` (``{piece: [(url, source key)]}``, from ``piece_hints``) are
    indexed as the documents ``arrive``; ``finalize`` gives the real pieces
    (``{piece: [(url, doc)]}``) once the index is built, and the thread then
    indexes what the plan got wrong. In a fresh folder Pagefind writes each
    piece in place (``folder`` is the site's ``pagefind/``) and its runtime
    files move to the top; otherwise it writes into a scratch folder, whose
    files are compared with the site's."""

    def __init__(
        self,
        folder: str,
        fresh: bool,
        planned: Mapping[str, list[tuple[str, str]]] | None = None,
        *,
        site: str | None = None,
        previous: Mapping[str, Mapping[str, str]] | None = None,
        theme: str = "",
    ) -> None:
        self.folder = folder
        self.fresh = fresh
        self.planned = {p: sorted(items) for p, items in (planned or {}).items() if items}
        # the site's own pagefind/ folder and, per piece, the digests of what
        # the build that wrote it was given and left (``state``): a piece
        # whose both still hold is kept as it is, not indexed again
        self.site = site
        self.previous = dict(previous or {}) if site else {}
        self.theme = theme
        self._salt: bytes | None = None
        self.inputs: dict[str, str] = {}  # piece -> digest of the documents it holds
        self.digests: dict[Doc, str] = {}  # document -> its source's digest
        # documents not made yet: (source key, source file, summary) each
        self.lazy: dict[Doc, tuple[str, str, str]] = {}
        self.kept: list[str] = []  # bundle keys left as they are in the site
        self.reused = 0  # pieces kept, not indexed again
        self._arrived: dict[str, tuple[str, Doc] | None] = {}  # None: it will not come
        self._closed = False  # every source has been rendered
        self._final: dict[str, list[tuple[str, Doc]]] | None = None
        self._cond = threading.Condition()
        self.fed: dict[str, list[tuple[str, Doc]]] = {}  # what each indexed piece holds
        self.out: list[tuple[str, str | None, bytes | None]] = []  # key, file, bytes
        self.entries: dict[str, dict[str, Any]] = {}
        self.topics: dict[str, list[str]] = {}
        self.runtime: dict[str, str] = {}  # key -> file
        self.again = 0  # pieces indexed a second time (the plan was wrong)
        self.failed: list[BaseException] = []
        self.indexer: Any = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="pagefind-pieces", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # the parent's side --------------------------------------------------------
    def arrive(self, key: str, url: str, doc: Doc | None, digest: str = "") -> None:
        """The source ``key`` was rendered: its page is at ``url``, its search
        document at ``doc`` (None: it has none, e.g. it is scheduled), made
        from source bytes whose digest is ``digest``."""
        with self._cond:
            if doc is not None and digest:
                self.digests[doc] = digest
            self._arrived[key] = None if doc is None else (url, doc)
            self._cond.notify_all()

    def from_source(self, key: str, path: str, summary: str) -> Doc:
        """The search document of an unchanged source, to be made from its
        file (with the ``summary`` its entry keeps) only if its piece is
        indexed again."""
        doc = (path, -1, 0)
        self.lazy[doc] = (key, path, summary)
        return doc

    def close(self) -> None:
        """Every source was rendered: a planned one that did not arrive never will."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def finalize(self, final: Mapping[str, list[tuple[str, Doc]]]) -> None:
        """The real pieces, from the index: ``{piece: [(url, doc)]}``."""
        with self._cond:
            self._closed = True
            self._final = {p: sorted(items) for p, items in final.items() if items}
            self._cond.notify_all()

    def state(self) -> dict[str, dict[str, str]]:
        """``{piece: {"inputs": digest, "files": digest}}`` of the bundle now in
        the site (once ``finish`` is done and its files are written): what the
        next build compares with (``previous``)."""
        if self.site is None or self._salt is None:
            return {}
        return {
            piece: {"inputs": digest, "files": files_digest(os.path.join(self.site, piece))}
            for piece, digest in sorted(self.inputs.items())
            if piece in self.entries
        }

    def finish(self) -> Iterator[tuple[str, bytes | None]]:
        """The bundle's files: ``(key, None)`` for one already in place."""
        self.thread.join()
        if self.failed:
            raise self.failed[0]
        for key, path, body in self.out:
            if body is None and path is not None:
                with open(path, "rb") as fh:
                    body = fh.read()
            yield key, body

    def drop(self) -> None:
        """Stop (the build failed): a Pagefind still running ends at once."""
        with self._cond:
            self.stopped = True
            self._closed = True
            self._cond.notify_all()
        indexer = self.indexer
        if indexer is not None:
            indexer.kill()
            let_go(indexer)

    # the thread's side --------------------------------------------------------
    def _run(self) -> None:
        try:
            self._build()
        except BaseException as exc:  # noqa: BLE001 - raised again by finish()
            self.failed.append(exc)

    def _planned_docs(self, items: list[tuple[str, str]]) -> Iterator[tuple[str, Doc]]:
        last = ""
        for _url, key in items:
            with self._cond:
                self._cond.wait_for(lambda k=key: k in self._arrived or self._closed)
                got = self._arrived.get(key)
            if got is not None:
                if got[0] <= last:  # a slug guessed wrong: the piece is out of URL order
                    raise _OffPlan
                last = got[0]
                yield got

    def _build(self) -> None:
        from chalicelib.search.pieces import shell

        os.makedirs(self.folder, exist_ok=True)
        for piece in sorted(self.planned):
            if self.stopped:
                return
            try:
                self._index(piece, self._planned_docs(self.planned[piece]))
            except _OffPlan:
                pass  # indexed from the real list once the index is built
        with self._cond:
            self._cond.wait_for(lambda: self._final is not None or self.stopped)
        if self.stopped or self._final is None:
            return
        final = self._final
        for piece in sorted(self.fed):
            if final.get(piece) != self.fed[piece]:
                self._forget(piece)
        for piece in sorted(final):
            if piece not in self.fed:
                self.again += piece in self.planned
                self._index(piece, iter(final[piece]))
        if self.stopped:
            return
        top, needed = shell(self.entries, self.topics)
        self.out.extend((k, None, v) for k, v in sorted(top.items()))
        for key in needed:
            if key in self.runtime:
                path = self.runtime.pop(key)
                self.out.append((key, None if self.fresh else path, None))
            elif self.site and os.path.isfile(os.path.join(self.site, key[len(_prefix()) :])):
                # every piece kept: the runtime of the same Pagefind stays too
                self.kept.append(key)
        for path in self.runtime.values():  # runtime files no piece needs
            os.unlink(path)

    def _index(self, piece: str, docs: Iterator[tuple[str, Doc]]) -> None:
        """One piece: its documents to one Pagefind, which writes it; then its
        files sorted into the bundle (runtime to the top, three made canonical)."""
        from chalicelib.search.bundle import (
            _UNUSED,
            ENTRY_NAME,
            PREFIX,
            _canonical,
            is_runtime,
            piece_prefix,
        )
        from chalicelib.search.pieces import piece_topics

        fed: list[tuple[str, Doc]] = []
        files: dict[str, int] = {}  # documents file -> descriptor

        def read(doc: Doc) -> bytes:
            if doc in self.lazy:
                return _document_from_source(*self.lazy[doc])
            path, offset, length = doc
            if path not in files:
                files[path] = os.open(path, os.O_RDONLY)
            return os.pread(files[path], length, offset)

        def framed(url: str, doc: Doc) -> bytes:
            # what the document is made from, or (no source digest) the document
            source = self.digests.get(doc)
            return _framed(url, source.encode() if source else b"\1" + read(doc))

        if self._salt is None:
            self._salt = _salt() + self.theme.encode()
        digest = hashlib.sha256(self._salt)
        source: Iterable[tuple[str, Doc]] = docs
        try:
            if piece in self.previous:
                # every document's source first: a piece given what it was
                # given last time, whose files are still there, is kept as it is
                items = list(docs)
                for url, doc in items:
                    digest.update(framed(url, doc))
                if digest.hexdigest() == self.previous[piece].get("inputs") and self._keep(
                    piece, self.previous[piece]
                ):
                    self.fed[piece] = items
                    self.inputs[piece] = digest.hexdigest()
                    self.reused += 1
                    return
                digest = hashlib.sha256(self._salt)
                source = items
            for url, doc in source:
                if self.stopped:
                    return
                if self.indexer is None:
                    self.indexer = open_indexer()
                digest.update(framed(url, doc))
                self.indexer.add(url, read(doc).decode("utf-8"))
                fed.append((url, doc))
        except BaseException:
            if self.indexer is not None:
                self.indexer.kill()
                let_go(self.indexer)
                self.indexer = None
            raise
        finally:
            for fd in files.values():
                os.close(fd)
        if self.indexer is None:  # no document came: no piece
            self.fed[piece] = fed
            return
        out = os.path.join(self.folder, piece)
        try:
            self.indexer.write(out)
        finally:
            let_go(self.indexer)
            self.indexer = None
        self.fed[piece] = fed
        self.inputs[piece] = digest.hexdigest()
        prefix = piece_prefix(piece)
        rewritten: dict[str, bytes] = {}
        for dirpath, _dirs, names in os.walk(out):
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, out).replace(os.sep, "/")
                if rel.startswith(_UNUSED):
                    os.unlink(path)
                elif is_runtime(rel):
                    top = os.path.join(self.folder, rel)
                    os.replace(path, top)  # the same bytes from every piece
                    self.runtime[PREFIX + rel] = top
                elif rel.startswith("filter/") or rel.endswith(".pf_meta") or rel == ENTRY_NAME:
                    with open(path, "rb") as fh:
                        rewritten[prefix + rel] = fh.read()
                    os.unlink(path)  # its canonical form is written in its place
                else:
                    self.out.append((prefix + rel, None if self.fresh else path, None))
        canonical = _canonical(rewritten, prefix)
        self.entries[piece] = json.loads(canonical[prefix + ENTRY_NAME])
        self.topics[piece] = piece_topics(canonical, piece)
        self.out.extend((k, None, v) for k, v in sorted(canonical.items()))

    def _keep(self, piece: str, previous: Mapping[str, str]) -> bool:
        """Take the piece as the site holds it, if its files are the ones the
        last build left (their names and sizes): its keys and records."""
        from chalicelib.search.bundle import ENTRY_NAME, piece_prefix
        from chalicelib.search.pieces import piece_topics

        assert self.site is not None
        folder = os.path.join(self.site, piece)
        if not previous.get("files") or files_digest(folder) != previous["files"]:
            return False
        prefix = piece_prefix(piece)
        keys: list[str] = []
        canonical: dict[str, bytes] = {}
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                keys.append(prefix + rel)
                if rel.startswith("filter/") or rel.endswith(".pf_meta") or rel == ENTRY_NAME:
                    with open(path, "rb") as fh:
                        canonical[prefix + rel] = fh.read()
        if prefix + ENTRY_NAME not in canonical:
            return False
        self.entries[piece] = json.loads(canonical[prefix + ENTRY_NAME])
        self.topics[piece] = piece_topics(canonical, piece)
        self.kept.extend(sorted(keys))
        return True

    def _forget(self, piece: str) -> None:
        """Undo a piece indexed (or kept) from a wrong plan: its files and its records."""
        from chalicelib.search.bundle import piece_prefix

        prefix = piece_prefix(piece)
        self.out = [o for o in self.out if not o[0].startswith(prefix)]
        self.kept = [k for k in self.kept if not k.startswith(prefix)]
        self.entries.pop(piece, None)
        self.topics.pop(piece, None)
        self.inputs.pop(piece, None)
        del self.fed[piece]
        shutil.rmtree(os.path.join(self.folder, piece), ignore_errors=True)


def _prefix() -> str:
    from chalicelib.search.bundle import PREFIX

    return PREFIX


def _document_from_source(key: str, path: str, summary: str) -> bytes:
    """The search document of an unchanged source, as a worker makes it."""
    from chalicelib.core.model import parse_release
    from chalicelib.search.records import document, record

    with open(path, "rb") as fh:
        release = parse_release(fh.read(), name=key)
    return document(record(release, summary)).encode("utf-8")


def _framed(url: str, body: bytes) -> bytes:
    """One document as the digest of a piece's inputs takes it (unambiguous)."""
    head = url.encode("utf-8")
    return len(head).to_bytes(4, "big") + head + len(body).to_bytes(8, "big") + body
