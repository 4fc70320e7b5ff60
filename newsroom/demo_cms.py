"""The demo's CMS step: a two-locale Strapi 5 entry published through the
app's own webhook route, then through ``sync_release`` like any upload.

The route is the deployed Chalice handler, reached with Chalice's local HTTP
client (the request API Gateway would hand it); the webhook writes the release
files to the local source bucket, which notifies the publish queue as any
upload does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice.test import Client

if TYPE_CHECKING:
    from .demo import Demo

DEMO_TOKEN = "demo-strapi-token"


def publish_from_cms(demo: Demo) -> list[dict[str, Any]]:
    """Post every ``samples/cms/*.json`` to ``/hooks/strapi``; publish what each
    webhook wrote through the queue. Returns the publisher's receipts."""
    files = sorted((demo.samples / "cms").glob("*.json"))
    if not files:
        return []
    demo._set_env({"NEWSROOM_STRAPI_TOKEN": os.environ.get("NEWSROOM_STRAPI_TOKEN") or DEMO_TOKEN})
    token = os.environ["NEWSROOM_STRAPI_TOKEN"]
    receipts: list[dict[str, Any]] = []
    # a project folder without .chalice/config.json: the client keeps the demo's
    # environment (the dev stage's would point at real buckets)
    with (
        tempfile.TemporaryDirectory() as project,
        Client(demo._app.app, project_dir=project) as client,
    ):
        for path in files:
            resp = client.http.post(
                "/hooks/strapi",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                body=path.read_bytes(),
            )
            answer = json.loads(resp.body or b"{}")
            label = _short(path)
            if resp.status_code != 202 or answer.get("status") != "accepted":
                for e in answer.get("errors", []):
                    demo.warn(f"{label}: {e['loc']}: {e['msg']}")
                demo.warn(f"{label}: webhook answered {resp.status_code}: {answer}")
                continue
            key = answer["key"]
            demo.say(f"cms: strapi webhook ({answer.get('locale', '-')}) wrote {key}")
            for receipt in demo.publish([], [key]):
                demo.report(receipt, label)
                receipts.append(receipt)
    return receipts


def _short(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"
