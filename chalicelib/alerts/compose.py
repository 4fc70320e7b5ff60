"""What subscribers read: the alert and confirmation e-mails and the pages of
the subscription links, rendered from Jinja2 templates.

The e-mails use their own templates (``alerts/templates``: a plain-text and an
HTML part each, inline styles as mail clients need). The pages extend the
site's ``base.html`` through the site's renderer, so they wear the site's
theme; they are served by the API, so their stylesheet is linked by absolute
URL and they tell browsers to send no referrer (the URL holds a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ..core.i18n import is_rtl
from ..core.model import KIND_LABELS, KIND_PLURALS
from ..core.text import display_date
from ..settings import Settings
from .mail import OutgoingMail

MAIL_TEMPLATES = Path(__file__).resolve().parent / "templates"
CONFIRM_VALID_DAYS = 7


def subscription_link(base_url: str, path: str, token: str) -> str:
    """``<API>/subscriptions/<path>?token=…``: the one shape of the links in
    e-mails, pages and ``List-Unsubscribe``."""
    return f"{base_url}/subscriptions/{path}?token={quote(token, safe='')}"


def scope_text(
    topics: list[str], kinds: list[str], topic_names: dict[str, str] | None = None
) -> str:
    """``every release`` or e.g. ``Reports and Statements about Clean Water``."""
    names = topic_names or {}
    what = " and ".join(KIND_PLURALS.get(k, k) for k in kinds) if kinds else "every release"
    if topics:
        what += " about " + ", ".join(names.get(t, t.replace("-", " ")) for t in topics)
    return what


@dataclass(frozen=True)
class Page:
    status: int
    html: str


class Composer:
    def __init__(self, settings: Settings, site_env: Environment | None = None) -> None:
        self.settings = settings
        self.mail_env = Environment(
            loader=FileSystemLoader(str(MAIL_TEMPLATES)),
            autoescape=select_autoescape(["html"], default_for_string=False, default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._site_env = site_env

    @property
    def site_env(self) -> Environment:
        if self._site_env is None:
            from ..core.render import Renderer

            renderer = Renderer(self.settings)
            env = renderer.env.overlay()
            # served from the API's host: the stylesheet by absolute URL
            env.globals["stylesheet"] = self.settings.site_url + "/" + renderer.stylesheet_key
            self._site_env = env
        return self._site_env

    # e-mails
    def _site(self) -> dict[str, str]:
        return {"title": self.settings.site_title, "url": self.settings.site_url}

    def _mail(
        self,
        to: str,
        subject: str,
        template: str,
        ctx: dict[str, Any],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> OutgoingMail:
        """Both parts of one e-mail, from ``<template>.txt`` and ``<template>.html``."""
        ctx = {"site": self._site(), **ctx}
        return OutgoingMail(
            to=to,
            subject=subject,
            text=self.mail_env.get_template(f"{template}.txt").render(ctx),
            html=self.mail_env.get_template(f"{template}.html").render(ctx),
            headers=headers,
        )

    def confirmation(self, to: str, confirm_url: str, scope: str) -> OutgoingMail:
        ctx = {"confirm_url": confirm_url, "scope": scope, "valid_days": CONFIRM_VALID_DAYS}
        subject = f"Confirm your subscription to {self.settings.site_title}"
        return self._mail(to, subject, "confirm", ctx)

    def alert(
        self, to: str, release: dict[str, Any], unsubscribe_url: str, scope: str
    ) -> OutgoingMail:
        published = datetime.fromisoformat(release["published_at"])
        view = {
            **release,
            "kind_label": release.get("kind_label")
            or KIND_LABELS.get(release["kind"], release["kind"]),
            "summary": release.get("summary") or "",
            "image": {"alt": "", "caption": "", "credit": "", **release["image"]}
            if release.get("image")
            else None,
        }
        ctx = {
            "release": view,
            "date": display_date(published),
            "unsubscribe_url": unsubscribe_url,
            "scope": scope,
            # the e-mail's words are English; the release's own text keeps its direction
            "dir": "rtl" if is_rtl(release.get("language") or "en") else "ltr",
        }
        headers = (
            ("List-Unsubscribe", f"<{unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
        # a title may hold line breaks; a header must be one line (a break in
        # it would end the Subject and begin another header)
        subject = " ".join(f"{view['kind_label']}: {release['title']}".split())
        return self._mail(to, subject, "alert", ctx, headers)

    # pages
    def page(
        self,
        status: int,
        heading: str,
        *lines: str,
        button: dict[str, str] | None = None,
    ) -> Page:
        html = self.site_env.get_template("subscription.html").render(
            heading=heading, lines=list(lines), button=button
        )
        return Page(status, html)
