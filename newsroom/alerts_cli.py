"""Staff and operator commands for e-mail alerts (docs/alerts.md)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from chalicelib.errors import ConfigurationError, StorageError
from chalicelib.settings import Settings

CONFIG = Path(".chalice") / "config.json"


def _counts(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (not kv[0].startswith("("), -kv[1], kv[0]))
    return ", ".join(f"{k} {n}" for k, n in ordered) or "none"


@click.command("subscribers")
@click.option("--table", default=None, help="Subscribers table [NEWSROOM_SUBSCRIBERS_TABLE].")
@click.option(
    "--export",
    "export",
    is_flag=True,
    help="Print every address still held, as CSV (operators with table access only).",
)
@click.option("--json", "as_json", is_flag=True, help="Counts as one JSON object.")
def subscribers(table: str | None, export: bool, as_json: bool) -> None:
    """Counts of subscribers by state, topic and kind; addresses only with --export."""
    from chalicelib import service
    from chalicelib.alerts.store import SubscriberStore

    name = table or Settings.from_env().subscribers_table
    if not name:
        raise click.UsageError("no table: pass --table or set NEWSROOM_SUBSCRIBERS_TABLE")
    store = SubscriberStore(service.aws_client("dynamodb"), name)
    try:
        if export:
            out = csv.writer(sys.stdout)
            out.writerow(["email", "state", "topics", "kinds", "confirmed_at"])
            for row in store.export():
                out.writerow(
                    [row["email"], row["state"], " ".join(row["topics"]), " ".join(row["kinds"]),
                     row["confirmed_at"] or ""]
                )  # fmt: skip
            return
        summary = store.summary()
        summary["unsettled_sends"] = store.unsettled_sends()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    states = summary["states"]
    click.echo(
        f"subscribers: {states.get('active', 0)} active, {states.get('pending', 0)} pending, "
        f"{states.get('gone', 0)} gone"
    )
    click.echo(f"by topic (active): {_counts(summary['topics'])}")
    click.echo(f"by kind (active): {_counts(summary['kinds'])}")
    click.echo(f"alerts cut off before SES: {summary['unsettled_sends']}")


@click.command("api-throttling")
@click.option("--stage", required=True, help="Chalice stage whose limits to apply.")
@click.option(
    "--config",
    "config_path",
    default=str(CONFIG),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--rest-api-id", default=None, help="Default: the one REST API named 'newsroom'.")
@click.option("--dry-run", is_flag=True, help="Print the patch operations; change nothing.")
def api_throttling(stage: str, config_path: Path, rest_api_id: str | None, dry_run: bool) -> None:
    """Apply the stage's api_gateway_throttling limits to the deployed API stage."""
    from chalicelib import service

    from .api_throttling import ThrottlingError, apply, patch_operations, stage_limits
    from .api_throttling import rest_api_id as find_api

    try:
        limits, api_stage = stage_limits(config_path, stage)
        ops = patch_operations(limits)
        if dry_run:
            for op in ops:
                click.echo(f"{op['path']} = {op['value']}")
            return
        client = service.aws_client("apigateway")
        api_id = rest_api_id or find_api(client, "newsroom")
        settings = apply(client, limits, api_stage, api_id)
    except (ThrottlingError, ConfigurationError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for key, value in sorted(settings.items()):
        click.echo(
            f"{key}: rate {value.get('throttlingRateLimit')}/s, burst {value.get('throttlingBurstLimit')}"
        )
