"""One typed settings object, read once from the environment and passed down.

Every field has a default so ``import app`` works without AWS configuration;
the Lambda-only requirements (bucket names) are checked where a service that
needs them is built, not at import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigurationError


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _image_url(raw: str) -> str:
    url = raw.strip()
    if url and not (
        url.startswith("https://") or (url.startswith("/") and not url.startswith("//"))
    ):
        raise ConfigurationError(
            f"NEWSROOM_DEFAULT_IMAGE must start with https:// or /, got {url!r}"
        )
    return url


def _language(raw: str) -> str:
    tag = raw.strip() or "en"
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", tag):
        raise ConfigurationError(
            f"NEWSROOM_LANGUAGE must be a language tag such as en, fr or pt-BR, got {raw!r}"
        )
    return tag


def _timezone(raw: str) -> str:
    name = raw.strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"NEWSROOM_TIMEZONE must be an IANA time zone such as UTC or Europe/Paris, got {name!r}"
        ) from None
    return name


@dataclass(frozen=True)
class Settings:
    source_bucket: str = ""
    public_bucket: str = ""
    site_url: str = "http://127.0.0.1:8000"
    site_title: str = "Newsroom"
    page_size: int = 12
    distribution_id: str = ""
    organisation: str = "Newsroom"
    intro: str = "News, statements and reports from our press office."
    press_email: str = ""
    press_phone: str = ""
    feed_size: int = 20
    webhook_secret: str = ""
    contentful_secret: str = ""
    sanity_secret: str = ""
    strapi_token: str = ""
    default_image: str = ""
    cms_field_map: str = ""  # JSON, see chalicelib/hooks/mapping.py and docs/cms.md
    language: str = "en"  # site-wide pages (front, archives, topics); docs/languages.md
    queue: str = "newsroom-publish"  # the publish queue sync_release consumes
    # the rebuild queue render_releases consumes (docs/operations.md, rebuilds)
    rebuild_queue: str = "newsroom-rebuild"
    rebuild_chunk_size: int = 200  # source keys per render message
    rebuild_concurrency: int = 50  # render_releases invocations at once (2-1000)
    timezone: str = "UTC"  # for CMS date fields without an offset (docs/cms.md)
    # e-mail alerts (docs/alerts.md)
    alert_queue: str = ""  # empty: no alert is queued
    subscribers_table: str = ""
    mail_from: str = ""
    api_url: str = ""  # empty: the sign-up form posts to the site's own /subscriptions
    alert_secret: str = ""  # keys the address hashes and signs the links
    ses_configuration_set: str = ""
    mail_feedback_topic: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        site_title = env.get("NEWSROOM_SITE_TITLE", "").strip() or "Newsroom"
        return cls(
            source_bucket=env.get("NEWSROOM_SOURCE_BUCKET", "").strip(),
            public_bucket=env.get("NEWSROOM_PUBLIC_BUCKET", "").strip(),
            site_url=(env.get("NEWSROOM_SITE_URL", "").strip() or cls.site_url).rstrip("/"),
            site_title=site_title,
            page_size=_int(env, "NEWSROOM_PAGE_SIZE", 12),
            distribution_id=env.get("NEWSROOM_DISTRIBUTION_ID", "").strip(),
            organisation=env.get("NEWSROOM_ORGANISATION", "").strip() or site_title,
            intro=env.get("NEWSROOM_INTRO", "").strip() or cls.intro,
            press_email=env.get("NEWSROOM_PRESS_EMAIL", "").strip(),
            press_phone=env.get("NEWSROOM_PRESS_PHONE", "").strip(),
            feed_size=_int(env, "NEWSROOM_FEED_SIZE", 20),
            webhook_secret=env.get("NEWSROOM_WEBHOOK_SECRET", ""),
            contentful_secret=env.get("NEWSROOM_CONTENTFUL_SECRET", ""),
            sanity_secret=env.get("NEWSROOM_SANITY_SECRET", ""),
            strapi_token=env.get("NEWSROOM_STRAPI_TOKEN", ""),
            default_image=_image_url(env.get("NEWSROOM_DEFAULT_IMAGE", "")),
            cms_field_map=env.get("NEWSROOM_CMS_FIELD_MAP", "").strip(),
            language=_language(env.get("NEWSROOM_LANGUAGE", "")),
            queue=env.get("NEWSROOM_QUEUE", "").strip() or cls.queue,
            rebuild_queue=env.get("NEWSROOM_REBUILD_QUEUE", "").strip() or cls.rebuild_queue,
            rebuild_chunk_size=_int(env, "NEWSROOM_REBUILD_CHUNK_SIZE", cls.rebuild_chunk_size),
            rebuild_concurrency=_int(
                env, "NEWSROOM_REBUILD_CONCURRENCY", cls.rebuild_concurrency, minimum=2
            ),
            timezone=_timezone(env.get("NEWSROOM_TIMEZONE", "")),
            alert_queue=env.get("NEWSROOM_ALERT_QUEUE", "").strip(),
            subscribers_table=env.get("NEWSROOM_SUBSCRIBERS_TABLE", "").strip(),
            mail_from=env.get("NEWSROOM_MAIL_FROM", "").strip(),
            api_url=env.get("NEWSROOM_API_URL", "").strip().rstrip("/"),
            alert_secret=env.get("NEWSROOM_ALERT_SECRET", ""),
            ses_configuration_set=env.get("NEWSROOM_SES_CONFIGURATION_SET", "").strip(),
            mail_feedback_topic=env.get("NEWSROOM_MAIL_FEEDBACK_TOPIC", "").strip(),
        )

    def require_buckets(self) -> Settings:
        missing = [
            name
            for name, value in (
                ("NEWSROOM_SOURCE_BUCKET", self.source_bucket),
                ("NEWSROOM_PUBLIC_BUCKET", self.public_bucket),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"missing setting(s): {', '.join(missing)}")
        return self

    def require_alerts(self) -> Settings:
        """The settings every subscription and alert service needs (Lambda)."""
        missing = [
            name
            for name, value in (
                ("NEWSROOM_SUBSCRIBERS_TABLE", self.subscribers_table),
                ("NEWSROOM_MAIL_FROM", self.mail_from),
                ("NEWSROOM_ALERT_SECRET", self.alert_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"missing setting(s): {', '.join(missing)}")
        if len(self.alert_secret) < 16:
            raise ConfigurationError("NEWSROOM_ALERT_SECRET must be at least 16 characters")
        return self

    @property
    def links_url(self) -> str:
        """Absolute base of the subscription links in e-mails and pages."""
        return self.api_url or self.site_url

    def with_site_url(self, url: str | None) -> Settings:
        return self if not url else replace(self, site_url=url.rstrip("/"))
