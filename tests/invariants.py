"""Checks on a public tree (key -> bytes) that must hold at every instant.

Used by the fault, concurrency, event and adversarial tests: whatever state a
crash or a race leaves behind, a reader must never follow a link from
``index.json`` or a listing to a page that is not there, never see a source
JSON file, and never meet executable markup.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

from support import SITE_URL

# a path ends at a quote, bracket, space or entity: feeds carry HTML escaped
# inside <content>, where a link's closing quote is written &#34;
_ABS = re.compile(re.escape(SITE_URL) + r"(/[^\"'<>\s&]*)")
_MONTH_FILE = re.compile(r"^index/\d{4}-\d{2}\.json$")
_HREF = re.compile(r"""(?:href|src)="(/[^"]*)\"""")


def key_for_path(path: str) -> str:
    """The object key that serves a site path (``/x/`` -> ``x/index.html``)."""
    path = path.split("#")[0].split("?")[0]
    if path.endswith("/"):
        path += "index.html"
    return path.lstrip("/")


def index_doc(tree: dict[str, bytes]) -> dict:
    raw = tree.get("index.json")
    return json.loads(raw) if raw else {"releases": []}


ROOTS = ("index.html", "index.json", "feed.xml", "sitemap.xml", "news-sitemap.xml", "404.html")


def _links(key: str, body: bytes) -> set[str]:
    if key.startswith("assets/") or key.startswith("media/"):
        return set()
    text = body.decode("utf-8", "replace")
    paths = set(_ABS.findall(text)) | set(_HREF.findall(text))
    return {p for p in paths if not p.startswith("//") and not p.startswith("/media/")}


def link_problems(tree: dict[str, bytes], *, through_release_pages: bool = True) -> list[str]:
    """Dangling links a reader can meet: every object reachable from the
    entry points (front page, ``index.json``, feeds, sitemaps) must link only
    to objects that exist, and every release in ``index.json`` must have its
    page. (A page being written or withdrawn that nothing links to yet, or any
    more, is not reachable and is not checked.) With ``through_release_pages``
    false, links out of release pages are not followed: while an unpublish is
    in flight the withdrawn page may still be listed in the old ``index.json``
    while its now-unused topic page is already gone."""
    problems: list[str] = []
    doc = index_doc(tree)
    for r in doc["releases"]:
        if f"releases/{r['slug']}/index.html" not in tree:
            problems.append(f"index.json lists {r['slug']} but its page is missing")
    seen: set[str] = set()
    todo = [k for k in ROOTS if k in tree]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if key.startswith("releases/") and not through_release_pages:
            continue
        for path in sorted(_links(key, tree[key])):
            target = key_for_path(path)
            if not target:
                continue
            if target not in tree:
                problems.append(f"{key} links to {path} but {target} is missing")
            elif target not in seen:
                todo.append(target)
    return problems


def secrecy_problems(tree: dict[str, bytes], secrets: list[str] = ()) -> list[str]:
    """Source JSON or any of the ``secrets`` (markers of embargoed or rejected
    releases) in the public tree."""
    problems = [
        f"source-like JSON object {k}"
        for k in tree
        if k.endswith(".json") and k != "index.json" and not _MONTH_FILE.match(k)
    ]
    for key, body in tree.items():
        for secret in secrets:
            if secret.encode() in body:
                problems.append(f"{key} contains {secret!r}")
    return problems


def _site_form(attrs: dict[str, str | None]) -> bool:
    """The site's own forms: the search box (GET /search/) and the e-mail
    sign-up (POST <API>/subscriptions). Any other form came from content."""
    action, method = attrs.get("action") or "", (attrs.get("method") or "get").lower()
    if action == "/search/" and method == "get":
        return True
    return (
        method == "post"
        and re.fullmatch(r"(https?://[^\s\"<>]+)?/subscriptions", action) is not None
    )


class _Scanner(HTMLParser):
    def __init__(self, where: str) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.problems: list[str] = []
        self._script_type: str | None = None
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag in ("iframe", "object", "embed", "base", "frame", "frameset", "applet"):
            self.problems.append(f"{self.where}: <{tag}>")
        if tag == "form" and not _site_form(names):
            self.problems.append(f"{self.where}: <form {names}>")
        if tag == "script":
            self._script_type = names.get("type") or ""
            self._script_text = []
            if self._script_type != "application/ld+json" or "src" in names:
                self.problems.append(f"{self.where}: executable <script {names}>")
        if tag == "meta" and (names.get("http-equiv") or "").lower() == "refresh":
            self.problems.append(f"{self.where}: meta refresh")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{self.where}: event handler {name}= on <{tag}>")
            if name == "style":
                self.problems.append(f"{self.where}: style attribute on <{tag}>")
            if name in ("href", "src", "action", "formaction", "xlink:href", "srcset", "poster"):
                scheme = re.sub(r"[\s\x00-\x1f]", "", value or "").lower()
                if scheme.startswith(("javascript:", "data:", "vbscript:")):
                    self.problems.append(f"{self.where}: {name}={value!r} on <{tag}>")

    def handle_data(self, data: str) -> None:
        if self._script_type is not None:
            self._script_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script_type is not None:
            text = "".join(self._script_text)
            if self._script_type == "application/ld+json":
                try:
                    json.loads(text)
                except ValueError:
                    self.problems.append(f"{self.where}: JSON-LD is not JSON: {text[:80]!r}")
                if "<" in text:
                    self.problems.append(f"{self.where}: raw '<' inside JSON-LD")
            self._script_type = None


# what XML 1.0 forbids: no public object may carry one (a feed with one is unreadable)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def markup_problems(key: str, body: bytes) -> list[str]:
    """Executable markup in one public object (HTML, or HTML carried in a feed),
    or a character XML forbids (``decode`` already refuses a surrogate)."""
    text = body.decode("utf-8")
    problems: list[str] = []
    if not key.startswith(("media/", "assets/")) and (found := _FORBIDDEN.search(text)):
        problems.append(f"{key}: forbidden character U+{ord(found.group()):04X}")
    if key.endswith(".html"):
        scanner = _Scanner(key)
        scanner.feed(text)
        scanner.close()
        problems.extend(scanner.problems)
        # a script element the parser never closed would swallow the page
        if re.search(r"<script(?![^>]*application/ld\+json)", text, re.I):
            problems.append(f"{key}: <script> without the JSON-LD type")
    elif key.endswith(".xml"):
        root = ElementTree.fromstring(body)  # well-formed, or this raises
        for el in root.iter():
            if el.text and el.get("type") in ("html", "xhtml"):
                problems.extend(markup_problems(f"{key}#{el.tag}.html", el.text.encode()))
    elif key.endswith(".json"):
        json.loads(body)
    return problems


def all_markup_problems(tree: dict[str, bytes]) -> list[str]:
    out: list[str] = []
    for key, body in sorted(tree.items()):
        out.extend(markup_problems(key, body))
    return out
