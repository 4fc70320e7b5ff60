"""Files refused a slug another file holds: recorded, and handed the slug when it is freed."""

from __future__ import annotations

import json
import logging

from .keys import (
    PRIVATE_CACHE,
    waiting_key,
)

log = logging.getLogger("newsroom.publisher")


class Waiting:
    """The publisher's waiting (a part of ``Publisher``; its attributes are set there)."""

    def waiting(self, slug: str) -> list[str]:
        """Source keys refused ``slug`` while another file held it."""
        obj = self.source.get(waiting_key(slug))
        return list(json.loads(obj.body).get("waiting", [])) if obj else []

    def _wait_for(self, slug: str, source_key: str) -> None:
        waiting = self.waiting(slug)
        if source_key not in waiting:
            body = json.dumps({"slug": slug, "waiting": sorted([*waiting, source_key])})
            self.source.put(
                waiting_key(slug),
                body.encode(),
                content_type="application/json",
                cache_control=PRIVATE_CACHE,
            )

    def _hand_over(self, freed: list[str]) -> list[str]:
        """Claimants of slugs this batch freed: they get their turn now."""
        out: list[str] = []
        for slug in freed:
            claimants = self.waiting(slug)
            if claimants:
                self.source.delete(waiting_key(slug))
                out.extend(claimants)
        return out
