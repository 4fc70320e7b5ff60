"""Small pure text helpers shared by the model and the renderer."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def topic_slug(name: str) -> str:
    """NFKD, accents dropped, lower-cased, runs of other characters -> one '-'."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub("-", ascii_only).strip("-")


def display_date(moment: datetime) -> str:
    """``December 19, 2018`` in the offset staff wrote, independent of locale."""
    return f"{moment:%B} {moment.day}, {moment.year}"


def display_instant(moment: datetime) -> str:
    """``December 19, 2018, 22:30 UTC-05:00``: a date, a time and the offset
    staff wrote, so nobody has to guess which zone an embargo lifts in."""
    offset = moment.utcoffset()
    zone = "UTC"
    if offset:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes > 0 else "-"
        hours, rest = divmod(abs(minutes), 60)
        zone += f"{sign}{hours:02d}:{rest:02d}"
    return f"{display_date(moment)}, {moment:%H:%M} {zone}"


def excerpt(text: str, words: int = 60) -> str:
    """About ``words`` words of plain text, cut at a word boundary, ending with '…'."""
    parts = text.split()
    if len(parts) <= words:
        return " ".join(parts)
    cut = " ".join(parts[:words]).rstrip(" ,;:.-–—")
    return cut + "…"
