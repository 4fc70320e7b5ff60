"""Structured rich text from a CMS -> an HTML fragment.

Three input shapes, each a JSON tree the CMS sends instead of markup:

- Contentful Rich Text: ``{"nodeType": "document", "content": [...]}``
- Sanity Portable Text: ``[{"_type": "block", "style": ..., "children": [...]}, ...]``
- Strapi blocks: ``[{"type": "paragraph", "children": [{"type": "text", ...}]}, ...]``

The converters escape every piece of text and every attribute, and emit only tags
that ``chalicelib.core.markup`` allows; whatever they produce is sanitized again like
any other body. Images inside the rich text become ``<figure>`` elements pointing
at the CMS's asset URL (its public CDN), resolved by the CMS module's own image
rules (``image_url``); nodes that point at content the webhook does not carry
(embedded entries, an asset known only by its id) are left out, their text kept.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

ImageUrl = Callable[[Any], "str | None"]


def _no_image(_: Any) -> str | None:
    return None


def figure(url: str | None, alt: Any = "", caption: Any = None) -> str:
    """A figure for an image inside rich text; nothing when its URL is unknown."""
    if not url:
        return ""
    alt_text = escape(str(alt or ""), quote=True)
    cap = f"<figcaption>{_text(caption)}</figcaption>" if _text(caption) else ""
    return f'<figure><img src="{escape(url, quote=True)}" alt="{alt_text}">{cap}</figure>'


def _text(value: Any) -> str:
    """Escaped text; a line break the editor typed (Shift+Enter) becomes ``<br>``.
    Anything but text (a ``null`` the CMS left in a text node) is no text, never
    the word "None"."""
    if not isinstance(value, str):
        return ""
    return escape(value, quote=True).replace("\n", "<br>")


def _href(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return escape(value.strip(), quote=True)


def _link(href: Any, inner: str) -> str:
    url = _href(href)
    return f'<a href="{url}">{inner}</a>' if url else inner


# ----------------------------------------------------------------- Contentful
_CF_BLOCKS = {
    "paragraph": "p",
    "heading-1": "h1",
    "heading-2": "h2",
    "heading-3": "h3",
    "heading-4": "h4",
    "heading-5": "h5",
    "heading-6": "h6",
    "ordered-list": "ol",
    "unordered-list": "ul",
    "list-item": "li",
    "blockquote": "blockquote",
    "table-row": "tr",
    "table-cell": "td",
    "table-header-cell": "th",
}
_CF_MARKS = {
    "bold": "strong",
    "italic": "em",
    "underline": "u",
    "code": "code",
    "superscript": "sup",
    "subscript": "sub",
    "strikethrough": "s",
}
# links and embeds the webhook payload cannot resolve (it carries only their ids)
_CF_UNRESOLVED_EMBEDS = {
    "embedded-entry-block",
    "embedded-asset-block",
    "embedded-resource-block",
    "embedded-entry-inline",
    "embedded-resource-inline",
}


def _one_locale(value: Any) -> Any:
    """A resolved asset's field: a value, or a value per locale (the first)."""
    if isinstance(value, dict):
        return next((v for v in value.values() if isinstance(v, str)), None)
    return value


def is_contentful_document(value: Any) -> bool:
    return isinstance(value, dict) and value.get("nodeType") == "document"


def _nodes_html(
    nodes: Any, node_html: Callable[[dict[str, Any], ImageUrl], str], image_url: ImageUrl
) -> str:
    """The HTML of a list of a rich-text tree's nodes (either CMS's); anything
    that is not a list, or not a node, is nothing."""
    if not isinstance(nodes, list):
        return ""
    return "".join(node_html(node, image_url) for node in nodes if isinstance(node, dict))


def contentful_to_html(document: dict[str, Any], image_url: ImageUrl = _no_image) -> str:
    return _cf_children(document, image_url)


def _cf_children(node: dict[str, Any], image_url: ImageUrl) -> str:
    return _nodes_html(node.get("content"), _cf_node, image_url)


def _cf_node(node: dict[str, Any], image_url: ImageUrl) -> str:
    kind = node.get("nodeType")
    if kind == "text":
        out = _text(node.get("value", ""))
        marks = node.get("marks")
        for mark in marks if isinstance(marks, list) else []:
            tag = _CF_MARKS.get(mark.get("type") if isinstance(mark, dict) else None)
            if tag:
                out = f"<{tag}>{out}</{tag}>"
        return out
    if kind == "hr":
        return "<hr>"
    if kind == "embedded-asset-block":
        data = node.get("data")
        target = data.get("target") if isinstance(data, dict) else None
        fields = target.get("fields") if isinstance(target, dict) else None
        fields = fields if isinstance(fields, dict) else {}
        alt = _one_locale(fields.get("description")) or _one_locale(fields.get("title"))
        return figure(image_url(target), alt)
    if kind in _CF_UNRESOLVED_EMBEDS:
        return ""
    inner = _cf_children(node, image_url)
    if kind == "hyperlink":
        data = node.get("data")
        return _link(data.get("uri") if isinstance(data, dict) else None, inner)
    if kind == "table":
        return f"<table><tbody>{inner}</tbody></table>"
    tag = _CF_BLOCKS.get(kind)  # type: ignore[arg-type]
    if tag:
        return f"<{tag}>{inner}</{tag}>"
    # entry-hyperlink, asset-hyperlink, resource-hyperlink, document, unknown: text only
    return inner


# -------------------------------------------------------------- Portable Text
_PT_STYLES = {
    "normal": "p",
    "h1": "h1",
    "h2": "h2",
    "h3": "h3",
    "h4": "h4",
    "h5": "h5",
    "h6": "h6",
    "blockquote": "blockquote",
}
_PT_DECORATORS = {
    "strong": "strong",
    "em": "em",
    "code": "code",
    "underline": "u",
    "strike-through": "s",
}


def is_portable_text(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(b, dict) and "_type" in b for b in value)
    )


def _pt_inline(block: dict[str, Any]) -> str:
    defs = {
        d.get("_key"): d
        for d in block.get("markDefs") or []
        if isinstance(d, dict) and d.get("_key")
    }
    out = []
    for child in block.get("children") or []:
        if not isinstance(child, dict) or child.get("_type") != "span":
            continue  # inline objects need the studio's own renderer
        html = _text(child.get("text", ""))
        for mark in child.get("marks") or []:
            if mark in _PT_DECORATORS:
                tag = _PT_DECORATORS[mark]
                html = f"<{tag}>{html}</{tag}>"
            elif isinstance(defs.get(mark), dict) and defs[mark].get("_type") == "link":
                html = _link(defs[mark].get("href"), html)
        out.append(html)
    return "".join(out)


def portable_text_to_html(blocks: list[Any], image_url: ImageUrl = _no_image) -> str:
    out: list[str] = []
    lists: list[tuple[str, int]] = []  # open lists: (tag, level), innermost last

    def close_lists(above: int = 0) -> None:
        while lists and lists[-1][1] > above:
            out.append(f"</li></{lists.pop()[0]}>")

    for block in blocks:
        if not isinstance(block, dict) or block.get("_type") != "block":
            close_lists()
            if isinstance(block, dict) and block.get("_type") == "image":
                out.append(figure(image_url(block), block.get("alt"), block.get("caption")))
            continue  # custom objects: not carried as markup
        item = block.get("listItem")
        if item:
            tag = "ol" if item == "number" else "ul"
            level = block.get("level")
            level = level if isinstance(level, int) and level > 0 else 1
            close_lists(level)
            if lists and lists[-1][1] == level:
                if lists[-1][0] == tag:
                    out.append("</li>")
                else:
                    close_lists(level - 1)
            if not lists or lists[-1][1] < level:
                out.append(f"<{tag}>")
                lists.append((tag, level))
            out.append(f"<li>{_pt_inline(block)}")
            continue
        close_lists()
        tag = _PT_STYLES.get(block.get("style") or "normal", "p")
        out.append(f"<{tag}>{_pt_inline(block)}</{tag}>")
    close_lists()
    return "".join(out)


# -------------------------------------------------------------- Strapi blocks
_ST_MARKS = (
    ("bold", "strong"),
    ("italic", "em"),
    ("underline", "u"),
    ("strikethrough", "s"),
    ("code", "code"),
)


def is_strapi_blocks(value: Any) -> bool:
    # every block has a "type"; most have "children", an image block may not
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in value)
        and any("children" in b or b.get("type") == "image" for b in value)
    )


def strapi_blocks_to_html(blocks: list[Any], image_url: ImageUrl = _no_image) -> str:
    return _nodes_html(blocks, _st_node, image_url)


def _st_children(node: dict[str, Any], image_url: ImageUrl) -> str:
    return _nodes_html(node.get("children"), _st_node, image_url)


def _st_node(node: dict[str, Any], image_url: ImageUrl) -> str:
    kind = node.get("type")
    if kind == "text":
        html = _text(node.get("text", ""))
        for flag, tag in _ST_MARKS:
            if node.get(flag) is True:
                html = f"<{tag}>{html}</{tag}>"
        return html
    if kind == "image":
        media = node.get("image")
        media = media if isinstance(media, dict) else {}
        return figure(image_url(media), media.get("alternativeText"), media.get("caption"))
    inner = _st_children(node, image_url)
    if kind == "link":
        return _link(node.get("url"), inner)
    if kind == "paragraph":
        return f"<p>{inner}</p>"
    if kind == "heading":
        level = node.get("level")
        level = level if isinstance(level, int) and 1 <= level <= 6 else 2
        return f"<h{level}>{inner}</h{level}>"
    if kind == "list":
        tag = "ol" if node.get("format") == "ordered" else "ul"
        return f"<{tag}>{inner}</{tag}>"
    if kind == "list-item":
        return f"<li>{inner}</li>"
    if kind == "quote":
        return f"<blockquote>{inner}</blockquote>"
    if kind == "code":
        return f"<pre><code>{inner}</code></pre>"
    return ""  # unknown blocks


def to_html(value: Any, image_url: ImageUrl = _no_image) -> str | None:
    """HTML for a structured rich-text value, or ``None`` if it is not one."""
    if is_contentful_document(value):
        return contentful_to_html(value, image_url)
    if is_portable_text(value):
        return portable_text_to_html(value, image_url)
    if is_strapi_blocks(value):
        return strapi_blocks_to_html(value, image_url)
    return None
