"""``newsroom api-throttling``: API Gateway method throttles from the stage config.

Chalice has no setting for throttling, so the limits live in the stage's
``.chalice/config.json`` under ``api_gateway_throttling`` and this applies
them to the deployed stage with ``apigateway update-stage``::

    "api_gateway_throttling": {
      "*/*": {"rate_limit": 50, "burst_limit": 100},
      "/subscriptions/POST": {"rate_limit": 2, "burst_limit": 5}
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ThrottlingError(ValueError):
    pass


def stage_limits(config_path: Path, stage: str) -> tuple[dict[str, Any], str]:
    """The stage's throttling limits and its API Gateway stage name."""
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    stages = config.get("stages", {})
    if stage not in stages:
        raise ThrottlingError(f"{config_path}: no stage {stage!r}")
    limits = stages[stage].get("api_gateway_throttling") or config.get("api_gateway_throttling")
    if not limits:
        raise ThrottlingError(f"{config_path}: stage {stage!r} has no api_gateway_throttling")
    api_stage = stages[stage].get("api_gateway_stage") or config.get("api_gateway_stage") or "api"
    return limits, api_stage


def patch_operations(limits: dict[str, Any]) -> list[dict[str, str]]:
    """``{"/subscriptions/POST": {"rate_limit": 2, "burst_limit": 5}}`` as
    update-stage patch operations (``/~1subscriptions/POST/throttling/rateLimit``)."""
    ops = []
    for key, limit in limits.items():
        if key == "*/*":
            target = "/*/*"
        else:
            resource, _, method = key.rpartition("/")
            if not resource.startswith("/") or method.upper() not in (
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "*",
            ):  # fmt: skip
                raise ThrottlingError(f"api_gateway_throttling: {key!r} is not '<path>/<METHOD>'")
            target = "/" + resource.replace("~", "~0").replace("/", "~1") + "/" + method.upper()
        try:
            rate, burst = float(limit["rate_limit"]), int(limit["burst_limit"])
        except (KeyError, TypeError, ValueError):
            raise ThrottlingError(
                f"api_gateway_throttling: {key!r} needs numeric rate_limit and burst_limit"
            ) from None
        ops.append({"op": "replace", "path": f"{target}/throttling/rateLimit", "value": str(rate)})
        ops.append(
            {"op": "replace", "path": f"{target}/throttling/burstLimit", "value": str(burst)}
        )
    return ops


def rest_api_id(client: Any, name: str) -> str:
    found = [
        api["id"]
        for page in client.get_paginator("get_rest_apis").paginate()
        for api in page.get("items", [])
        if api.get("name") == name
    ]
    if len(found) != 1:
        raise ThrottlingError(f"expected one REST API named {name!r}, found {len(found)}")
    return found[0]


def apply(client: Any, limits: dict[str, Any], stage_name: str, api_id: str) -> dict[str, Any]:
    """Set the limits on the deployed stage; the stage's method settings after it."""
    stage = client.update_stage(
        restApiId=api_id, stageName=stage_name, patchOperations=patch_operations(limits)
    )
    return stage.get("methodSettings", {})
