"""The release format (version 1): what staff may write, and what they are told."""

from __future__ import annotations

import json

import pytest
from support import SAMPLES, dumps, make_release

from chalicelib.core.model import MAX_BYTES, parse_release
from chalicelib.errors import InvalidRelease


def errors_of(doc: object, name: str = "releases/clinics.json") -> dict[str, str]:
    raw = doc if isinstance(doc, bytes) else dumps(doc)
    with pytest.raises(InvalidRelease) as info:
        parse_release(raw, name=name)
    return {e.loc: e.msg for e in info.value.errors}


def test_every_sample_release_is_valid() -> None:
    files = sorted(SAMPLES.glob("*.json"))
    assert len(files) >= 12
    kinds = {parse_release(f.read_bytes(), name=f"releases/{f.name}").kind for f in files}
    assert kinds == {"press-release", "report", "statement", "campaign-update", "victory"}


def test_slug_defaults_to_the_file_name() -> None:
    release = parse_release(dumps(make_release()), name="releases/clinics-reopen.json")
    assert release.slug == "clinics-reopen"


def test_explicit_slug_wins_over_the_file_name() -> None:
    release = parse_release(dumps(make_release(slug="other")), name="releases/My File.json")
    assert release.slug == "other"


def test_a_file_name_that_is_no_slug_needs_an_explicit_slug() -> None:
    errs = errors_of(make_release(), name="releases/My Release (1).json")
    assert "slug" in errs and "My Release (1)" in errs["slug"]


@pytest.mark.parametrize(
    "slug", ["../../index", "Upper", "a--b", "-a", "a-", "a_b", "a/b", "", "é"]
)
def test_bad_slugs_are_rejected(slug: str) -> None:
    assert "slug" in errors_of(make_release(slug=slug))


def test_slug_length_limit() -> None:
    assert "slug" in errors_of(make_release(slug="a" * 121))
    assert parse_release(dumps(make_release(slug="a" * 120)), name="x.json").slug == "a" * 120


def test_unknown_fields_are_errors_not_silently_dropped() -> None:
    errs = errors_of(make_release(titel="Typo"))
    assert "titel" in errs and "not a known field" in errs["titel"]


def test_nested_unknown_fields_name_their_path() -> None:
    errs = errors_of(make_release(image={"url": "/a.jpg", "alt": "A", "captoin": "x"}))
    assert "image.captoin" in errs


@pytest.mark.parametrize("field", ["title", "kind", "published_at", "body"])
def test_required_fields(field: str) -> None:
    assert errors_of(make_release(**{field: None}))[field] == "is required"


def test_title_is_trimmed_and_limited() -> None:
    assert parse_release(dumps(make_release(title="  Hello  ")), name="a.json").title == "Hello"
    assert "title" in errors_of(make_release(title="   "))
    assert "at most 300" in errors_of(make_release(title="x" * 301))["title"]


def test_kind_must_be_one_of_the_five() -> None:
    assert "press-release" in errors_of(make_release(kind="blog"))["kind"]


@pytest.mark.parametrize(
    "value", ["2018-12-19T10:00:00", "2018-12-19", "yesterday", 1545231600, "2018-13-19T10:00:00Z"]
)
def test_published_at_needs_a_date_time_with_offset(value: object) -> None:
    assert "published_at" in errors_of(make_release(published_at=value))


def test_naive_date_time_message_explains_the_offset() -> None:
    assert (
        "UTC offset" in errors_of(make_release(published_at="2018-12-19T10:00:00"))["published_at"]
    )


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T20:00:00-05:00"]
)
@pytest.mark.parametrize("field", ["published_at", "embargo_until"])
def test_an_instant_outside_the_calendar_in_utc_is_an_error(field: str, value: str) -> None:
    assert "out of range" in errors_of(make_release(**{field: value}))[field]


def test_the_calendar_s_last_instant_in_utc_is_valid() -> None:
    doc = make_release(published_at="9999-12-31T23:59:59+14:00", embargo_until="9999-12-31T23:59Z")
    assert parse_release(dumps(doc), name="a.json").embargo_until.year == 9999


@pytest.mark.parametrize("value", ["2018-12-19T10:00:00+05:30:15", "2018-12-19T10:00:00+05:30:15.5"])
def test_an_offset_with_seconds_is_an_error(value: str) -> None:
    """Feeds and sitemaps write the offset as ±hh:mm (RFC 3339)."""
    assert "whole minutes" in errors_of(make_release(published_at=value))["published_at"]


def test_offset_is_kept_as_written() -> None:
    release = parse_release(
        dumps(make_release(published_at="2018-12-19T22:30:00-05:00")), name="a.json"
    )
    assert release.published_at.isoformat() == "2018-12-19T22:30:00-05:00"


def test_updated_at_not_before_published_at() -> None:
    errs = errors_of(make_release(updated_at="2018-12-18T10:00:00-05:00"))
    assert "updated_at" in errs


def test_summary_limit() -> None:
    assert "summary" in errors_of(make_release(summary="x" * 601))


def test_body_must_not_be_empty() -> None:
    assert "body" in errors_of(make_release(body="  \n "))


def test_body_format() -> None:
    assert "body_format" in errors_of(make_release(body_format="rtf"))
    assert (
        parse_release(dumps(make_release(body_format="html")), name="a.json").body_format == "html"
    )


def test_image_needs_alt_text() -> None:
    assert "image.alt" in errors_of(make_release(image={"url": "/media/a.jpg"}))
    assert "image.alt" in errors_of(make_release(image={"url": "/media/a.jpg", "alt": " "}))


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "http://example.org/a.jpg",
        "//evil.example/a.jpg",
        "media/a.jpg",
        " ",
    ],
)
def test_image_and_attachment_urls_must_be_https_or_site_paths(url: str) -> None:
    assert "image.url" in errors_of(make_release(image={"url": url, "alt": "A"}))
    assert "attachments.0.url" in errors_of(make_release(attachments=[{"title": "T", "url": url}]))


def test_topics_rules() -> None:
    errs = errors_of(make_release(topics=["ok", "", "x" * 61, 5, "!!!"]))
    assert {"topics.1", "topics.2", "topics.3", "topics.4"} <= set(errs)
    assert "topics" in errors_of(make_release(topics="Climate"))


def test_duplicate_topics_collapse_by_slug() -> None:
    release = parse_release(
        dumps(make_release(topics=["Climate", "climate", "Clean Water"])), name="a.json"
    )
    assert release.topics == ("Climate", "Clean Water")


def test_contacts_need_name_and_valid_email() -> None:
    errs = errors_of(
        make_release(contacts=[{"email": "a@b.org"}, {"name": "N", "email": "not-an-email"}])
    )
    assert "contacts.0.name" in errs and "contacts.1.email" in errs


@pytest.mark.parametrize(
    "email",
    ["o'brien@example.org", "first.last+press@sub.example.co.uk", "ana_maria@example.org"],
)
def test_a_contact_address_with_an_apostrophe_or_plus_is_valid(email: str) -> None:
    doc = make_release(contacts=[{"name": "N", "email": email}])
    release = parse_release(dumps(doc), name="a.json")
    assert release.contacts[0].email == email


@pytest.mark.parametrize(
    "email", [".a@example.org", "a.@example.org", "a..b@example.org", "a:b@example.org"]
)
def test_a_contact_address_with_misplaced_dots_or_specials_is_invalid(email: str) -> None:
    assert "contacts.0.email" in errors_of(make_release(contacts=[{"name": "N", "email": email}]))


def test_a_malformed_contact_address_is_not_repeated_in_the_error() -> None:
    # the error goes into the receipt and the log line, which carry no address
    errs = errors_of(make_release(contacts=[{"name": "N", "email": "jane.doe@example"}]))
    assert "e-mail address" in errs["contacts.0.email"]
    assert "jane" not in errs["contacts.0.email"]


def test_a_field_name_holding_an_address_is_not_repeated_in_its_location() -> None:
    """Contacts written as ``{"jane@…": "Jane"}``, or an address typed as a
    field name: the error names where it is, not the address (receipts and log
    lines carry none)."""
    address = "jane.doe@example.org"
    doc = make_release(contacts=[{"name": "N", "email": "n@example.org", address: "Jane"}])
    doc[address] = "x"
    errs = errors_of(doc)
    assert errs["(a name holding an @)"] == errs["contacts.0.(a name holding an @)"]
    assert "not a known field" in errs["(a name holding an @)"]
    raw = dumps(make_release()).replace(b'"title"', f'"{address}": 1, "{address}"'.encode(), 1)
    with pytest.raises(InvalidRelease) as exc:
        parse_release(raw, name="releases/x.json")
    assert [(e.loc, e.msg) for e in exc.value.errors] == [
        ("(a name holding an @)", "appears twice in the file")
    ]
    assert address not in str(exc.value)


@pytest.mark.parametrize("field", ["slug", "translation_key"])
def test_an_address_given_as_a_slug_is_not_repeated_in_the_error(field: str) -> None:
    # the error goes into the receipt and the log line, which carry no address
    errs = errors_of(make_release(**{field: "jane.doe@example.org"}))
    assert "not a valid" in errs[field] and "jane" not in errs[field]
    # any other value is repeated as written: a stray line feed shows
    errs = errors_of(make_release(**{field: "statement\n"}))
    assert "'statement\\n' is not a valid" in errs[field]


def test_an_empty_optional_text_is_as_if_absent() -> None:
    # a CMS export writes "" for a field left blank; only title, alt, names and
    # topics have a minimum length
    doc = make_release(
        summary="  ",
        image={"url": "/media/a.jpg", "alt": "A clinic", "caption": "", "credit": ""},
        contacts=[{"name": "N", "email": "n@example.org", "phone": ""}],
    )
    release = parse_release(dumps(doc), name="a.json")
    assert release.summary is None
    assert release.image is not None
    assert (release.image.caption, release.image.credit) == (None, None)
    assert release.contacts[0].phone is None


def test_language_tag() -> None:
    assert parse_release(dumps(make_release(language="pt-BR")), name="a.json").language == "pt-BR"
    assert "language" in errors_of(make_release(language="english please"))


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("sr-LATN", "sr-Latn"),
        ("es-419", "es-419"),
        ("de-CH-1901", "de-CH-1901"),
        ("en-US-x-Twain", "en-US-x-twain"),
    ],
)
def test_a_language_tag_is_kept_in_its_standard_case(written: str, kept: str) -> None:
    # tags are case-insensitive (BCP 47): "FR" and "fr" are one language
    assert parse_release(dumps(make_release(language=written)), name="a.json").language == kept


def test_all_problems_are_reported_at_once() -> None:
    errs = errors_of(
        make_release(kind="blog", published_at="2018-12-19", titel="x", image={"url": "/a"})
    )
    assert {"kind", "published_at", "titel", "image.alt"} <= set(errs)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"title": "a", "title": "b"}', "twice"),
    ],
)
def test_file_level_problems(raw: bytes, fragment: str) -> None:
    errs = errors_of(raw)
    assert any(fragment in msg for msg in errs.values()), errs


def test_size_limit_is_one_mebibyte() -> None:
    doc = make_release(body="x" * (MAX_BYTES + 10))
    assert "1 MiB" in errors_of(dumps(doc))["(file)"]


def test_utf8_bom_is_tolerated() -> None:
    raw = "\ufeff".encode() + json.dumps(make_release()).encode()
    assert parse_release(raw, name="a.json").title


def test_translation_key_links_language_versions_and_follows_the_slug_rule() -> None:
    from chalicelib.core.model import release_from_obj
    from chalicelib.errors import InvalidRelease

    base = {
        "title": "T",
        "kind": "statement",
        "published_at": "2024-05-14T10:00:00+00:00",
        "body": "Body.",
    }
    ok = release_from_obj({**base, "translation_key": "water-report-2024"}, default="a")
    assert ok.translation_key == "water-report-2024"
    assert release_from_obj(base, default="a").translation_key is None
    for bad in ("Water Report", "water-report\n", "", 7):
        try:
            release_from_obj({**base, "translation_key": bad}, default="a")
        except InvalidRelease as exc:
            assert any(e.loc == "translation_key" for e in exc.errors), exc.errors
        else:
            raise AssertionError(f"{bad!r} accepted")


# Poison-proof input: what no page or feed can carry, and values that only look valid

BASE = {
    "title": "T",
    "kind": "statement",
    "published_at": "2024-05-14T10:00:00+00:00",
    "body": "Body.",
}


@pytest.mark.parametrize(
    "char", ["\ud800", "\udfff", "\x00", "\x08", "\x0b", "\x1f", "\ufffe", "\uffff"]
)
@pytest.mark.parametrize(
    ("doc", "loc"),
    [
        ({"body": "a{c}b"}, "body"),
        ({"title": "a{c}b"}, "title"),
        ({"summary": "a{c}b"}, "summary"),
        ({"image": {"url": "/m/a.jpg", "alt": "A", "caption": "a{c}b"}}, "image.caption"),
        ({"image": {"url": "/m/a.jpg", "alt": "A", "credit": "a{c}b"}}, "image.credit"),
        ({"topics": ["Water", "Health", "a{c}b"]}, "topics.2"),
        (
            {"contacts": [{"name": "N", "email": "n@example.org", "phone": "1{c}"}]},
            "contacts.0.phone",
        ),
        ({"attachments": [{"title": "a{c}b", "url": "/m/a.pdf"}]}, "attachments.0.title"),
        ({"kind": "statement{c}"}, "kind"),
        ({"published_at": "2024-05-14T10:00:00+00:00{c}"}, "published_at"),
    ],
)
def test_a_forbidden_character_anywhere_is_an_error_naming_the_field(
    char: str, doc: dict, loc: str
) -> None:
    filled = json.loads(json.dumps(doc).replace("{c}", json.dumps(char)[1:-1]))
    raw = json.dumps({**BASE, **filled}).encode()  # ASCII: a surrogate travels as its escape
    errs = errors_of(raw)
    assert list(errs)[0] == loc, errs
    assert f"U+{ord(char):04X}" in errs[loc] or f"\\u{ord(char):04x}" in errs[loc]
    # every message is text a receipt, a log line and a terminal can carry
    for where, msg in errs.items():
        assert (where + msg).encode("utf-8").decode("utf-8")
        assert not any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in where + msg)


def test_tab_line_feed_and_carriage_return_stay_allowed_in_text() -> None:
    release = parse_release(dumps({**BASE, "body": "a\tb\r\nc\n"}), name="a.json")
    assert release.body == "a\tb\r\nc\n"


def test_a_forbidden_character_in_a_field_name_is_named_printably() -> None:
    errs = errors_of(json.dumps({**BASE, "ti\ud800tle": "x"}).encode())
    assert "ti\\ud800tle" in errs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "statement\n"),
        ("slug", "statement\r\n"),
        ("translation_key", "water\n"),
        ("language", "en\n"),
        ("language", "pt-BR\n"),
        ("published_at", "2024-05-14T10:00:00+00:00\n"),
        ("published_at", " 2024-05-14T10:00:00+00:00"),
    ],
)
def test_every_pattern_matches_the_whole_value(field: str, value: str) -> None:
    assert field in errors_of({**BASE, field: value})


def test_a_file_name_with_a_trailing_newline_is_no_slug() -> None:
    assert "slug" in errors_of(BASE, name="releases/statement\n.json")


def test_email_pattern_covers_the_whole_value() -> None:
    from chalicelib.core.model import EMAIL_RE, LANG_RE, SLUG_RE

    assert SLUG_RE.match("statement\n") is None
    assert LANG_RE.match("en\n") is None
    assert EMAIL_RE.match("a@example.org\n") is None


@pytest.mark.parametrize(
    "url",
    [
        "/\t/evil.example/a.jpg",
        "/media/a b.jpg",
        "/media/a.jpg\n",
        " /media/a.jpg",
        "https://example.org/a\tb.jpg",
        "https://example.org/a b.jpg",
        "https://example.org/a.jpg ",
        "https://example.org/a\u00a0b.jpg",
    ],
)
def test_whitespace_in_a_url_is_an_error(url: str) -> None:
    errs = errors_of(
        {**BASE, "image": {"url": url, "alt": "A"}, "attachments": [{"title": "T", "url": url}]}
    )
    assert "spaces" in errs["image.url"]
    assert "spaces" in errs["attachments.0.url"]


@pytest.mark.parametrize(
    ("field", "item", "limit"),
    [
        ("topics", None, 20),
        ("contacts", {"name": "N", "email": "n@example.org"}, 10),
        ("attachments", {"title": "T", "url": "/media/a.pdf"}, 50),
    ],
)
def test_list_limits(field: str, item: dict | None, limit: int) -> None:
    items = [item or f"Topic {i}" for i in range(limit)]
    assert len(getattr(parse_release(dumps({**BASE, field: items}), name="a.json"), field)) == limit
    errs = errors_of({**BASE, field: [*items, items[0]]})
    assert f"at most {limit}" in errs[field]


def test_two_thousand_topics_are_refused_before_anything_else() -> None:
    errs = errors_of({**BASE, "topics": [f"Topic {i}" for i in range(2000)]})
    assert list(errs) == ["topics"] and "2000" in errs["topics"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "T", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"title": "T", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
        b"[" * 100000,
        b'{"title": "T", "x": ' + b"[" * 50 + b"]" * 50 + b"}",
        b'{"title": "T", "x": ' + b"9" * 4301 + b"}",
        b'{"title": "T", "x": -' + b"1" * 100000 + b"}",
    ],
)
def test_deep_nesting_and_huge_numbers_are_invalid_files_not_crashes(raw: bytes) -> None:
    assert len(raw) <= MAX_BYTES
    errs = errors_of(raw)
    assert "(file)" in errs, errs


def test_deep_nesting_handed_over_decoded_is_invalid_too() -> None:
    from chalicelib.core.model import release_from_obj

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidRelease) as info:
        release_from_obj({**BASE, "x": deep}, default="a")
    assert info.value.errors[0].loc == "(file)"


def test_a_future_publication_date_is_valid_it_is_only_scheduled() -> None:
    release = parse_release(
        dumps({**BASE, "published_at": "2999-01-01T00:00:00+00:00"}), name="a.json"
    )
    assert release.published_at.year == 2999
