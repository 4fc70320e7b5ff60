"""The value checks the release model's fields share, and how their errors
are reported: each problem named by its field's dotted path (``image.alt``),
in a sentence a press officer understands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from ..errors import FieldError
from ..keys import PATH_SAFE
from .text import FORBIDDEN_CHARS, escape_forbidden, has_forbidden, topic_slug

# a site path staff write may be encoded already ("%") and carry a query or fragment
_SITE_PATH_SAFE = PATH_SAFE + "%?#"
_HTTPS_RE = re.compile(r"\Ahttps://[^/\\]+", re.IGNORECASE)
# The deepest a valid release nests is three (``contacts.0.name``); anything
# far deeper is refused before validation walks it.
MAX_DEPTH = 8


def fail(kind: str, message: str) -> PydanticCustomError:
    """An error pydantic reports with ``message`` under the type ``kind``."""
    return PydanticCustomError(kind, message)


def text_value(value: Any, *, field: str, max_len: int, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise fail("text_type", "must be text (a JSON string)")
    text = value.strip()
    if len(text) < min_len:
        raise fail("text_empty", "must not be empty")
    if len(text) > max_len:
        raise fail("text_long", f"must be at most {max_len} characters (it has {len(text)})")
    if FORBIDDEN_CHARS.search(text):
        raise fail("text_control", "contains control characters")
    return text


def url_value(value: Any) -> str:
    # checked as written, not trimmed: browsers drop a tab or line feed inside
    # a URL, so "/\t/evil.example" would be read as "//evil.example"
    if not isinstance(value, str):
        raise fail("url_type", "must be a URL (a JSON string)")
    url = value
    if any(c.isspace() for c in url):
        raise fail("url_space", "must not contain spaces, tabs or line breaks")
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        # a site path is kept percent-encoded: "/media/Café[1].jpg" is written
        # out as "/media/Caf%C3%A9%5B1%5D.jpg", a valid URL in HTML and XML
        # (one holding a forbidden character is reported by the model as written)
        return url if has_forbidden(url) else quote(url, safe=_SITE_PATH_SAFE)
    if _HTTPS_RE.match(url):
        return url
    raise fail(
        "url_scheme",
        "must start with https:// or be a site path starting with / "
        "(other schemes such as http:, javascript: or data: are not allowed)",
    )


def datetime_value(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        if not isinstance(value, str):
            raise fail(
                "datetime_type", "must be a date-time string such as 2018-12-19T10:00:00-05:00"
            )
        try:
            # as written, not trimmed: every format check covers the whole value
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise fail(
                "datetime_format",
                "is not a valid ISO 8601 date-time; write it like 2018-12-19T10:00:00-05:00",
            ) from None
        if "T" not in value and " " not in value:
            raise fail(
                "datetime_date_only",
                "needs a time and a UTC offset, e.g. 2018-12-19T10:00:00-05:00",
            )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise fail(
            "datetime_naive",
            "needs a UTC offset (add Z or -05:00, e.g. 2018-12-19T10:00:00-05:00)",
        )
    if parsed.utcoffset() % timedelta(minutes=1):
        # feeds and sitemaps write offsets as ±hh:mm (RFC 3339); seconds have no place there
        raise fail("datetime_offset", "needs a UTC offset in whole minutes, such as -05:00")
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        # an instant no page, feed or schedule can hold (it would crash every render)
        raise fail(
            "datetime_range", "is out of range: in UTC it must fall within the years 1 to 9999"
        ) from None
    return parsed


def topic_value(value: Any) -> str:
    text = text_value(value, field="topic", max_len=60)
    if not topic_slug(text):
        raise fail("topic", f"topic {text!r} needs at least one letter or digit")
    return text


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field; check the spelling (see the release format)",
    "string_type": "must be text (a JSON string)",
    "model_type": "must be an object with named fields",
    "model_attributes_type": "must be an object with named fields",
    "dataclass_type": "must be an object with named fields",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


def field_loc(parts: tuple[Any, ...]) -> str:
    # a field name may itself hold a forbidden character; the location must
    # still be printable text a receipt, a log line and a terminal can carry,
    # and a name that may be an e-mail address is not repeated (as in ``shown``)
    names = ("(a name holding an @)" if "@" in str(p) else str(p) for p in parts)
    return escape_forbidden(".".join(names)) or "(file)"


def _describe(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (\\u{code:04x}), half of a character whose other half is missing"
    if code < 32:
        return f"the control character U+{code:04X}"
    return f"U+{code:04X}, which is not a character"


def character_problems(data: Any, *, strings: bool = True) -> list[FieldError]:
    """Every string (and field name) holding a character no page or feed may
    carry, named by its field: a lone surrogate cannot be encoded as UTF-8 and
    XML 1.0 forbids the rest, so one of them would break every feed listing the
    release. Walks without recursion and stops at ``MAX_DEPTH``; with
    ``strings`` false it checks the depth only."""
    problems: list[FieldError] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_DEPTH:
            return [FieldError("(file)", "nests lists or objects deeper than a release can")]
        if isinstance(value, str):
            if not strings:
                continue
            found = FORBIDDEN_CHARS.search(value) if has_forbidden(value) else None
            if found:
                problems.append(
                    FieldError(
                        field_loc(path),
                        f"character {found.start() + 1} is {_describe(found.group())}; "
                        "remove it (web pages and feeds cannot carry it)",
                    )
                )
        elif isinstance(value, dict):
            items = list(value.items())
            for key, item in reversed(items):
                if isinstance(key, str) and FORBIDDEN_CHARS.search(key):
                    problems.append(
                        FieldError(
                            field_loc((*path, key)), "is a field name with a forbidden character"
                        )
                    )
                stack.append(((*path, key), item))
        elif isinstance(value, list | tuple):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))
    return problems


def field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        # the model-level validator reports on the whole object; name the field
        if err["type"] == "updated_before":
            loc = ("updated_at",)
        msg = _MESSAGES.get(err["type"], err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(FieldError(field_loc(loc), escape_forbidden(msg)))
    return out
