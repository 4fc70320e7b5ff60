"""The plan and render step of one attempt: which shared pages (front page,
listings, feeds, sitemaps, ``index.json``) a batch's change rewrites or
deletes, and their bytes.

Only the page groups the change touches are planned (``core.site``), before
and after the change; a page is rewritten when its inputs changed *and* its
bytes did (a body edit changes the entry, not the front page), so an
unchanged page costs a render, never a request. Renderings are kept: within a
convergence (a lost race plans again; most pages' inputs are the same) and
across the batches of one instance (the old version a batch compares against
is often the new one the batch before rendered).
"""

from __future__ import annotations

from .core.site import (
    Groups,
    Page,
    changed_keys,
    plan,
    plan_groups,
    render_page,
    shows_other_releases,
)
from .state import Draft
from .storage import md5_etag
from .writing import Change, SharedWrites, rank, step

RENDERED_KEPT = 2000  # shared pages whose last rendering an instance keeps (a few MB)


def _neighbours(groups: Groups, old: Draft, new: Draft) -> None:
    """A month that appears or goes changes its neighbours' earlier/later links."""
    before = [m for m, _n in old.months]
    after = [m for m, _n in new.months]
    for month in set(before) ^ set(after):
        months = after if month in after else before
        i = months.index(month)
        groups.months.update(months[j] for j in (i - 1, i + 1) if 0 <= j < len(months))


class SharedPages:
    """The publisher's plan and render step (a part of ``Publisher``; its attributes are set there)."""

    def _plan_shared(
        self,
        old: Draft,
        new: Draft,
        groups: Groups,
        dirty: set[str],
        change: Change,
        *,
        first: bool,
        fresh_theme: bool,
        trusted: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> SharedWrites:
        """The shared pages to write (with their bytes) and to delete, from
        the plans of ``groups`` before and after the change. ``dirty`` keys
        (owed, or touched by an earlier attempt) are decided whatever their
        inputs: written if the new plan has them, deleted if not, except a
        ``trusted`` one (public as this convergence last left it: no commit
        since wrote it) that already is what the new plan wants."""
        renderer = self.renderer
        _neighbours(groups, old, new)
        if groups.everything:
            old_plan: dict[str, Page] = {} if first else plan(old, renderer)
            new_plan = plan(new, renderer)
        else:
            old_plan = plan_groups(old, renderer, groups)
            new_plan = plan_groups(new, renderer, groups)
        write, obsolete = changed_keys(old_plan if fresh_theme else {}, new_plan)
        # pages new to the site before pages that change: nothing links to a
        # new page (a month's neighbours, a topic's index) until those change
        to_write = sorted(
            (set(write) | dirty) & new_plan.keys(),
            key=lambda k: (step(k, k in old_plan), k),
        )
        to_delete = sorted(
            (set(obsolete) | (dirty - new_plan.keys())) - new_plan.keys(),
            key=lambda k: (rank(k), k),
            reverse=True,
        )
        to_delete = [k for k in to_delete if not (k in trusted and change.shared[k] is None)]
        bodies: dict[str, bytes] = {}
        # listings of one month show the same entries: each card is rendered
        # once for all of them (and for the old and new version of a page),
        # and kept for this instance's next batch
        with renderer.sharing_cards(keep=True):
            for key in to_write:
                # inputs changed but the bytes may not have: the public object
                # was rendered from old_plan under this theme, so compare bytes,
                # no I/O (the old version first: it is often the one the last
                # batch rendered), unless the two list other releases
                before = None
                if (
                    key not in dirty
                    and key in old_plan
                    and fresh_theme
                    and not shows_other_releases(old_plan[key], new_plan[key])
                ):
                    before = self._render(key, old_plan[key], change)
                body = self._render(key, new_plan[key], change)
                if body == before or (key in trusted and change.shared[key] == md5_etag(body)):
                    continue
                bodies[key] = body
        return SharedWrites(bodies, to_delete, set(old_plan), set(new_plan))

    def _render(self, key: str, page: Page, change: Change) -> bytes:
        """A shared page's bytes, rendered once per convergence and kept for
        the next batch of this instance (module docstring)."""
        for seen, body in change.rendered.get(key, ()):
            if seen == page:
                return body
        last = self._last_rendered.get(key)
        if last is not None and last[0] == page:
            body = last[1]
        else:
            body = render_page(key, page, self.renderer)
        change.rendered.setdefault(key, []).append((page, body))
        self._last_rendered[key] = (page, body)
        self._last_rendered.move_to_end(key)
        while len(self._last_rendered) > RENDERED_KEPT:
            self._last_rendered.popitem(last=False)
        return body
