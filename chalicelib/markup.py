"""Release bodies -> safe HTML, and plain text for excerpts.

Markdown is CommonMark (markdown-it-py's ``commonmark`` preset, plus tables and
strikethrough). Whatever the source format, the HTML then goes through nh3 with
an allow-list: no scripts, styles, event handlers, iframes or forms, and only
https/http/mailto/tel or site-relative URLs.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol",
    "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "q": {"cite"},
    "blockquote": {"cite"},
}
URL_SCHEMES = {"https", "http", "mailto", "tel"}


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"typographer": False}).enable(["table", "strikethrough"])


def _demote_h1(source_html: str) -> str:
    # the page title is the only <h1>; body headings start at <h2>
    return re.sub(r"<(/?)h1(\s|>)", r"<\1h2\2", source_html)


def sanitize(fragment: str) -> str:
    return nh3.clean(
        _demote_h1(fragment),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def body_html(body: str, body_format: str) -> str:
    raw = _md().render(body) if body_format == "markdown" else body
    return sanitize(raw)


def plain_text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    text = nh3.clean(fragment.replace("<", " <"), tags=set())
    return " ".join(html.unescape(text).split())
