"""Jinja2 filters the templates use: small pure functions of one value."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from markupsafe import Markup

from .text import xml_safe


def rfc3339(moment: datetime) -> str:
    return moment.isoformat()


def json_for_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/ld+json">``: no ``</script>``,
    no ``<!--``, no raw ``&`` — the HTML parser sees only inert characters."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    # json escapes control characters; a surrogate, U+FFFE or U+FFFF would be
    # written as such (all three are outside ASCII)
    return Markup(text if text.isascii() else xml_safe(text))


def tel(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit() or c == "+")


def media_type(url: str) -> str:
    dot = url.rfind(".")
    ext = url[dot:].lower() if dot >= 0 else ""
    return {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp",
            ".avif": "image/avif", ".svg": "image/svg+xml"}.get(ext, "image/jpeg")  # fmt: skip


def news_language(tag: str) -> str:
    # Google News wants ISO 639 codes; zh-cn / zh-tw are the documented exceptions
    low = tag.lower()
    return low if low in ("zh-cn", "zh-tw") else low.split("-")[0]
