"""Compile the language data the renderer ships: ``python -m newsroom.locales``.

- ``chalicelib/locale/<lang>/LC_MESSAGES/newsroom.po`` -> ``newsroom.mo``
  (Babel's compiler; the Lambda reads them with the standard ``gettext``);
- ``chalicelib/locale/dates.json``: for every CLDR language (and script
  variant), the long date, month-year and short time patterns, month names,
  AM/PM and writing direction.

Babel is a development dependency only: its full CLDR data would not fit the
Lambda package, the few kilobytes taken from it here do. ``--check`` exits 1
when a committed file differs from what this would write (the tests run it).
"""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime
from pathlib import Path

from babel import Locale as BabelLocale
from babel import localedata
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from chalicelib.core.i18n import CATALOG_LANGUAGES, DOMAIN, LOCALE_DIR, Locale


def _locale_data(ident: str) -> dict:
    loc = BabelLocale.parse(ident)
    periods = loc.day_periods["format"]["abbreviated"]
    return {
        "date": loc.date_formats["long"].pattern,
        "month_year": loc.datetime_skeletons["yMMMM"].pattern,
        "time": loc.time_formats["short"].pattern,
        "datetime": str(loc.datetime_formats["long"]),
        "months": [loc.months["format"]["wide"][m] for m in range(1, 13)],
        "months_standalone": [loc.months["stand-alone"]["wide"][m] for m in range(1, 13)],
        "day_periods": [periods["am"], periods["pm"]],
        "rtl": loc.character_order == "right-to-left",
        "name": loc.get_display_name(ident) or ident,
    }


SAMPLES = [datetime(2018, 12, 19, 10, 0), datetime(2025, 7, 2, 0, 5), datetime(2009, 1, 1, 23, 59)]


def agrees_with_babel(ident: str, data: dict) -> bool:
    """The renderer's formatter gives exactly what Babel gives for this language."""
    loc = Locale(ident, **data)
    try:
        return all(
            loc.format_date(m) == format_date(m, "long", locale=ident)
            and loc.format_time(m) == format_time(m, "short", locale=ident)
            and loc.format_month(m.year, m.month) == format_skeleton("yMMMM", m, locale=ident)
            for m in SAMPLES
        )
    except ValueError:  # a pattern field the formatter does not know (eras, weeks…)
        return False


def _script_variant(ident: str) -> bool:
    """``sr_Latn``, ``pa_Arab``: a language in one of its other scripts."""
    parts = ident.split("_")
    return len(parts) == 2 and len(parts[1]) == 4 and parts[1].isalpha()


def dates_json() -> bytes:
    """One entry per CLDR language whose dates the renderer formats exactly as
    Babel does (others fall back to English), plus each script variant whose
    dates differ from its language's (``sr_Latn``: Serbian dates in Latin
    letters, not Cyrillic). Territory variants are left out, to stay small."""
    data: dict[str, dict] = {}
    for ident in sorted(localedata.locale_identifiers(), key=lambda i: (i.count("_"), i)):
        if ident == "root" or ("_" in ident and not _script_variant(ident)):
            continue
        try:
            entry = _locale_data(ident)
        except (KeyError, AttributeError):  # a language CLDR has too little data for
            continue
        own = data.get(ident.split("_")[0], {})
        if any(own.get(k) != v for k, v in entry.items() if k != "name"):
            if agrees_with_babel(ident, entry):
                data[ident] = entry
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0) + "\n").encode()


def mo_bytes(lang: str) -> bytes:
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def outputs() -> dict[Path, bytes]:
    files = {LOCALE_DIR / "dates.json": dates_json()}
    for lang in CATALOG_LANGUAGES:
        if lang != "en":
            files[LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"] = mo_bytes(lang)
    return files


def main(argv: list[str]) -> int:
    stale = [p for p, data in outputs().items() if not p.is_file() or p.read_bytes() != data]
    if "--check" in argv:
        for p in stale:
            print(f"{p}: out of date; run python -m newsroom.locales", file=sys.stderr)
        return 1 if stale else 0
    for path, data in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(stale)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
