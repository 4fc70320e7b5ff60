"""Rich text converters: Contentful Rich Text, Portable Text, Strapi blocks -> HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.core.markup import ALLOWED_TAGS, sanitize
from chalicelib.hooks import richtext


def cf_text(value: str, *marks: str) -> dict[str, Any]:
    return {"nodeType": "text", "value": value, "marks": [{"type": m} for m in marks], "data": {}}


def cf(node_type: str, *content: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"nodeType": node_type, "data": data, "content": list(content)}


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    return cf("document", *content)


def tags(html: str) -> set[str]:
    return set(re.findall(r"</?([a-z0-9]+)", html))


@pytest.mark.parametrize(
    "node, html",
    [
        (cf("paragraph", cf_text("plain")), "<p>plain</p>"),
        (cf("heading-3", cf_text("Head")), "<h3>Head</h3>"),
        (
            cf("paragraph", cf_text("b", "bold"), cf_text("i", "italic")),
            "<p><strong>b</strong><em>i</em></p>",
        ),
        (cf("paragraph", cf_text("x", "bold", "code")), "<p><code><strong>x</strong></code></p>"),
        (
            cf("paragraph", cf_text("s", "superscript", "strikethrough")),
            "<p><s><sup>s</sup></s></p>",
        ),
        (
            cf("paragraph", cf_text("u", "underline"), cf_text("?", "unknown-mark")),
            "<p><u>u</u>?</p>",
        ),
        (
            cf("ordered-list", cf("list-item", cf("paragraph", cf_text("one")))),
            "<ol><li><p>one</p></li></ol>",
        ),
        (cf("blockquote", cf("paragraph", cf_text("q"))), "<blockquote><p>q</p></blockquote>"),
        (cf("hr"), "<hr>"),
        (
            cf(
                "table",
                cf(
                    "table-row",
                    cf("table-header-cell", cf("paragraph", cf_text("h"))),
                    cf("table-cell", cf("paragraph", cf_text("d"))),
                ),
            ),
            "<table><tbody><tr><th><p>h</p></th><td><p>d</p></td></tr></tbody></table>",
        ),
        (
            cf("paragraph", cf("hyperlink", cf_text("site"), uri="https://a.example/?a=1&b=2")),
            '<p><a href="https://a.example/?a=1&amp;b=2">site</a></p>',
        ),
        # links and embeds the payload cannot resolve: text kept, embed dropped
        (
            cf("paragraph", cf("entry-hyperlink", cf_text("other entry"), target={})),
            "<p>other entry</p>",
        ),
        (cf("embedded-entry-block", target={}), ""),
        (cf("paragraph", cf_text("a"), cf("embedded-entry-inline", target={})), "<p>a</p>"),
        (cf("paragraph", cf_text("line one\nline two")), "<p>line one<br>line two</p>"),
        (cf("mystery-node", cf_text("kept")), "kept"),
    ],
)
def test_contentful_nodes(node: dict[str, Any], html: str) -> None:
    assert richtext.contentful_to_html(doc(node)) == html


def test_contentful_text_is_escaped_and_links_sanitized() -> None:
    out = richtext.to_html(
        doc(
            cf("paragraph", cf_text('<script>alert("x")</script> & "quotes"')),
            cf(
                "paragraph",
                cf("hyperlink", cf_text("click"), uri='javascript:alert(1)" onclick="x'),
            ),
        )
    )
    assert out is not None
    assert "<script" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in out
    clean = sanitize(out)
    assert "javascript" not in clean and "onclick" not in clean
    assert "click" in clean


def pt_block(text: str, style: str = "normal", **extra: Any) -> dict[str, Any]:
    marks = extra.pop("marks", [])
    return {
        "_type": "block",
        "style": style,
        "markDefs": extra.pop("markDefs", []),
        "children": [{"_type": "span", "text": text, "marks": marks}],
        **extra,
    }


def test_portable_text_blocks_and_marks() -> None:
    blocks = [
        pt_block("Title", "h1"),
        pt_block("quote", "blockquote"),
        pt_block("bold", marks=["strong", "em"]),
        pt_block(
            "link",
            marks=["k1"],
            markDefs=[{"_key": "k1", "_type": "link", "href": "https://x.example"}],
        ),
        pt_block("odd style", "fancy"),
        pt_block("<b>not markup</b>", marks=["strike-through", "underline", "code"]),
        {"_type": "image", "asset": {"_ref": "image-abc-1x1-png"}},
    ]
    assert richtext.portable_text_to_html(blocks) == (
        "<h1>Title</h1><blockquote>quote</blockquote><p><em><strong>bold</strong></em></p>"
        '<p><a href="https://x.example">link</a></p><p>odd style</p>'
        "<p><code><u><s>&lt;b&gt;not markup&lt;/b&gt;</s></u></code></p>"
    )


def test_portable_text_lists_group_and_nest() -> None:
    blocks = [
        pt_block("intro"),
        pt_block("a", listItem="bullet", level=1),
        pt_block("a.1", listItem="number", level=2),
        pt_block("a.2", listItem="number", level=2),
        pt_block("b", listItem="bullet", level=1),
        pt_block("1", listItem="number", level=1),
        pt_block("after"),
    ]
    assert richtext.portable_text_to_html(blocks) == (
        "<p>intro</p>"
        "<ul><li>a<ol><li>a.1</li><li>a.2</li></ol></li><li>b</li></ul>"
        "<ol><li>1</li></ol>"
        "<p>after</p>"
    )


def test_strapi_blocks() -> None:
    blocks = [
        {"type": "heading", "level": 3, "children": [{"type": "text", "text": "H"}]},
        {
            "type": "list",
            "format": "ordered",
            "children": [
                {"type": "list-item", "children": [{"type": "text", "text": "x", "italic": True}]}
            ],
        },
        {"type": "quote", "children": [{"type": "text", "text": "q"}]},
        {"type": "code", "children": [{"type": "text", "text": "a < b"}]},
        {
            "type": "paragraph",
            "children": [
                {
                    "type": "link",
                    "url": "https://s.example",
                    "children": [{"type": "text", "text": "l"}],
                }
            ],
        },
        {
            "type": "image",
            "image": {"url": "/uploads/x.png"},
            "children": [{"type": "text", "text": ""}],
        },
    ]
    assert richtext.strapi_blocks_to_html(blocks) == (
        "<h3>H</h3><ol><li><em>x</em></li></ol><blockquote>q</blockquote>"
        '<pre><code>a &lt; b</code></pre><p><a href="https://s.example">l</a></p>'
    )


@pytest.mark.parametrize(
    "value, kind",
    [
        (doc(cf("paragraph", cf_text("x"))), "contentful"),
        ([pt_block("x")], "portable"),
        ([{"type": "paragraph", "children": []}], "strapi"),
        ("## markdown", None),
        ([], None),
        (["just", "strings"], None),
        ({"nodeType": "paragraph"}, None),
    ],
)
def test_shape_detection(value: Any, kind: str | None) -> None:
    html = richtext.to_html(value)
    assert (html is not None) == (kind is not None)


def test_converters_emit_only_allowed_tags() -> None:
    everything = doc(
        *[cf(t, cf_text("x")) for t in ("paragraph", "heading-1", "heading-6", "blockquote")],
        cf(
            "unordered-list",
            cf(
                "list-item",
                cf(
                    "paragraph",
                    cf_text(
                        "x",
                        "bold",
                        "italic",
                        "underline",
                        "code",
                        "superscript",
                        "subscript",
                        "strikethrough",
                    ),
                ),
            ),
        ),
        cf("hr"),
        cf("table", cf("table-row", cf("table-cell", cf("paragraph", cf_text("x"))))),
    )
    html = richtext.contentful_to_html(everything)
    assert tags(html) <= ALLOWED_TAGS | {"h1"}  # h1 is demoted to h2 by sanitize
    pt = richtext.portable_text_to_html(
        [
            pt_block("x", s, marks=["strong", "em", "code", "underline", "strike-through"])
            for s in ("normal", "h1", "h6", "blockquote")
        ]
        + [pt_block("x", listItem="number"), pt_block("y", listItem="bullet", level=2)]
    )
    assert tags(pt) <= ALLOWED_TAGS | {"h1"}


def test_a_text_node_without_text_adds_no_text() -> None:
    """A ``null`` (or an object) where the CMS should have put text is no text:
    never "None" or a Python repr on the page."""
    empty = {**cf_text(""), "value": None}
    assert richtext.contentful_to_html(doc(cf("paragraph", empty, cf_text("a")))) == "<p>a</p>"
    span = {"_type": "span", "text": None, "marks": []}
    assert richtext.portable_text_to_html([{**pt_block("b"), "children": [span]}]) == "<p></p>"
    strapi = [{"type": "paragraph", "children": [{"type": "text", "text": None}]}]
    assert richtext.strapi_blocks_to_html(strapi) == "<p></p>"
    caption = richtext.figure("https://x.example/a.png", "alt", {"en": "caption"})
    assert caption == '<figure><img src="https://x.example/a.png" alt="alt"></figure>'
