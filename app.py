"""Chalice entry points: thin adapters from AWS events to ``chalicelib`` services."""

import logging
import os

from chalice import Chalice, Rate, Response

from chalicelib import media, service
from chalicelib.events import s3_keys
from chalicelib.logs import configure_logging

app = Chalice(app_name="newsroom")
configure_logging(logging.INFO)  # one bare JSON object per line on stdout -> CloudWatch

SOURCE_BUCKET = os.environ.get("NEWSROOM_SOURCE_BUCKET", "newsroom-source")


@app.on_s3_event(
    bucket=SOURCE_BUCKET,
    events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    prefix="releases/",
    suffix=".json",
)
def sync_release(event):
    """Converge the public site to the current state of each key in the event."""
    publisher = service.publisher()
    receipts = [publisher.sync(key) for key in s3_keys(event.to_dict())]
    return [r.to_json() for r in receipts]


@app.on_s3_event(
    bucket=SOURCE_BUCKET,
    events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    prefix="media/",
)
def sync_media(event):
    """Copy (or remove) each changed media file into the public bucket's media/."""
    sync = media.service()
    return [sync.sync(key).to_json() for key in s3_keys(event.to_dict())]


@app.schedule(Rate(5, unit=Rate.MINUTES))
def publish_due_releases(event):
    """Publish releases whose embargo has passed (idempotent if runs overlap)."""
    return [r.to_json() for r in service.publisher().publish_due()]


@app.schedule(Rate(5, unit=Rate.MINUTES))
def update_search(event):
    """Rebuild the search bundle when the site changed since the last run."""
    return service.search_updater().run().to_json()


# CMS webhooks (docs/cms.md): verify, map the entry, write or delete releases/<name>.json.
HOOK_CONTENT_TYPES = ["application/json", "application/vnd.contentful.management.v1+json"]


def _hook(cms):
    req = app.current_request
    paths = [req.context.get("path", ""), req.context.get("resourcePath", "")]
    status, body = service.hooks().handle(
        cms, dict(req.headers), req.raw_body or b"", method=req.method, paths=paths
    )
    return Response(body=body, status_code=status)


@app.route("/hooks/generic", methods=["POST"], content_types=HOOK_CONTENT_TYPES)
def hook_generic():
    return _hook("generic")


@app.route("/hooks/contentful", methods=["POST"], content_types=HOOK_CONTENT_TYPES)
def hook_contentful():
    return _hook("contentful")


@app.route("/hooks/sanity", methods=["POST"], content_types=HOOK_CONTENT_TYPES)
def hook_sanity():
    return _hook("sanity")


@app.route("/hooks/strapi", methods=["POST"], content_types=HOOK_CONTENT_TYPES)
def hook_strapi():
    return _hook("strapi")
