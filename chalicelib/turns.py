"""A turn for a batch that keeps losing the commit race: a priority written
into the head, never what correctness rests on (the commit stays
conditional; a dead holder's turn expires)."""

from __future__ import annotations

import logging
import time

from .errors import StorageError
from .state import Draft, Snapshot
from .writing import Change

log = logging.getLogger("newsroom.publisher")

TURN_AFTER = 4  # lost races after which a batch takes a turn
TURN_S = 30.0  # how long a turn holds at most (its holder commits long before)


class Turns:
    """The publisher's turns (a part of ``Publisher``; its attributes are set there)."""

    def _turn_of_another(self, change: Change) -> float:
        """Seconds left of another batch's turn (0: none, or ours). A head
        read between attempts, only once this batch has read one showing a
        turn (``change.turn_seen``)."""
        if not change.turn_seen:
            return 0.0
        turn = Snapshot.read(self.source).head.turn
        left = 0.0 if turn is None or turn[0] == change.intent else turn[1] - time.time()
        if left <= 0:
            change.turn_seen = False
        return max(0.0, left)

    def _take_turn(self, snap: Snapshot, change: Change) -> Snapshot | None:
        """A batch that lost the race more than ``TURN_AFTER`` times takes a
        turn: a conditional write of the head naming it, for at most
        ``TURN_S`` seconds, ended by its commit. Every other batch waits for
        it before its next attempt, so the batch that keeps losing makes
        progress. A turn is only a priority: correctness never depends on it
        (the commit stays conditional), and the turn of a batch that died
        expires. Returns the head naming it, or ``None`` (the head changed:
        this attempt lost)."""
        draft = Draft(snap)
        draft.turn = (change.intent, time.time() + TURN_S)
        etag = draft.commit_head(snap.etag)
        if etag is None:
            return None
        change.turn_held = True
        log.info("turn_taken", extra={"attempts": change.attempts})
        return snap.with_head(draft.committed_head, etag)  # type: ignore[arg-type]

    def _release_turn(self, change: Change) -> None:
        """End this batch's turn if its commit did not (it gave up, failed,
        or found nothing to commit); best effort: a turn expires anyway."""
        if not change.turn_held:
            return
        change.turn_held = False
        for _ in range(3):
            try:
                draft = Draft(Snapshot.read(self.source))
                if draft.turn is None or draft.turn[0] != change.intent:
                    return
                draft.turn = None
                if draft.commit_head(draft.snap.etag) is not None:
                    return
            except StorageError:
                return
