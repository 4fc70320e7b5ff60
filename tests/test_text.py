"""Topic slugs, display dates and excerpts."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.core.text import display_date, excerpt, topic_slug


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Refugees and Migrants", "refugees-and-migrants"),
        ("Côte d'Ivoire", "cote-d-ivoire"),
        ("  LGBTQ+ Rights!  ", "lgbtq-rights"),
        ("Ærø — Île", "r-ile"),
        ("2030 Agenda", "2030-agenda"),
        # a letter that is no accented Latin letter is a character other than
        # a-z0-9 like any other: it separates, it does not vanish
        ("Straße", "stra-e"),
        ("Wrocław", "wroc-aw"),
        ("Encyclopædia", "encyclop-dia"),
        ("İstanbul", "istanbul"),
        ("ﬁnance ½", "finance-1-2"),
    ],
)
def test_topic_slug(name: str, slug: str) -> None:
    assert topic_slug(name) == slug


def test_display_date_uses_the_written_offset() -> None:
    assert display_date(datetime.fromisoformat("2018-12-19T22:30:00-05:00")) == "December 19, 2018"
    assert display_date(datetime.fromisoformat("2018-12-20T03:30:00+00:00")) == "December 20, 2018"
    assert display_date(datetime.fromisoformat("2019-01-05T00:00:00+01:00")) == "January 5, 2019"


def test_excerpt_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    out = excerpt(text)
    assert out.endswith("…")
    assert out[:-1].split() == [f"word{i}" for i in range(60)]


def test_short_text_is_not_cut() -> None:
    assert excerpt("Just a few   words.") == "Just a few words."


def test_a_text_written_without_spaces_is_cut_too() -> None:
    # Chinese and Japanese write no spaces between words: each of their
    # characters counts as a word (as Hugo counts them), so the excerpt of a
    # long release is not the whole body in every listing, feed and index.json
    chinese = "沿海诊所在风暴过后重新开放。" * 400
    out = excerpt(chinese)
    assert out == chinese[:60] + "…"
    mixed = "東京で 2025 年の報告書を発表しました。" * 200
    out = excerpt(mixed)
    assert out.endswith("…") and len(out) < 120
    assert out.startswith("東京で 2025 年の報告書を発表しました。")
    # Thai and other scripts without spaces are cut by length
    thai = "โรงพยาบาลชายฝั่งเปิดทำการอีกครั้งหลังพายุ" * 300
    out = excerpt(thai)
    assert out.endswith("…") and len(out) <= 601 and thai.startswith(out[:-1])


def test_a_short_text_without_spaces_is_kept_whole() -> None:
    assert excerpt("沿海诊所重新开放。") == "沿海诊所重新开放。"
