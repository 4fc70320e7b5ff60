"""What search knows of a release: one small record per public release.

A record holds exactly the fields readers search (title, summary, body text,
topics, kind, date) plus what a result shows, and nothing private (no source
key, no contact address). ``newsroom build`` makes records from the releases it
renders; in the Lambda path the search corpus (``corpus.py``) keeps them per
month in the source bucket, so ``update_search`` never reads release pages.

``document`` turns a record into the small HTML page Pagefind indexes: its
``<html lang>`` picks the release's per-language index, the heading weights
the title, and ``data-pagefind-*`` attributes carry the result's metadata and
the kind, topic and year filters.
"""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from ..core.i18n import locale, translations
from ..core.markup import body_html, plain_text

RECORD_FIELDS = (
    "slug",
    "url",
    "title",
    "summary",
    "text",
    "topics",
    "kind",
    "kind_label",
    "published_at",
    "date",
    "language",
)


def record(release: Any, summary: str) -> dict[str, Any]:
    """The search record of a public release (``summary``: its shown excerpt)."""
    return {
        "slug": release.slug,
        "url": release.url_path,
        "title": release.title,
        "summary": summary,
        "text": plain_text(body_html(release.body, release.body_format)),
        "topics": list(release.topics),
        "kind": release.kind,
        # shown (and searched) in the release's language, as on its page
        "kind_label": translations(release.language).gettext(release.kind_label),
        "published_at": release.published_at.isoformat(),
        "date": locale(release.language).format_date(release.published_at),
        "language": release.language,
    }


def month_of(rec: dict[str, Any]) -> str:
    """``yyyy-mm`` of the release's ``published_at`` in its own offset."""
    return rec["published_at"][:7]


def document(rec: dict[str, Any]) -> str:
    """The HTML Pagefind indexes for one record (every field escaped as text)."""
    lang = escape(rec["language"])
    topics = "".join(f'<li data-pagefind-filter="topic">{escape(t)}</li>' for t in rec["topics"])
    # an excerpt cut from the body is not indexed twice
    cut = rec["summary"].rstrip("…")
    summary = "" if rec["text"].startswith(cut) else f"<p>{escape(rec['summary'])}</p>"
    # attribute-form filters and meta take no commas: only codes go there
    return (
        f'<!doctype html><html lang="{lang}"><head><title>{escape(rec["title"])}</title></head>'
        f"<body><main data-pagefind-body>"
        f'<h1 data-pagefind-meta="title">{escape(rec["title"])}</h1>'
        f"{summary}<p>{escape(rec['text'])}</p>"
        f"<ul>{topics}</ul>"
        # last, so an excerpt shows them only when they are what matched
        f'<p><span data-pagefind-meta="kind">{escape(rec["kind_label"])}</span> '
        f'<time data-pagefind-meta="date">{escape(rec["date"])}</time></p>'
        f'<span data-pagefind-filter="kind:{escape(rec["kind"])}"></span>'
        f'<span data-pagefind-filter="year:{escape(rec["published_at"][:4])}"></span>'
        f'<span data-pagefind-meta="language:{lang}"></span>'
        f"</main></body></html>"
    )
