"""The release model (format version 1): source bytes -> validated ``Release``.

Validation is strict on purpose: a press office must never publish something
other than what staff meant, so unknown fields (a typo such as ``titel``),
naive date-times and unsafe URLs are errors, each reported with the dotted path
of the field (``image.alt``) and a sentence a press officer understands.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import FieldError, InvalidRelease
from ..keys import release_path
from .fields import (
    character_problems,
    datetime_value,
    fail,
    field_errors,
    field_loc,
    text_value,
    topic_value,
    url_value,
)
from .i18n import canonical_tag
from .text import shown, topic_slug

MAX_BYTES = 1024 * 1024
# Every pattern is anchored with \A…\Z (``$`` would accept a trailing newline:
# "statement\n" would pass as a slug and publish at a key nothing links to), so
# ``.match`` anywhere, including outside this module, checks the whole value.
SLUG_RE = re.compile(r"\A[a-z0-9]+(?:-[a-z0-9]+)*\Z")
SLUG_MAX = 120
# An unquoted local part (RFC 5322 dot-atom: an apostrophe or a plus is as good
# as a letter; a dot never leads, trails or doubles), then a host name with a dot.
_ATOM = r"[^@\s<>\"(),.:;\[\]\\]+"
EMAIL_RE = re.compile(
    rf"\A{_ATOM}(?:\.{_ATOM})*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)
LANG_RE = re.compile(r"\A[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\Z")
_PHONE_RE = re.compile(r"\A[0-9+()./\- ]+(?:\s*(?:x|ext\.?)\s*[0-9]+)?\Z")
MAX_TOPICS = 20
MAX_CONTACTS = 10
MAX_ATTACHMENTS = 50

KIND_LABELS: dict[str, str] = {
    "press-release": "Press Release",
    "report": "Report",
    "statement": "Statement",
    "campaign-update": "Campaign Update",
    "victory": "Victory",
}
KIND_PLURALS: dict[str, str] = {
    "press-release": "Press Releases",
    "report": "Reports",
    "statement": "Statements",
    "campaign-update": "Campaign Updates",
    "victory": "Victories",
}
Kind = Literal["press-release", "report", "statement", "campaign-update", "victory"]


Topic = Annotated[str, BeforeValidator(topic_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _plain_text(name: str, max_len: int, *, optional: bool = False) -> Any:
    """The validator of a plain-text field: text, XML-safe, trimmed, at most
    ``max_len`` characters (``null`` or blank: absent, when ``optional``)."""

    def check(cls: Any, v: Any) -> str | None:
        if optional and (v is None or (isinstance(v, str) and not v.strip())):
            return None  # "" is a field left blank, as if absent
        return text_value(v, field=name, max_len=max_len)

    return field_validator(name, mode="before")(classmethod(check))


class Image(_Strict):
    url: str
    alt: str
    caption: str | None = None
    credit: str | None = None

    _url = field_validator("url", mode="before")(classmethod(lambda cls, v: url_value(v)))

    @field_validator("alt", mode="before")
    @classmethod
    def _alt(cls, v: Any) -> str:
        if isinstance(v, str) and not v.strip():
            raise fail("alt_empty", "must describe the image for readers who cannot see it")
        return text_value(v, field="alt", max_len=500)

    _caption = _plain_text("caption", 1000, optional=True)
    _credit = _plain_text("credit", 300, optional=True)


class Contact(_Strict):
    name: str
    email: str
    phone: str | None = None

    _name = _plain_text("name", 200)

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, v: Any) -> str:
        text = text_value(v, field="email", max_len=254)
        if not EMAIL_RE.fullmatch(text):
            # the value is not repeated: receipts and log lines carry no address
            raise fail(
                "email",
                "is not a valid e-mail address (a name, an @ and a domain such as example.org)",
            )
        return text

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        text = text_value(v, field="phone", max_len=50)
        if not _PHONE_RE.match(text):
            raise fail("phone", "may contain only digits, spaces and + ( ) - . /")
        return text


class Attachment(_Strict):
    title: str
    url: str

    _url = field_validator("url", mode="before")(classmethod(lambda cls, v: url_value(v)))
    _title = _plain_text("title", 300)


class Release(_Strict):
    slug: str
    title: str
    kind: Kind
    published_at: datetime
    updated_at: datetime | None = None
    embargo_until: datetime | None = None
    summary: str | None = None
    body: str
    body_format: Literal["markdown", "html"] = "markdown"
    image: Image | None = None
    topics: tuple[Topic, ...] = ()
    contacts: tuple[Contact, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    language: str = "en"
    translation_key: str | None = None

    @field_validator("slug", mode="before")
    @classmethod
    def _slug(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise fail("slug_type", "must be text (a JSON string)")
        if len(v) > SLUG_MAX:
            raise fail("slug_long", f"must be at most {SLUG_MAX} characters")
        if not SLUG_RE.fullmatch(v):
            raise fail(
                "slug_format",
                f"{shown(v)} is not a valid slug: use lower-case letters, digits and single "
                "hyphens, e.g. 'clinics-reopen-2018'",
            )
        return v

    _title = _plain_text("title", 300)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        if v not in KIND_LABELS:
            raise fail("kind", "must be one of: " + ", ".join(KIND_LABELS))
        return v

    @field_validator("published_at", "updated_at", "embargo_until", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> datetime | None:
        return None if v is None else datetime_value(v)

    _summary = _plain_text("summary", 600, optional=True)

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise fail("body_type", "must be text (a JSON string)")
        if not v.strip():
            raise fail("body_empty", "must not be empty")
        return v

    @field_validator("body_format", mode="before")
    @classmethod
    def _body_format(cls, v: Any) -> str:
        if v not in ("markdown", "html"):
            raise fail("body_format", "must be 'markdown' or 'html'")
        return v

    @field_validator("topics", mode="before")
    @classmethod
    def _topics(cls, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list):
            raise fail("topics_type", "must be a list of topic names")
        if len(v) > MAX_TOPICS:
            raise fail("topics_many", f"may list at most {MAX_TOPICS} topics (it has {len(v)})")
        return tuple(v)

    @field_validator("topics", mode="after")
    @classmethod
    def _unique_topics(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        seen: dict[str, str] = {}
        for text in v:
            seen.setdefault(topic_slug(text), text)
        return tuple(seen.values())

    @field_validator("contacts", "attachments", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: ValidationInfo) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise fail("list_type", "must be a list")
        limit = MAX_CONTACTS if info.field_name == "contacts" else MAX_ATTACHMENTS
        if len(v) > limit:
            raise fail("list_long", f"may list at most {limit} {info.field_name} (it has {len(v)})")
        return tuple(v)

    @field_validator("translation_key", mode="before")
    @classmethod
    def _translation_key(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise fail("translation_key_type", "must be text (a JSON string)")
        if len(v) > SLUG_MAX or not SLUG_RE.fullmatch(v):
            raise fail(
                "translation_key_format",
                f"{shown(v)} is not a valid translation key: use lower-case letters, digits and "
                "single hyphens, like a slug",
            )
        return v

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> str:
        if not isinstance(v, str) or not LANG_RE.fullmatch(v):
            raise fail("language", "must be a language tag such as en, fr or pt-BR")
        return canonical_tag(v)

    @model_validator(mode="after")
    def _order(self) -> Release:
        if self.updated_at is not None and self.updated_at < self.published_at:
            raise fail("updated_before", "updated_at must not be before published_at")
        return self

    # Derived, display-oriented properties -----------------------------------
    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def url_path(self) -> str:
        return release_path(self.slug)

    def is_embargoed(self, now: datetime) -> bool:
        return self.embargo_until is not None and now < self.embargo_until

    @property
    def publication_instant(self) -> datetime:
        """When the release may become public: the later of ``published_at``
        and ``embargo_until`` (a future-dated release is scheduled, like one
        under embargo)."""
        if self.embargo_until is not None and self.embargo_until > self.published_at:
            return self.embargo_until
        return self.published_at

    def is_scheduled(self, now: datetime) -> bool:
        return now < self.publication_instant


def default_slug(name: str) -> str:
    """The slug a file name implies: ``releases/foo-bar.json`` -> ``foo-bar``."""
    base = name.rsplit("/", 1)[-1]
    return base[: -len(".json")] if base.endswith(".json") else base


def release_from_obj(
    data: Any, *, default: str | None = None, source: str = "", checked: bool = False
) -> Release:
    """Validate an already-decoded JSON value (used by the webhooks). ``checked``:
    the caller knows no string in it holds a forbidden character."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        raise InvalidRelease(
            [FieldError("(file)", f"must be a JSON object with the release fields, not a {kind}")],
            source,
        )
    problems = character_problems(data, strings=not checked)
    if problems and problems[0].loc == "(file)":
        raise InvalidRelease(problems, source)
    if "slug" not in data and default is not None:
        if SLUG_RE.fullmatch(default) and len(default) <= SLUG_MAX:
            data = {"slug": default, **data}
        else:
            problems.append(
                FieldError(
                    "slug",
                    f"the file name {default!r} is not a valid slug; rename the file "
                    '(lower-case letters, digits, hyphens) or add a "slug" field',
                )
            )
            data = {"slug": "placeholder", **data}
    try:
        release = Release.model_validate(data)
    except ValidationError as exc:
        # a field already named for its characters is not reported twice
        named = {p.loc for p in problems}
        rest = [e for e in field_errors(exc) if e.loc not in named]
        raise InvalidRelease(problems + rest, source) from None
    if problems:
        raise InvalidRelease(problems, source)
    return release


def parse_release(raw: bytes, *, name: str, size: int | None = None) -> Release:
    """Bytes of a source file (``size``: of one left unread) -> ``Release`` or ``InvalidRelease``."""
    if (size := len(raw) if size is None else size) > MAX_BYTES:
        raise InvalidRelease(
            [FieldError("(file)", f"is {size:,} bytes; a release may be at most 1 MiB")], name
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRelease(
            [FieldError("(file)", f"is not valid UTF-8 text (byte {exc.start})")], name
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except DuplicateKey as exc:
        raise InvalidRelease(
            [FieldError(field_loc((str(exc),)), "appears twice in the file")], name
        ) from None
    except RecursionError:
        # thousands of nested brackets: the decoder gives up; bad input all the same
        raise InvalidRelease(
            [FieldError("(file)", "nests lists or objects deeper than a release can")], name
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidRelease(
            [
                FieldError(
                    "(file)",
                    f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                )
            ],
            name,
        ) from None
    except ValueError:
        # the one other thing the decoder raises: an integer of more than
        # 4,300 digits, which Python refuses to convert
        raise InvalidRelease(
            [FieldError("(file)", "holds a number too long to read (more than 4,300 digits)")],
            name,
        ) from None
    # JSON text cannot hold a raw control character inside a string, and UTF-8
    # cannot hold a surrogate: without a \u, \b or \f escape or the bytes of
    # U+FFFE or U+FFFF no string can hold a forbidden character (the walk is
    # then skipped)
    checked = not any(s in raw for s in (b"\\u", b"\\b", b"\\f", b"\xef\xbf\xbe", b"\xef\xbf\xbf"))
    return release_from_obj(data, default=default_slug(name), source=name, checked=checked)


class DuplicateKey(ValueError):
    """A JSON object gives one name twice (``str``: the name)."""


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out
