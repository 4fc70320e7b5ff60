"""A fixed-seed generator of realistic release JSON (and the same corpus for Hugo).

Every release is about 600 words of CommonMark: an opening paragraph, two to four
``##`` sections, a bullet list, a numbered list, a block quote with an
attribution, inline links, bold and emphasis. Dates run forward from 2006 so a
10,000-release archive spans about two decades; topics come from a fixed pool
(0-3 per release), a third carry a lead image. Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

WORDS = (
    "community water coast flood relief families clinic rights court ruling report "
    "campaign volunteers council funding safety climate housing shelter workers union "
    "children school health access survey evidence policy minister agency budget "
    "storm season harbour river drought emergency response partners data findings "
    "independent review public hearing petition signatures residents district region "
    "government commitment transparent accountable urgent support national local "
    "investment repair infrastructure supply monitoring results progress delay plan "
    "protection displaced migrants refugees asylum detention rescue ship crew sea"
).split()
HEADINGS = (
    "What happened", "Why it matters", "Our demands", "The evidence", "Background",
    "What comes next", "Key findings", "Reactions", "How we worked", "Numbers at a glance",
)  # fmt: skip
TOPICS = (
    "Clean Water", "Climate", "Human Rights", "Coastal Communities", "Refugees and Migrants",
    "Côte d'Ivoire", "Health", "Housing", "Education", "Labour", "Floods", "Drought",
    "Courts", "Funding", "Youth", "Oceans", "Energy", "Food Security", "Cities", "Elections",
    "Transparency", "Disaster Relief", "Sanitation", "Indigenous Rights", "Gender Equality",
    "Press Freedom", "Migration Policy", "Fisheries", "Wetlands", "Public Health",
)  # fmt: skip
KINDS = ("press-release", "report", "statement", "campaign-update", "victory")
NAMES = ("Ada Ode", "Mara Quint", "Aminata Koné", "Jonas Rieger", "Lena Park", "Tomás Silva")
SITE_URL = "https://news.example.org"
START = datetime(2006, 1, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
SPAN_DAYS = 20 * 365


def _sentence(rng: random.Random, lo: int = 8, hi: int = 18) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.35:
        i = rng.randrange(len(words))
        words[i] = f"[{words[i]}](https://example.org/{rng.choice(WORDS)}/{rng.randint(1, 999)})"
    if rng.random() < 0.25:
        i = rng.randrange(len(words))
        words[i] = f"**{words[i]}**"
    if rng.random() < 0.15:
        i = rng.randrange(len(words))
        words[i] = f"*{words[i]}*"
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: tuple[int, int] = (3, 5)) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(*sentences)))


def body(rng: random.Random, words: int = 600) -> str:
    """About ``words`` words of Markdown with headings, lists, a quote and links."""
    parts = [_paragraph(rng)]
    headings = rng.sample(HEADINGS, rng.randint(2, 4))
    for n, heading in enumerate(headings):
        parts.append(f"## {heading}")
        parts.append(_paragraph(rng))
        if n == 0:
            parts.append("\n".join(f"- {_sentence(rng, 5, 12)}" for _ in range(rng.randint(3, 5))))
        elif n == 1:
            parts.append(
                "\n".join(f"{i}. {_sentence(rng, 6, 14)}" for i in range(1, rng.randint(3, 5)))
            )
            parts.append(f"> {_paragraph(rng, (1, 2))}\n>\n> — {rng.choice(NAMES)}, spokesperson")
    text = "\n\n".join(parts)
    while len(text.split()) < words:
        text += "\n\n" + _paragraph(rng)
    return text + "\n"


def release(i: int, n: int, rng: random.Random, *, topics: int | None = None) -> dict[str, Any]:
    """Release number ``i`` of ``n`` (dates spread evenly over two decades)."""
    offset = timedelta(days=SPAN_DAYS * i / max(n, 1), minutes=rng.randint(0, 600))
    published = START + offset
    title_words = [rng.choice(WORDS) for _ in range(rng.randint(5, 11))]
    k = topics if topics is not None else rng.choice((0, 1, 1, 2, 2, 3))
    doc: dict[str, Any] = {
        "slug": f"release-{i:06d}",
        "title": " ".join(title_words).capitalize(),
        "kind": rng.choice(KINDS),
        "published_at": published.isoformat(),
        "body": body(rng),
        "topics": rng.sample(TOPICS, k),
        "contacts": [
            {
                "name": rng.choice(NAMES),
                "email": "press@harborlight.example",
                "phone": "+1 555 0100",
            }
        ],
    }
    if rng.random() < 0.5:
        doc["summary"] = _sentence(rng, 15, 30)
    if rng.random() < 0.33:
        doc["image"] = {
            "url": f"https://images.example.org/{i}.jpg",
            "alt": "A photo for release " + str(i),
            "caption": _sentence(rng, 5, 10),
            "credit": "Harbor Light Alliance",
        }
    return doc


def generate(n: int, seed: int = 20181219) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [release(i, n, rng) for i in range(n)]


def write_sources(docs: list[dict[str, Any]], folder: Path) -> Path:
    """``folder/releases/<slug>.json`` for every document (the bucket layout)."""
    out = folder / "releases"
    out.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (out / f"{doc['slug']}.json").write_bytes(
            json.dumps(doc, ensure_ascii=False, indent=1).encode()
        )
    return folder


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


HUGO_CONFIG = """\
baseURL = "{site_url}/"
title = "Newsroom"
languageCode = "en"
paginate = 12
rssLimit = 20
disableKinds = ["taxonomy", "term"]
[outputs]
  home = ["HTML", "RSS"]
  section = ["HTML", "RSS"]
[markup.goldmark.renderer]
  unsafe = false
"""
HUGO_BASEOF = """\
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }} | {{ .Site.Title }}</title>
<link rel="alternate" type="application/rss+xml" href="/index.xml"></head>
<body><header><a href="/">{{ .Site.Title }}</a></header><main>{{ block "main" . }}{{ end }}</main></body></html>
"""
HUGO_SINGLE = """\
{{ define "main" }}<article><p>{{ .Params.kind_label }}</p><h1>{{ .Title }}</h1>
<time datetime="{{ .Date.Format "2006-01-02T15:04:05Z07:00" }}">{{ .Date.Format "January 2, 2006" }}</time>
{{ with .Params.image }}<figure><img src="{{ .url }}" alt="{{ .alt }}"><figcaption>{{ .caption }} {{ .credit }}</figcaption></figure>{{ end }}
{{ .Content }}
<ul>{{ range .Params.topics }}<li><a href="/topics/{{ . | urlize }}/">{{ . }}</a></li>{{ end }}</ul>
</article>{{ end }}
"""
HUGO_LIST = """\
{{ define "main" }}<h1>{{ .Title }}</h1>
{{ $p := .Paginate .Pages }}
{{ range $p.Pages }}<article><p>{{ .Params.kind_label }}</p><h2><a href="{{ .RelPermalink }}">{{ .Title }}</a></h2>
<p>{{ .Summary }}</p><time>{{ .Date.Format "January 2, 2006" }}</time></article>{{ end }}
{{ template "_internal/pagination.html" . }}{{ end }}
"""
HUGO_INDEX = """\
{{ define "main" }}<h1>{{ .Site.Title }}</h1>
{{ $p := .Paginate .Site.RegularPages }}
{{ range $p.Pages }}<article><p>{{ .Params.kind_label }}</p><h2><a href="{{ .RelPermalink }}">{{ .Title }}</a></h2>
<p>{{ .Summary }}</p><time>{{ .Date.Format "January 2, 2006" }}</time></article>{{ end }}
{{ template "_internal/pagination.html" . }}{{ end }}
"""
HUGO_TERMS = """\
{{ define "main" }}<h1>{{ .Title }}</h1><ul>{{ range .Data.Terms.Alphabetical }}
<li><a href="{{ .Page.RelPermalink }}">{{ .Page.Title }}</a> ({{ .Count }})</li>{{ end }}</ul>{{ end }}
"""


def write_hugo_site(docs: list[dict[str, Any]], folder: Path, site_url: str = SITE_URL) -> Path:
    """The same corpus as a Hugo site: ``content/releases/*.md`` with front matter,
    a paginated listing (home, section, terms), RSS for home/section/terms, sitemap."""
    from chalicelib.core.model import KIND_LABELS

    (folder / "content" / "releases").mkdir(parents=True, exist_ok=True)
    layouts = folder / "layouts" / "_default"
    layouts.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(HUGO_CONFIG.format(site_url=site_url))
    (layouts / "baseof.html").write_text(HUGO_BASEOF)
    (layouts / "single.html").write_text(HUGO_SINGLE)
    (layouts / "list.html").write_text(HUGO_LIST)
    (layouts / "terms.html").write_text(HUGO_TERMS)
    (folder / "layouts" / "index.html").write_text(HUGO_INDEX)
    for doc in docs:
        fm = [
            "+++",
            f"title = {_toml_str(doc['title'])}",
            f"date = {doc['published_at']}",
            f"slug = {_toml_str(doc['slug'])}",
            f"kind_label = {_toml_str(KIND_LABELS[doc['kind']])}",
            f"kinds = [{_toml_str(doc['kind'])}]",
            "topics = [" + ", ".join(_toml_str(t) for t in doc["topics"]) + "]",
        ]
        if "summary" in doc:
            fm.append(f"summary = {_toml_str(doc['summary'])}")
        if "image" in doc:
            im = doc["image"]
            fm.append("[image]")
            fm.extend(f"{k} = {_toml_str(v)}" for k, v in im.items())
        fm.append("+++")
        text = "\n".join(fm) + "\n\n" + doc["body"]
        (folder / "content" / "releases" / f"{doc['slug']}.md").write_text(text)
    return folder
