"""Languages: gettext catalogs for the labels, CLDR patterns for the dates.

The catalogs (``chalicelib/locale/<lang>/LC_MESSAGES/newsroom.mo``) and the
date data (``chalicelib/locale/dates.json``) are compiled from the ``.po``
files and Babel's CLDR data by ``python -m newsroom.locales``, and committed:
Babel with every CLDR locale is bigger than the whole Lambda package, while
the few kilobytes it produces here ship in it. A test checks that the compiled
files match what Babel gives today, and that dates format as Babel formats them.

Only the standard library is used at run time (``gettext`` reads ``.mo``).
"""

from __future__ import annotations

import gettext
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..keys import release_path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "newsroom"
# languages whose labels are translated; any other falls back to English labels
CATALOG_LANGUAGES = ("en", "fr", "es", "de", "pt", "ar")


def primary(tag: str) -> str:
    """``pt-BR`` -> ``pt``: catalogs and dates are chosen by the language subtag."""
    return tag.split("-")[0].lower()


# the language codes ISO 639 replaced that older software still writes (Java's
# Locale gave "iw" for Hebrew until JDK 17): BCP 47's preferred values
_RENAMED = {"iw": "he", "ji": "yi", "in": "id"}


def canonical_tag(tag: str) -> str:
    """A language tag in BCP 47's canonical form (``pt-br`` -> ``pt-BR``,
    ``ZH-HANT-tw`` -> ``zh-Hant-TW``, ``en-x-Foo`` -> ``en-x-foo``, ``iw`` ->
    ``he``): tags ignore case, so two spellings of one language must not make
    two language versions, two ``hreflang`` alternates or two search filters."""
    parts = tag.split("-")
    out = [_RENAMED.get(parts[0].lower(), parts[0].lower())]
    singleton = False
    for part in parts[1:]:
        singleton = singleton or len(part) == 1
        if not singleton and len(part) == 2 and part.isalpha():
            out.append(part.upper())  # region
        elif not singleton and len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        else:
            out.append(part.lower())
    return "-".join(out)


@cache
def _dates() -> dict[str, dict]:
    return json.loads((LOCALE_DIR / "dates.json").read_text("utf-8"))


@cache
def translations(tag: str) -> gettext.NullTranslations:
    """The catalog for ``tag`` (English strings when there is none)."""
    lang = primary(tag)
    if lang == "en" or lang not in CATALOG_LANGUAGES:
        return gettext.NullTranslations()
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as fh:
        return gettext.GNUTranslations(fh)


def known(tag: str) -> bool:
    """Whether CLDR dates exist for ``tag``'s language (else English ones are used)."""
    return primary(tag) in _dates()


def has_catalog(tag: str) -> bool:
    return primary(tag) in CATALOG_LANGUAGES


@dataclass(frozen=True)
class Locale:
    """The CLDR data one language needs: long date, month-year, short time."""

    tag: str
    date: str
    month_year: str
    time: str
    datetime: str  # how a date and a time join: ``{1} 'at' {0}``
    months: tuple[str, ...]
    months_standalone: tuple[str, ...]
    day_periods: tuple[str, str]
    rtl: bool
    name: str = ""  # the language's name in itself (``français``), for the switcher

    def format_date(self, moment: datetime) -> str:
        """``December 19, 2018`` / ``19 décembre 2018`` in the offset staff wrote."""
        return _format(self.date, moment, self)

    def format_month(self, year: int, month: int) -> str:
        """``December 2018`` / ``décembre 2018`` (archive headings)."""
        return _format(self.month_year, datetime(year, month, 1), self)

    def format_time(self, moment: datetime) -> str:
        """``10:00 AM`` / ``10:00`` (the zone is added by ``zone_label``)."""
        return _format(self.time, moment, self)

    def format_datetime(self, moment: datetime, zone: str) -> str:
        """``December 19, 2018 at 10:00 AM EST``: CLDR's long date-time join of
        the long date and the short time, then the zone."""
        time = f"{self.format_time(moment)} {zone}"
        out = []
        for part in re.split(r"(\{[01]\})", self.datetime):
            if part == "{0}":
                out.append(time)
            elif part == "{1}":
                out.append(self.format_date(moment))
            else:
                out.append(_format(part, moment, self))
        return "".join(out)


@cache
def locale(tag: str) -> Locale:
    """Date data for ``tag``: the longest known prefix of it (``sr-Latn-RS`` ->
    ``sr_Latn``, Serbian in Latin letters; ``pt-BR`` -> ``pt``), else English."""
    data = _dates()
    parts = canonical_tag(tag).split("-")
    for key in ["_".join(parts[:n]) for n in range(len(parts), 0, -1)] + ["en"]:
        if key in data:
            d = data[key]
            return Locale(
                tag=key,
                date=d["date"],
                month_year=d["month_year"],
                time=d["time"],
                datetime=d["datetime"],
                months=tuple(d["months"]),
                months_standalone=tuple(d["months_standalone"]),
                day_periods=tuple(d["day_periods"]),
                rtl=_script_rtl(tag, d["rtl"]),
                name=d["name"],
            )
    raise LookupError(tag)  # pragma: no cover - "en" is always there


# ISO 15924 scripts written right to left (those a language tag may name)
_RTL_SCRIPTS = frozenset(
    {"Adlm", "Arab", "Hebr", "Mand", "Mend", "Nkoo", "Rohg", "Samr", "Syrc", "Thaa", "Yezi"}
)


def _script_rtl(tag: str, default: bool) -> bool:
    """A script subtag (``pa-Arab``, ``ar-Latn``) decides the direction; without
    one, the language's usual script does (``default``)."""
    for part in tag.split("-")[1:]:
        if len(part) == 1:  # extensions and private use follow: no script there
            break
        if len(part) == 4 and part.isalpha():
            return part.title() in _RTL_SCRIPTS
    return default


def is_rtl(tag: str) -> bool:
    return locale(tag).rtl


def _format(pattern: str, moment: datetime, loc: Locale) -> str:
    """The subset of CLDR date patterns the long date, month-year and short time
    formats use: y, M/L, d, h/H/K/k, m, a/B, quoted literals."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            j = pattern.find("'", i + 1)
            if j == i + 1:  # '' is a literal quote
                out.append("'")
                i += 2
                continue
            j = n if j < 0 else j
            out.append(pattern[i + 1 : j])
            i = j + 1
            continue
        if not ("a" <= c <= "z" or "A" <= c <= "Z"):
            out.append(c)
            i += 1
            continue
        j = i
        while j < n and pattern[j] == c:
            j += 1
        width = j - i
        out.append(_field(c, width, moment, loc))
        i = j
    return "".join(out)


def _field(c: str, width: int, m: datetime, loc: Locale) -> str:
    if c in "yY":
        return str(m.year % 100).zfill(2) if width == 2 else str(m.year).zfill(width)
    if c in "ML":
        if width >= 3:
            return (loc.months if c == "M" else loc.months_standalone)[m.month - 1]
        return str(m.month).zfill(width)
    if c == "d":
        return str(m.day).zfill(width)
    if c == "H":
        return str(m.hour).zfill(width)
    if c == "k":
        return str(m.hour or 24).zfill(width)
    if c == "h":
        return str(m.hour % 12 or 12).zfill(width)
    if c == "K":
        return str(m.hour % 12).zfill(width)
    if c == "m":
        return str(m.minute).zfill(width)
    if c in "aBb":
        return loc.day_periods[0 if m.hour < 12 else 1]
    raise ValueError(f"unsupported date pattern field {c * width!r}")


def zone_label(moment: datetime, timezone: str = "UTC") -> str:
    """``EST`` when the site's zone has that offset at that instant and a
    lettered name for it, else ``UTC−05:00`` (the offset is all a release says)."""
    offset = moment.utcoffset() or timedelta(0)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is not None:
        try:
            local = moment.astimezone(zone)
        except OverflowError:  # the last or first hours of the calendar: the offset says it
            local = moment
        name = local.tzname() or ""
        if local.utcoffset() == offset and name.isalpha():
            return name
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes > 0 else "\u2212"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


@dataclass(frozen=True)
class Version:
    """One language version of a release, for ``hreflang`` links and the switcher."""

    language: str
    slug: str
    url: str  # absolute

    @property
    def path(self) -> str:
        return release_path(self.slug)

    @property
    def name(self) -> str:
        name = locale(self.language).name if known(self.language) else self.language
        return name[:1].upper() + name[1:]


def language_versions(
    translation_key: str | None, items: Any, site_url: str = ""
) -> tuple[Version, ...]:
    """Every version of a release among ``items`` (index entries or releases):
    those sharing its ``translation_key``, one per language (the newest wins),
    ordered by language tag. A release without a key has no versions."""
    if not translation_key:
        return ()
    found: dict[str, tuple[float, Version]] = {}
    for item in items:
        if getattr(item, "translation_key", None) != translation_key:
            continue
        url = getattr(item, "url", None) or site_url + release_path(item.slug)
        stamp = item.published_at.timestamp()
        lang = item.language
        if lang in found:
            # equal instants: the smaller slug, so the order items come in
            # (a build's files, a record's members) never decides
            old_stamp, old = found[lang]
            if stamp < old_stamp or (stamp == old_stamp and item.slug > old.slug):
                continue
        found[lang] = (stamp, Version(lang, item.slug, url))
    return tuple(v for _, (_, v) in sorted(found.items()))


def linked_versions(slug: str, versions: tuple[Version, ...]) -> tuple[Version, ...]:
    """The versions the page of ``slug`` links to: none unless at least two
    exist and the page is one of them (an older duplicate of a language links
    to nothing, and nothing links to it)."""
    if len(versions) < 2 or not any(v.slug == slug for v in versions):
        return ()
    return versions
