"""``plain_text`` reads the sanitizer's own output without a second nh3 pass:
it must give exactly the text nh3 gives when it strips every tag."""

from __future__ import annotations

import html

import nh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.markup import _HEADING, body_html, excerpt_source, plain_text, sanitize


def by_nh3(fragment: str) -> str:
    """The reference: a second nh3 pass that keeps no tag."""
    return " ".join(html.unescape(nh3.clean(fragment.replace("<", " <"), tags=set())).split())


@pytest.mark.parametrize(
    "raw",
    [
        "<p>a &amp; b &lt;c&gt; &nbsp; d</p><p>e&quot;f</p>",
        '<a href="/x" title="a > b &quot;q&quot;">link</a>text',
        '<p>x<br>y</p><img alt="q>r" src="/s.png">z',
        "<p>caf&eacute; &#8217;quoted&#8217; &#x1F600; &#128;</p>",
        "<h2>What the court decided</h2><p>The permit <em>is</em> void.</p>",
        "<ul><li>one</li><li>two<ol><li>three</li></ol></li></ul><pre>a\n  b</pre>",
        "<!-- a comment --><script>alert(1)</script><style>p{}</style>kept",
        '<table><tr><td title="<td>">cell</td></tr></table>',
    ],
)
def test_the_text_of_sanitized_html_is_what_nh3_gives(raw: str) -> None:
    fragment = sanitize(raw)
    assert plain_text(fragment) == by_nh3(fragment)


_PIECES = st.sampled_from(
    ["<", ">", "&", '"', "'", "&amp;", "&lt;", "&#62;", "&nbsp;", "&eacute;", "\n", " ", "*",
     "_", "`", "[a](/b)", "<b>", "</b>", "<a href='/x' title='1>2'>", "</a>", "<br>",
     "<!--", "-->", "<img alt=\"a>b\" src=/c>", "# ", "> ", "word", "été", "مرحبا"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.sampled_from(["markdown", "html"]))
def test_any_body_gives_the_same_text_as_a_second_nh3_pass(body: str, body_format: str) -> None:
    fragment = body_html(body, body_format)
    assert plain_text(fragment) == by_nh3(fragment)
    assert excerpt_source(fragment) == (by_nh3(_HEADING.sub(" ", fragment)) or by_nh3(fragment))
