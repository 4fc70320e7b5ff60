"""Small pure text helpers shared by the model and the renderer."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Characters XML 1.0 forbids: C0 controls other than tab, line feed and
# carriage return; surrogates (a lone one cannot even be encoded as UTF-8);
# U+FFFE and U+FFFF. The model refuses them; outputs drop any that got through.
FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape_forbidden(text: str) -> str:
    """``text`` with each forbidden character spelled out (``\\u0008``), for messages."""
    return FORBIDDEN_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def shown(value: str) -> str:
    """A value as an error message repeats it: quoted as written (``'statement\\n'``
    shows the stray line feed), unless it may be an e-mail address, which no
    receipt, log line or webhook answer carries."""
    return "the value (not repeated: it holds an @)" if "@" in value else repr(value)


def xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 forbids replaced by U+FFFD."""
    return FORBIDDEN_CHARS.sub("\ufffd", text)


_FORBIDDEN_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13))


def has_forbidden(text: str) -> bool:
    """Whether ``text`` holds a character XML 1.0 forbids; checked on the UTF-8
    bytes, several times faster than a regular expression over the text."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return (
        len(data.translate(None, _FORBIDDEN_BYTES)) != len(data)
        or b"\xef\xbf\xbe" in data  # U+FFFE
        or b"\xef\xbf\xbf" in data  # U+FFFF
    )


def encode_xml_safe(text: str) -> bytes:
    """``text`` as UTF-8 without any character XML 1.0 forbids. Checked on the
    bytes (a byte deletion and two substring searches, several times faster
    than a regular expression over the text); only text that holds one pays
    for the replacement."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return xml_safe(text).encode("utf-8")
    if (
        len(data.translate(None, _FORBIDDEN_BYTES)) != len(data)
        or b"\xef\xbf\xbe" in data  # U+FFFE
        or b"\xef\xbf\xbf" in data  # U+FFFF
    ):
        return xml_safe(text).encode("utf-8")
    return data


def topic_slug(name: str) -> str:
    """NFKD, accents dropped, lower-cased, runs of other characters -> one '-'.

    Only the accents (combining marks) go: any other character outside a-z0-9,
    ``ß`` or ``ł`` as much as a space, separates ("Straße" -> ``stra-e``)."""
    if name.isascii():
        return _NON_ALNUM.sub("-", name.lower()).strip("-")
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _NON_ALNUM.sub("-", bare.lower()).strip("-")


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


# Han ideographs, kana and CJK punctuation are written without spaces between
# words: each one counts as a word, as Hugo counts them (Hangul has spaces)
_CJK = "\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_WORD = re.compile(f"(\\s*)([{_CJK}]|[^\\s{_CJK}]+)")
# the longest excerpt, as long as a written summary may be: a script without
# spaces and without CJK (Thai, Khmer, …) is cut by length
EXCERPT_MAX = 600


def excerpt(text: str, words: int = 60) -> str:
    """About ``words`` words of plain text, cut at a word boundary, ending with '…'."""
    out: list[str] = []
    whole = True
    for match in _WORD.finditer(text):
        if len(out) == words:
            whole = False
            break
        space, word = match.groups()
        out.append(f" {word}" if space and out else word)
    cut = "".join(out)
    if len(cut) > EXCERPT_MAX:
        end = cut.rfind(" ", 0, EXCERPT_MAX + 1)
        if end <= 0:  # no space: cut between characters, not inside one (combining marks)
            end = EXCERPT_MAX
            while end > 0 and unicodedata.category(cut[end])[0] == "M":
                end -= 1
        cut, whole = cut[:end], False
    return cut if whole else cut.rstrip(" ,;:.-–—、，。") + "…"


_DOUBLE_OPEN = re.compile(r'(^|[\s(\[{\u2014\u2013-])"')
_SINGLE_OPEN = re.compile(r"(^|[\s(\[{\u2014\u2013-])'")


def typographic(text: str) -> str:
    """Straight quotes to curly ones in plain text (“quoted”, it’s), as cmark's
    smart punctuation does for bodies: an opening quote follows a space or an
    opening bracket, every other one closes (or is an apostrophe)."""
    if '"' not in text and "'" not in text:
        return text
    text = _DOUBLE_OPEN.sub("\\1\u201c", text).replace('"', "\u201d")
    return _SINGLE_OPEN.sub("\\1\u2018", text).replace("'", "\u2019")
