"""What the publisher tells the rest of the product after it commits.

The publish queue has one writer (the publisher). Features that follow the
public site (the search corpus, e-mail alerts, staff previews) do not read the
public bucket to find out what changed: the writer hands them the outcome of
each commit. They are plain callbacks (no signal framework), wired in
``service.py``.

Delivery is at least once: the writer records what it has to announce in the
state it commits and drains it after the commit, so a crash between the commit
and a listener is repeated by the next batch or sweep. Listeners must therefore
be idempotent (the alert sender deduplicates per release and subscriber; the
search corpus is rewritten per month).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Published:
    """A release that is public after the commit (new or updated)."""

    source_key: str
    release: Any  # chalicelib.core.model.Release (Any to keep this module import-free)
    entry: dict[str, Any]  # its public index entry (contract section 4 fields)
    first_time: bool  # True only when it was not public before this commit


@dataclass(frozen=True)
class Withdrawn:
    """A release whose page left the public site in this commit."""

    source_key: str
    slug: str
    month: str  # yyyy-mm of its published_at, in its own offset


@dataclass(frozen=True)
class Commit:
    published: list[Published] = field(default_factory=list)
    withdrawn: list[Withdrawn] = field(default_factory=list)


class CommitListener(Protocol):
    def on_commit(self, commit: Commit) -> None: ...


class PreviewStore(Protocol):
    """Private previews of scheduled releases (contract section 3).

    ``put`` stores (or replaces) the preview page of a scheduled release and
    returns its presigned HTTPS URL; ``remove`` deletes it when the release goes
    public or its source is deleted. Both are idempotent.
    """

    def put(
        self, source_key: str, release: Any, publish_at: datetime, versions: tuple = ()
    ) -> str: ...

    def remove(self, source_key: str) -> None: ...
