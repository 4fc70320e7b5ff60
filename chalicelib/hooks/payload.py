"""A webhook's body, verified, as a JSON value: every way it can be unreadable is a 422,
and, as in an uploaded release, a name given twice in one object.

A CMS body is read further than a release file: rich text is converted to HTML by recursive
functions (``richtext.py``), so a body nested deeper than ``MAX_NESTING`` levels is refused
here, before any of them runs, instead of failing the request with a ``RecursionError`` (a 500
the CMS would retry for ever). Real entries nest a few dozen levels at most (a Contentful list
in a list is four).
"""

from __future__ import annotations

import json
from typing import Any

from ..core.fields import field_loc
from ..core.model import DuplicateKey, no_duplicate_keys
from ..errors import FieldError, InvalidRelease

MAX_NESTING = 100  # levels of lists and objects in one webhook body


def decode(raw: bytes) -> Any:
    """The JSON value of a UTF-8 body; ``InvalidRelease`` naming ``(file)`` otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unreadable(f"is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=no_duplicate_keys)
    except DuplicateKey as exc:
        # as in an uploaded file: one of the two values would be dropped unseen
        raise InvalidRelease(
            [FieldError(field_loc((str(exc),)), "appears twice in the body")]
        ) from None
    except json.JSONDecodeError as exc:
        raise _unreadable(
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _unreadable(_TOO_DEEP) from None
    except ValueError:
        # the one other thing the decoder raises: an integer of more than
        # 4,300 digits, which Python refuses to convert
        raise _unreadable("holds a number too long to read (more than 4,300 digits)") from None
    if too_deep(data):
        raise _unreadable(_TOO_DEEP)
    return data


_TOO_DEEP = f"nests lists or objects more than {MAX_NESTING} levels deep"


def too_deep(data: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``data`` nests lists or objects more than ``limit`` levels (walked
    without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _unreadable(msg: str) -> InvalidRelease:
    return InvalidRelease([FieldError("(file)", msg)])
