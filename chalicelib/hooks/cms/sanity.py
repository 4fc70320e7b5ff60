"""Sanity: GROQ-powered webhooks, Portable Text, image assets, translations.

Verification (``@sanity/webhook``): ``sanity-webhook-signature: t=<ms>,v1=<sig>``
where ``sig`` is the unpadded base64url HMAC-SHA256 of ``"<t>.<body>"``.

Only the body is signed, so only the body decides the action: the projection's
``"operation": delta::operation()``. Without it every request is a create or
update; a ``sanity-operation: delete`` header alone is refused (422) rather than
trusted, since anyone replaying a signed update could add that header.

Translations (document-internationalization): each language is its own document
(its own ``_id``) with a ``language`` field; the documents of one translation
share the metadata document that the projection names as ``translationKey``
(``*[_type == "translation.metadata" && references(^._id)][0]._id``). The
plugin's first version (``__i18n_lang``, ``__i18n_base``) is understood too.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from .. import verify
from ..base import Cms, Request
from ..mapping import (
    Change,
    CmsMap,
    build_document,
    entry_id,
    filtered,
    invalid,
    translation_key,
    walk,
)

HEADER = "sanity-webhook-signature"
MIN_TIMESTAMP_MS = 1609459200000  # Sanity signs nothing dated before 2021
_HEADER_RE = re.compile(r"^t=([^, ]+)[, ]+v1=([^, ]+)$")
_ASSET_RE = re.compile(r"image-([A-Za-z0-9]+)-(\d+x\d+)-([a-z0-9]+)")
_I18N_SUFFIX = re.compile(r"__i18n_[A-Za-z0-9_-]+$")


def signature(body: bytes, timestamp_ms: int, secret: str) -> str:
    digest = verify.hmac_sha256(secret, str(timestamp_ms).encode("ascii") + b"." + body)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def asset_url(ref: str, project: str, dataset: str) -> str | None:
    """``image-<id>-<w>x<h>-<ext>`` -> ``cdn.sanity.io/images/<p>/<d>/<id>-<w>x<h>.<ext>``."""
    match = _ASSET_RE.fullmatch(ref)
    if not match or not project or not dataset:
        return None
    asset, size, ext = match.groups()
    return f"https://cdn.sanity.io/images/{project}/{dataset}/{asset}-{size}.{ext}"


class Sanity(Cms):
    name = "sanity"
    secret_setting = "NEWSROOM_SANITY_SECRET"
    secret_field = "sanity_secret"

    def verify(self, request: Request, secret: str, now: float) -> verify.Signed:
        value = verify.require(request.headers, HEADER)
        match = _HEADER_RE.match(value.strip())
        if not match:
            raise verify.MalformedHeader(f"{HEADER} must look like t=<ms>,v1=<base64url>")
        ts = verify.signed_millis(
            match.group(1), f"{HEADER} t (milliseconds)", now, earliest=MIN_TIMESTAMP_MS
        )
        if not verify.any_equal(signature(request.body, ts, secret), [match.group(2)]):
            raise verify.BadSignature("signature does not match the body and secret")
        return verify.Signed(order=ts, digest=verify.digest_of(match.group(2)))

    def changes(self, data: Any, request: Request, cmap: CmsMap | None) -> list[Change]:
        assert cmap is not None
        if not isinstance(data, dict):
            raise invalid("(file)", "must be a JSON object (the webhook projection)")
        doc_id = data.get("_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise invalid("_id", "is required: include _id in the webhook projection")
        if doc_id.startswith(("drafts.", "versions.")):
            return [Change("ignore", reason="drafts and release versions are not published")]
        skip = filtered(cmap, data.get("_type"))
        if skip:
            return [Change("ignore", reason=skip)]
        operation = data.get("operation")
        if operation is None:
            if request.headers.get("sanity-operation", "").strip() == "delete":
                raise invalid(
                    "operation",
                    'a delete must be signed: add "operation": delta::operation() to the '
                    "webhook projection (the sanity-operation header is not signed)",
                )
            operation = "update"
        if operation not in ("create", "update", "delete"):
            raise invalid("operation", "must be create, update or delete")
        ref = entry_id("sanity", doc_id)
        if operation == "delete":
            return [Change("unpublish", entry=ref, subject=ref)]
        fallbacks: dict[str, Any] = {"published_at": data.get("_createdAt")}
        lang = data.get("__i18n_lang")
        if isinstance(lang, str) and lang:  # document-internationalization 1.x
            fallbacks["language"] = lang
            base = walk(data, ["__i18n_base", "_ref"]) or _I18N_SUFFIX.sub("", doc_id)
            fallbacks["translation_key"] = base
        doc, sources = build_document(
            lambda path: walk(data, path.split(".")),
            cmap,
            fallbacks=fallbacks,
            image=self._image,
        )
        if "translation_key" in doc:
            doc["translation_key"] = translation_key("sanity", doc["translation_key"])
        return [
            Change(
                "publish",
                document=doc,
                sources=sources,
                entry=ref,
                subject=ref,
                published_now=data.get("_updatedAt") or "",
            )
        ]

    def _image(self, value: Any, src: str, cmap: CmsMap) -> Any:
        """The image's URL, from signed data only: the body's ``url`` (the
        projection ``asset->{url}``), or an asset reference resolved with the
        field map's ``project_id`` and ``dataset``. Never from the request's
        unsigned ``sanity-project-id``/``sanity-dataset`` headers: a replayed
        request with other headers would point the image at another project."""
        if not isinstance(value, dict):
            return value
        url = value.get("url")
        asset = value.get("asset")
        if url is None and isinstance(asset, dict):
            url = asset.get("url")
            ref = asset.get("_ref")
            if url is None and isinstance(ref, str):
                project, dataset = cmap.options["project_id"], cmap.options["dataset"]
                loc = "body" if src == "body" else "image"
                if not _ASSET_RE.fullmatch(ref):
                    raise invalid(
                        loc,
                        f"CMS field '{src}' refers to {ref!r}, which is not an image asset "
                        "(image-<id>-<width>x<height>-<format>); choose an image",
                    )
                if not project or not dataset:
                    raise invalid(
                        loc,
                        f"CMS field '{src}' holds an image asset reference ({ref}) and the "
                        "newsroom does not know the Sanity project it belongs to: set "
                        '"project_id" and "dataset" under "sanity" in NEWSROOM_CMS_FIELD_MAP, '
                        "or project the image URL in the webhook (asset->{url})",
                    )
                url = asset_url(ref, project, dataset)
        return url


CMS = Sanity()
