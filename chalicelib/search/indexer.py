"""One Pagefind index, fed over the binary's service mode.

The Pagefind binary (PyPI ``pagefind[bin]`` locally, the search layer in
Lambda) runs as ``pagefind --service``; documents go to it over a pipe as a
stream: no document is written to disk, and the order Pagefind numbers its
pages in comes from the caller, never from a folder listing (its folder mode
takes pages in directory order, which differs from one file system to the
next). Pagefind's own Python API polls for each answer every 0.1 s, so
``Indexer`` speaks the same protocol itself, without waiting between requests.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from typing import Any


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
