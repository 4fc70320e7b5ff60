"""``newsroom subscribers`` and ``newsroom api-throttling`` on moto."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from alerts_support import Outbox, subscribe
from chalice.test import Client
from click.testing import CliRunner

from newsroom.api_throttling import ThrottlingError, patch_operations
from newsroom.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_counts_without_addresses_and_export_with_them(client: Client, outbox: Outbox) -> None:
    subscribe(client, outbox, "one@example.org")
    subscribe(
        client, outbox, "two@example.org", topics=["Clean Water"], kinds=["report", "statement"]
    )
    subscribe(client, outbox, "three@example.org", confirm=False)
    result = CliRunner().invoke(main, ["subscribers"])
    assert result.exit_code == 0, result.output
    assert "@" not in result.output
    assert "subscribers: 2 active, 1 pending, 0 gone" in result.output
    assert "(every topic) 1, clean-water 1" in result.output
    assert "(every kind) 1, report 1, statement 1" in result.output
    assert "alerts cut off before SES: 0" in result.output

    as_json = json.loads(CliRunner().invoke(main, ["subscribers", "--json"]).output)
    assert as_json["states"] == {"active": 2, "pending": 1}

    exported = CliRunner().invoke(main, ["subscribers", "--export"])
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert sorted(r["email"] for r in rows) == [
        "one@example.org",
        "three@example.org",
        "two@example.org",
    ]
    assert {r["email"]: r["topics"] for r in rows}["two@example.org"] == "clean-water"


def test_subscribers_needs_a_table(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["subscribers"])
    assert result.exit_code == 2 and "NEWSROOM_SUBSCRIBERS_TABLE" in result.output


def test_api_throttling_applies_the_stage_limits(aws: Any) -> None:
    apigw = boto3.client("apigateway", region_name="us-east-1")
    api = apigw.create_rest_api(name="newsroom")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    res = apigw.create_resource(restApiId=api, parentId=root, pathPart="subscriptions")["id"]
    apigw.put_method(restApiId=api, resourceId=res, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=res, httpMethod="POST", type="MOCK")
    apigw.create_deployment(restApiId=api, stageName="api")
    config = str(ROOT / ".chalice" / "config.json")
    result = CliRunner().invoke(main, ["api-throttling", "--stage", "prod", "--config", config])
    assert result.exit_code == 0, result.output
    settings = apigw.get_stage(restApiId=api, stageName="api")["methodSettings"]
    assert settings["~1subscriptions/POST"]["throttlingRateLimit"] == 2.0
    assert settings["~1subscriptions/POST"]["throttlingBurstLimit"] == 5
    assert settings["*/*"]["throttlingRateLimit"] == 50.0


def test_api_throttling_dry_run_and_bad_limits(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "api-throttling",
            "--stage",
            "dev",
            "--dry-run",
            "--config",
            str(ROOT / ".chalice" / "config.json"),
        ],
    )
    assert result.exit_code == 0
    assert "/~1subscriptions/POST/throttling/rateLimit = 2.0" in result.output
    with pytest.raises(ThrottlingError, match="rate_limit"):
        patch_operations({"/subscriptions/POST": {"rate_limit": "fast"}})
    with pytest.raises(ThrottlingError, match="<METHOD>"):
        patch_operations({"subscriptions": {"rate_limit": 1, "burst_limit": 1}})
    missing = CliRunner().invoke(
        main,
        ["api-throttling", "--stage", "qa", "--config", str(ROOT / ".chalice" / "config.json")],
    )
    assert missing.exit_code == 1 and "no stage 'qa'" in missing.output
