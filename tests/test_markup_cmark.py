"""cmark-gfm rendering: CommonMark semantics kept, sanitizing kept, no native leak."""

from __future__ import annotations

import resource

import pytest

from chalicelib.core import markup

markdown_it = pytest.importorskip("markdown_it")


def _reference(body: str) -> str:
    md = markdown_it.MarkdownIt("commonmark", {"typographer": False})
    return markup.sanitize(md.enable(["table", "strikethrough"]).render(body))


@pytest.mark.parametrize(
    "body",
    [
        "## Heading\n\nSome *em* and **strong**, a [link](https://example.org/a?b=1&c=2).\n",
        "- one\n- two\n\n1. first\n2. second\n",
        "> quoted\n>\n> — Someone\n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "```\ncode <x>\n```\n\n    indented\n",
        "# Title becomes h2\n\nSetext\n===\n",
        "&copy; &amp; <https://example.org/é> line  \nbreak\n",
    ],
)
def test_same_sanitized_html_as_commonmark_reference(body: str) -> None:
    assert markup.body_html(body, "markdown").strip() == _reference(body).strip()


def test_raw_html_still_sanitized() -> None:
    out = markup.body_html('<script>alert(1)</script>\n\n<b onclick="x()">hi</b>', "markdown")
    assert "<script" not in out and "onclick" not in out and "<b>hi</b>" in out


def test_strikethrough_needs_double_tilde() -> None:
    assert markup.body_html("a ~~b~~ ~c~", "markdown") == "<p>a <del>b</del> ~c~</p>\n"


def test_markdown_html_frees_native_memory() -> None:
    body = "## Heading\n\n" + "A paragraph with a [link](https://example.org/x) and *em*. " * 400
    for _ in range(50):
        markup.markdown_html(body)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(1000):  # ~100 MB of tree and output if either leaked
        markup.markdown_html(body)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 10 * 1024
