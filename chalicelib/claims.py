"""Claims of new slugs, outside the head.

A release page may only be written under a slug its source holds, or no
other file could be refused with "the one published first keeps it". A slug
the committed state gives to nobody is *claimed* first: ``state/claims/<slug>.json``
created only if absent (``IfNoneMatch``), naming the source and the
convergence. Of two batches claiming one new slug, exactly one creates it;
the other is refused naming that source. A claim is written instead of a
conditional write of the head, so claiming costs a batch no window in which
another batch's commit makes it lose.

- The claim's first page is written only if absent too: a holder that
  committed just before the claim was created (its claim already gone) has
  its page there, so the write fails and the attempt reads the head again.
  A page found with no holder behind it is a stray (an invocation that died)
  and the claim's holder overwrites it.
- The commit deletes the convergence's claims (with its replaced objects);
  from then on the committed entry holds the slug. A claimed page the
  commit does not publish (the file changed its slug meanwhile) becomes a
  withdrawal in the commit, and goes as withdrawals go.
- An invocation that dies leaves its claim: the queue's next delivery of the
  same file takes it over; the sweep turns every claim it finds into a
  withdrawal in the head (as claims were recorded before) and converges its
  source: the release is published, or its page taken down; the commit of
  that convergence ends the claim (until then a file that read the head
  before the withdrawal still finds the slug claimed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from .core.index import Withdrawal
from .errors import PreconditionFailed, SlugConflict, StorageError
from .keys import CLAIMS_PREFIX, HEAD_KEY, PRIVATE_CACHE, claim_key
from .state import Draft, Snapshot, StaleState
from .storage import Storage
from .transition import Targets, with_withdrawal
from .writing import Change


@dataclass
class Claim:
    """A claim this convergence holds."""

    source_key: str
    written: bool = False  # its page may have been written: the commit must account for it
    occupied: bool = False  # a page was there already: the next attempt overwrites it


HELD, REFUSED, RACED = "held", "refused", "raced"


def rebuild_intent(rebuild_id: str) -> str:
    """The claimant a rebuild's claims name (``rebuild.chunk``, ended by its commit)."""
    return f"rebuild:{rebuild_id}"


def end_claims(storage: Storage, slugs: list[str], intent: str) -> None:
    """Delete the claims of ``slugs`` that still name ``intent`` (one taken
    over since belongs to the batch that took it)."""
    for slug in slugs:
        obj = storage.get(claim_key(slug))
        if obj is None or json.loads(obj.body).get("intent") != intent:
            continue
        try:
            storage.delete(claim_key(slug), if_match=obj.etag)
        except PreconditionFailed:
            pass


def take_claim(
    storage: Storage, slug: str, source_key: str, intent: str, now: datetime
) -> tuple[str, str]:
    """Create the claim of ``slug`` (only if absent). A claim of the same
    source, or of this convergence, is taken over (written again on its
    ETag). Returns ``(HELD, "")``, ``(REFUSED, holder's source key)`` or
    ``(RACED, "")`` (the claim changed under us: the attempt starts over)."""
    key = claim_key(slug)
    body = json.dumps(
        {"source_key": source_key, "intent": intent, "at": now.isoformat()},
        separators=(",", ":"),
    ).encode()
    opts = {"content_type": "application/json", "cache_control": PRIVATE_CACHE}
    try:
        storage.put(key, body, if_none_match=True, **opts)  # type: ignore[arg-type]
        return HELD, ""
    except PreconditionFailed:
        pass
    current = storage.get(key)
    if current is None:
        return RACED, ""
    doc = json.loads(current.body)
    if doc.get("source_key") != source_key and doc.get("intent") != intent:
        return REFUSED, str(doc.get("source_key", ""))
    try:
        storage.put(key, body, if_match=current.etag, **opts)  # type: ignore[arg-type]
    except PreconditionFailed:
        return RACED, ""
    return HELD, ""


class Claiming:
    """The publisher's slug claims (a part of ``Publisher``; its attributes are set there)."""

    def _claim(
        self,
        claims: list[Withdrawal],
        targets: Targets,
        conflicts: dict[str, SlugConflict],
        old: Draft,
        change: Change,
    ) -> bool:
        """Claim the free slugs ``claims`` (``transition.claim_slugs``), all
        at once; those this convergence holds already are kept. A refused key
        keeps its live version (``targets`` and ``conflicts`` are changed in
        place). ``False``: a claim raced, the attempt starts over."""
        held: dict[str, Claim] = change.claims
        todo: list[Withdrawal] = []
        for w in claims:
            mine = held.get(w.slug)
            if mine is None:
                todo.append(w)
            elif mine.source_key != w.source_key:
                # another key of this batch claimed it in an earlier attempt
                self._refuse(w, mine.source_key, targets, conflicts, old)
        now = self.clock()
        results = self.pool.run(
            [
                lambda w=w: take_claim(self.source, w.slug, w.source_key, change.intent, now)
                for w in todo
            ]
        )
        raced = False
        for w, (outcome, holder) in zip(todo, results, strict=True):
            if outcome == HELD:
                held[w.slug] = Claim(w.source_key)
            elif outcome == REFUSED:
                self._refuse(w, holder, targets, conflicts, old)
            else:
                raced = True
        return not raced

    @staticmethod
    def _refuse(
        w: Withdrawal,
        holder: str,
        targets: Targets,
        conflicts: dict[str, SlugConflict],
        old: Draft,
    ) -> None:
        conflicts[w.source_key] = SlugConflict(w.slug, holder, w.source_key)
        targets[w.source_key] = (old.entry_of(w.source_key), None)  # the live version stays

    def settle_claims(self, only: set[str] | None = None) -> dict[str, str]:
        """The sweep's turn of the claims it finds (an invocation that died
        between its claim and its commit, or one running now) into
        withdrawals in the head, as claims used to be recorded: the slug stays
        held, and converging the claim's source publishes the release or
        takes its page down. Returns those claims (slug: source key): they
        stay until the commit of the batch converging their source deletes
        them (``_converge``'s ``claims``), so a file that read the head
        before the withdrawal was recorded still finds the slug claimed; a
        claim deleted here, before that, let such a file claim the slug and
        write its page while the claim's own batch was live. A claim of a
        slug another file holds is only deleted (a holder committed before
        it was made: its file was refused). ``only``: the claims of these
        source keys alone (a batch that found them deleted)."""
        found: dict[str, tuple[str, str]] = {}  # slug -> (source key, claim ETag)
        for key in list(self.source.list(CLAIMS_PREFIX)):
            obj = self.source.get(key)
            if obj is not None:
                slug = key[len(CLAIMS_PREFIX) : -len(".json")]
                src = str(json.loads(obj.body).get("source_key", ""))
                if only is None or src in only:
                    found[slug] = (src, obj.etag)
        if not found:
            return {}
        others: dict[str, str] = {}  # slug -> ETag: claims of a slug another file holds
        for attempt in range(1, self.max_attempts + 1):
            others = {}
            try:
                snap = Snapshot.read(self.source)
                if snap.etag is None:
                    # no commit yet: the claims' sources converge on a first commit
                    return {slug: src for slug, (src, _e) in found.items()}
                draft = Draft(snap)
                for slug, (src, etag) in sorted(found.items()):
                    holder = draft.holder(slug)
                    if holder is None:
                        draft.withdrawing = with_withdrawal(
                            draft.withdrawing, Withdrawal(slug, src)
                        )
                        # a live batch holding the claim loses its commit to
                        # this one and reads the source again (it may be gone)
                        draft.keys.add(src)
                    elif holder != src:
                        others[slug] = etag
            except StaleState:
                self._contended(attempt)
                continue
            if draft.withdrawing == snap.head.withdrawing:
                break
            if draft.commit_head(snap.etag) is not None:
                break
            self._contended(attempt)
        else:
            raise StorageError("could not record the claims found in the state", HEAD_KEY)
        for slug, etag in others.items():
            try:
                self.source.delete(claim_key(slug), if_match=etag)
            except PreconditionFailed:
                pass  # taken over since: its batch deletes it with its commit
        return {slug: src for slug, (src, _e) in found.items() if slug not in others}

    def record_deleted(self, keys: set[str]) -> list[str]:
        """Name ``keys`` (files found deleted with nothing of them public and
        no claim in flight) in the head's log. A batch that read one of them
        before the delete and has not claimed its slug yet would otherwise
        commit the version it read (live until the next sweep); now it loses
        its commit race, reads the file again and finds it gone. One head
        write, for deletes of files never public only. Returns the keys a
        commit made public meanwhile: the caller converges them (a delete)."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                snap = Snapshot.read(self.source)
                if snap.etag is None:
                    return []  # no commit yet: a first commit reads every source afresh
                draft = Draft(snap)
                live = [k for k in sorted(keys) if draft.entry_of(k) is not None]
            except StaleState:
                self._contended(attempt)
                continue
            if live:
                return live
            draft.keys.update(keys)
            if draft.commit_head(snap.etag) is not None:
                return []
            self._contended(attempt)
        raise StorageError("could not record the deleted files in the state", HEAD_KEY)
