"""Release bodies -> safe HTML, and plain text for excerpts.

Markdown is CommonMark, rendered by cmark-gfm (the CommonMark reference
implementation, compiled; via ``cmarkgfm``) with the GFM table and strikethrough
extensions (``~~text~~`` only). Raw HTML is passed through to the sanitizer, as
CommonMark specifies. Whatever the source format, the HTML then goes through nh3
with an allow-list: no scripts, styles, event handlers, iframes or forms, and
only https/http/mailto/tel or site-relative URLs.

cmark-gfm was chosen over markdown-it-py on measurement (``python -m bench``,
docs/performance.md): about 20 times faster on a 600-word release, with the
same sanitized HTML on the benchmark corpus and the sample releases.
"""

from __future__ import annotations

import ctypes
import functools
import html
import re

import nh3
from cmarkgfm import _cmark
from cmarkgfm.cmark import Options

from .text import xml_safe

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


# SMART: typographic quotes, dashes and ellipses, as readers expect in print
_CMARK_OPTIONS = (
    Options.CMARK_OPT_UNSAFE
    | Options.CMARK_OPT_STRIKETHROUGH_DOUBLE_TILDE
    | Options.CMARK_OPT_SMART
)
_lib, _ffi = _cmark.lib, _cmark.ffi
_lib.cmark_gfm_core_extensions_ensure_registered()
_EXTENSIONS = [_lib.cmark_find_syntax_extension(name) for name in (b"table", b"strikethrough")]
# cmarkgfm's own wrappers never free the document tree nor the returned string
# (about 50 KB a call: a full build grew by gigabytes), so we free both here,
# with cmark's exported cmark_node_free and the C library's free (cmark's
# default allocator).
_node_free = ctypes.CDLL(_cmark.__file__).cmark_node_free
_node_free.argtypes = [ctypes.c_void_p]
_node_free.restype = None
_c_free = ctypes.CDLL(None).free
_c_free.argtypes = [ctypes.c_void_p]
_c_free.restype = None


def _address(pointer: object) -> int:
    return int(_ffi.cast("uintptr_t", pointer))


def markdown_html(body: str) -> str:
    """CommonMark (+ tables, ``~~strikethrough~~``) to unsanitized HTML."""
    data = body.encode("utf-8")
    parser = _lib.cmark_parser_new(_CMARK_OPTIONS)
    try:
        for extension in _EXTENSIONS:
            _lib.cmark_parser_attach_syntax_extension(parser, extension)
        _lib.cmark_parser_feed(parser, data, len(data))
        root = _lib.cmark_parser_finish(parser)
        try:
            raw = _lib.cmark_render_html(
                root, _CMARK_OPTIONS, _lib.cmark_parser_get_syntax_extensions(parser)
            )
            try:
                # cmark-gfm writes a reference to U+FFFE or U+FFFF (``&#xFFFE;``)
                # as bytes that are not UTF-8; they must not crash the render
                return _ffi.string(raw).decode("utf-8", "replace")
            finally:
                _c_free(_address(raw))
        finally:
            _node_free(_address(root))
    finally:
        _lib.cmark_parser_free(parser)


def _demote_h1(source_html: str) -> str:
    # the page title is the only <h1>; body headings start at <h2>
    return re.sub(r"<(/?)h1(\s|>)", r"<\1h2\2", source_html)


# one sanitizer, built once: ``nh3.clean`` builds its allow-lists again on
# every call (two fifths of its time on a 600-word body); same output
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitize(fragment: str) -> str:
    return _CLEANER.clean(_demote_h1(fragment))


@functools.lru_cache(maxsize=4)
def body_html(body: str, body_format: str) -> str:
    """Safe HTML of a body. Cached for the few latest bodies: a build makes a
    release's page and then its search record from the same body."""
    raw = markdown_html(body) if body_format == "markdown" else body
    clean = sanitize(raw)
    # The model refuses characters XML forbids written as such; a character
    # reference (``&#8;``) is the one way to smuggle one in, and the excerpt
    # would carry it into every feed, so such a body is cleaned.
    return xml_safe(clean) if "&#" in body else clean


# a tag as the sanitizer writes it: it escapes every other "<" and ">"
_TAG = re.compile(r"<[^>]*>")


def plain_text(fragment: str) -> str:
    """Visible text of a *sanitized* HTML fragment (what ``sanitize`` and
    ``body_html`` give), whitespace collapsed, each tag a word break.

    No second nh3 pass: the sanitizer's output is serialized HTML (every
    ``<`` and ``>`` in text and attribute values escaped, no comments,
    scripts or styles), so removing its tags and decoding its few entities
    gives the text a parser would, at about two thirds of the cost: the same
    text as ``nh3.clean(tags=set())`` on every release of the build anchor's
    corpus and the samples, and ``tests/test_markup_text.py`` keeps checking
    it on generated bodies."""
    text = _TAG.sub(" ", fragment)
    return " ".join((html.unescape(text) if "&" in text else text).split())


_HEADING = re.compile(r"<h([1-6])\b[^>]*>.*?</h\1\s*>", re.IGNORECASE | re.DOTALL)


def excerpt_source(fragment: str) -> str:
    """The running text an excerpt is cut from: the body without its headings
    (so a card reads "The permit…", not "What the court decided The permit…");
    a body that is nothing but headings keeps them."""
    return plain_text(_HEADING.sub(" ", fragment)) or plain_text(fragment)
