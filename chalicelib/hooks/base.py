"""What a CMS module provides: the interface every ``hooks/cms/<name>.py`` implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..settings import Settings
from .mapping import Change, CmsMap
from .verify import Signed, require_secret


@dataclass(frozen=True)
class Request:
    """A webhook request as the route received it (header names lower-cased)."""

    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    paths: list[str] = field(default_factory=list)  # with and without the stage prefix


class Cms:
    """One CMS: how its requests are verified and its entries read.

    ``verify`` proves the request genuine and says where it stands in time
    (``Signed``); ``changes`` turns the verified, decoded body into one
    ``Change`` per language version. Only signed data may decide the action.
    """

    name: ClassVar[str]
    secret_setting: ClassVar[str]  # the environment variable holding the secret
    secret_field: ClassVar[str]  # the same, as a field of ``Settings``
    # departures from mapping.DEFAULT_FIELDS; None: the release field is not read.
    # A CMS without a field map (the generic webhook) sets ``mapped = False``.
    field_defaults: ClassVar[dict[str, str | None]] = {}
    mapped: ClassVar[bool] = True

    def secret(self, settings: Settings) -> str:
        """The configured secret; ``NotConfigured`` (401) when it is empty. Line
        breaks around it are not part of it: a secret read from a file (Terraform's
        ``file()``) keeps the file's last line feed, which no CMS signs with."""
        value = str(getattr(settings, self.secret_field)).strip("\r\n")
        require_secret(value, self.secret_setting)
        return value

    def verify(self, request: Request, secret: str, now: float) -> Signed:
        raise NotImplementedError

    def changes(self, data: Any, request: Request, cmap: CmsMap | None) -> list[Change]:
        raise NotImplementedError

    def image(self, value: Any, src: str, cmap: CmsMap) -> Any:
        """The URL of an image value in this CMS's shape (lead image or inside
        rich text); plain text is taken as the URL."""
        if isinstance(value, dict):
            return value.get("url")
        return value
