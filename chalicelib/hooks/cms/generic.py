"""The generic webhook: a signed release (format version 1) plus ``"action"``.

``X-Newsroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("<t>.<body>")>``;
several ``v1`` values are allowed (a sender rotating secrets). The release is
written as sent, like an upload, under ``releases/<slug>.json``; the order and
replay of requests are kept per slug.
"""

from __future__ import annotations

from typing import Any

from ... import keys
from ...core.model import SLUG_MAX, SLUG_RE
from ...core.text import shown
from .. import verify
from ..base import Cms, Request
from ..mapping import Change, CmsMap, invalid

HEADER = "x-newsroom-signature"


class Generic(Cms):
    name = "generic"
    secret_setting = "NEWSROOM_WEBHOOK_SECRET"
    secret_field = "webhook_secret"
    mapped = False

    def verify(self, request: Request, secret: str, now: float) -> verify.Signed:
        value = verify.require(request.headers, HEADER)
        stamp = ""
        candidates: list[str] = []
        for part in value.split(","):
            key, sep, item = part.strip().partition("=")
            if not sep:
                continue
            if key == "t":
                stamp = item.strip()
            elif key == "v1":
                candidates.append(item.strip().lower())
        if not stamp or not candidates:
            raise verify.MalformedHeader(
                "X-Newsroom-Signature must look like t=<unix seconds>,v1=<hex>"
            )
        t = verify.timestamp(stamp, "X-Newsroom-Signature t (unix seconds)")
        if t >= verify.UNIT_SPLIT:
            raise verify.MalformedHeader(
                "X-Newsroom-Signature t must be in seconds; this one is in milliseconds"
            )
        verify.check_window(t, now)
        expected = verify.hmac_sha256(secret, stamp.encode("ascii") + b"." + request.body).hex()
        if not verify.any_equal(expected, candidates):
            raise verify.BadSignature("signature does not match the body and secret")
        return verify.Signed(order=t * 1000, digest=verify.digest_of(stamp, request.body))

    def changes(self, data: Any, request: Request, cmap: CmsMap | None) -> list[Change]:
        if not isinstance(data, dict):
            raise invalid("(file)", 'must be a JSON object: a release plus "action"')
        action = data.get("action")
        if action not in ("publish", "unpublish"):
            raise invalid("action", 'must be "publish" or "unpublish"')
        document = {k: v for k, v in data.items() if k != "action"}
        slug = document.get("slug")
        if slug is None:
            raise invalid("slug", "is required (it names the file releases/<slug>.json)")
        if not isinstance(slug, str) or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
            raise invalid(
                "slug",
                f"{shown(slug) if isinstance(slug, str) else repr(slug)} is not a valid slug: "
                "use lower-case letters, digits and single hyphens",
            )
        key = keys.source_key(slug)
        subject = f"generic/{slug}"
        if action == "unpublish":
            return [Change("unpublish", key, subject=subject)]
        return [Change("publish", key, document, subject=subject)]


CMS = Generic()
