"""The Jinja2 environment of one language: its catalog, dates, filters and the
globals every template sees.

Built once per language by ``Renderer.env_for``; compiled templates are shared
by every environment of the process (``_COMPILED``), so a new renderer does not
compile them again. Autoescaping is on for HTML and XML, so plain-text fields
are text wherever they land.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterator, KeysView, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import (
    BytecodeCache,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup

from . import i18n
from .filters import media_type, news_language, rfc3339, tel
from .model import KIND_LABELS, KIND_PLURALS
from .text import display_instant, typographic, xml_safe


@dataclass(frozen=True)
class SiteInfo:
    """What templates may know about the site (no secrets)."""

    title: str
    url: str
    intro: str
    organisation: str
    press_email: str
    press_phone: str
    signup_url: str = "/subscriptions"  # where the e-mail sign-up form posts


def _install_label_cache(env: Environment, translations: Any) -> None:
    """``_``, ``gettext`` and ``ngettext`` giving exactly what Jinja's
    new-style gettext gives under autoescaping (the translated text as Markup,
    ``%``-formatted with the call's variables), without its two context calls
    per label, and each fixed label translated once per language: labels were
    a third of a release page's rendering time."""
    labels: dict[str, Markup] = {}

    def gettext(__string: str, **variables: Any) -> Markup:
        if variables:
            return Markup(translations.gettext(__string)) % variables
        label = labels.get(__string)
        if label is None:
            label = labels[__string] = Markup(translations.gettext(__string)) % {}
        return label

    def ngettext(__singular: str, __plural: str, __num: int, **variables: Any) -> Markup:
        variables.setdefault("num", __num)
        return Markup(translations.ngettext(__singular, __plural, __num)) % variables

    env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext)


class _CompiledTemplates(BytecodeCache):
    """Compiled templates kept for the process and shared by every renderer's
    environments (all made alike), so a new renderer (other settings, another
    language) does not compile them again. Jinja keys each by template name and
    file, and recompiles when the source's checksum differs."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class _Globals(ChainMap):  # type: ignore[type-arg]
    """A template's globals over the environment's, as Jinja makes them, whose
    keys come as a plain dict's: each ``{% from … import %}`` takes the
    importing context's global names minus the imported template's, and on a
    ``ChainMap`` that difference asks every name through three Python calls
    (a sixth of a release page's rendering time). Same keys, same order."""

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        merged: dict[str, Any] = {}
        for mapping in reversed(self.maps):
            merged.update(mapping)
        return merged.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


class _Environment(Environment):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return _Globals({} if d is None else d, self.globals)


class CardCache:
    """Cards (one entry in a listing) rendered once and reused while ``on``.

    A build or a rebuild step renders many listings that show the same entry
    (its month in the archive, in each of its topics and in its kind): the
    card was most of a listing's rendering time. A card depends only on what
    it shows of the entry (``card_key``), the heading level, how eagerly its
    image loads and the page's language, so equal keys give the same bytes.
    Off by default (``Renderer.sharing_cards`` turns it on for a batch of
    pages); it holds strings, never entries, and at most ``LIMIT`` cards."""

    LIMIT = 5_000  # cards kept at once (a few MB); the pages of one month come together

    def __init__(self) -> None:
        self.on = False
        self.seen: dict[tuple[Any, ...], Markup] = {}

    def clear(self) -> None:
        self.seen.clear()


def card_key(e: Any) -> tuple[Any, ...]:
    """Everything a listing card shows of an entry (``macros.html``'s
    ``card``): its link, title, kind, date as written (the offset too: the
    date is shown in it), excerpt, language and image."""
    image = tuple(sorted(e.image.items())) if e.image else None
    return (e.url, e.title, e.kind, e.published_at.isoformat(), e.summary, e.language, image)


def template_environment(
    template_dir: Path,
    tag: str,
    *,
    site: SiteInfo,
    timezone: str,
    absolute: Callable[[str], str],
    stylesheet: str,
    cards: CardCache | None = None,
) -> Environment:
    """The templates in language ``tag``: its catalog (English labels when
    there is none) and its dates. ``absolute`` makes a site path a full URL;
    ``stylesheet`` is the path pages link their stylesheet at; ``cards``, when
    on, keeps each listing card rendered for reuse."""
    env = _Environment(
        loader=FileSystemLoader(str(template_dir)),
        autoescape=select_autoescape(["html", "xml"], default=True),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
        bytecode_cache=_COMPILED,
    )
    translations = i18n.translations(tag)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    _install_label_cache(env, translations)
    loc = i18n.locale(tag)
    env.filters["display_date"] = loc.format_date
    env.filters["display_datetime"] = lambda m: loc.format_datetime(m, i18n.zone_label(m, timezone))
    env.filters["display_instant"] = display_instant
    env.filters["rfc3339"] = rfc3339
    env.filters["tel"] = tel
    env.filters["news_language"] = news_language
    env.filters["typographic"] = typographic
    env.filters["mailto_quote"] = lambda v: quote(xml_safe(str(v)), safe="")
    env.filters["absolute"] = absolute
    env.filters["media_type"] = media_type
    page_lang = i18n.primary(tag)

    def other_lang(language: str) -> Markup:
        # a title or excerpt in another language than the page says so
        if i18n.primary(language) == page_lang:
            return Markup("")
        direction = "rtl" if i18n.is_rtl(language) else "ltr"
        return Markup(' lang="{}" dir="{}"').format(language, direction)

    parts: dict[tuple[str, str], Markup] = {}

    def partial(name: str, nav: str = "") -> Markup:
        # what is the same on every page of this language (the header for
        # one navigation entry, the footer, the sign-up form's fixed
        # parts), rendered once: ``partials/<name>.html``, its final line
        # break left to the page
        key = (name, nav)
        if key not in parts:
            text = env.get_template(f"partials/{name}.html").render(nav=nav)
            parts[key] = Markup(text[:-1] if text.endswith("\n") else text)
        return parts[key]

    card_macro: list[Any] = []

    def listed_card(e: Any, heading: str = "h2", eager: Any = False) -> Markup:
        # ``card`` of macros.html, rendered once per entry, heading and
        # eagerness while the cache is on (``CardCache``)
        if not card_macro:
            card_macro.append(env.get_template("macros.html").module.card)  # type: ignore[attr-defined]
        if cards is None or not cards.on:
            return card_macro[0](e, heading, eager)  # type: ignore[no-any-return]
        key = (card_key(e), heading, eager, tag)
        hit = cards.seen.get(key)
        if hit is not None:
            return hit
        html = card_macro[0](e, heading, eager)
        if len(cards.seen) >= cards.LIMIT:
            cards.seen.clear()
        cards.seen[key] = html
        return html  # type: ignore[no-any-return]

    env.globals.update(
        partial=partial,
        listed_card=listed_card,
        site=site,
        nav="",
        lang=tag,
        dir="rtl" if loc.rtl else "ltr",
        kinds=[(k, translations.gettext(label)) for k, label in KIND_PLURALS.items()],
        kind_label=lambda kind: translations.gettext(KIND_LABELS[kind]),
        kind_plural=lambda kind: translations.gettext(KIND_PLURALS[kind]),
        other_lang=other_lang,
        stylesheet=stylesheet,
    )
    return env
