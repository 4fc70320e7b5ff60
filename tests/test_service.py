"""The handlers' cached services: one client per endpoint for as long as a
service holds it, and ``reset()`` forgetting them all."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import service


def test_a_cached_service_keeps_the_client_the_getter_gives(
    alerts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hooks on service.aws_client("sesv2") (the demo's outbox) must see the
    # mail the alert services send, however many other clients came since
    first = service.alert_sender().mailer.client
    for port in range(20):
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{9000 + port}")
        service.aws_client("sqs")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    assert service.aws_client("sesv2") is first
    assert service.alert_sender().mailer.client is first


def test_reset_builds_every_client_and_service_again(alerts: str, app_module: Any) -> None:
    publisher, hooks, s3 = service.publisher(), service.hooks(), service.s3_client()
    sender, search = service.alert_sender(), service.search_updater()
    assert service.publisher() is publisher and service.s3_client() is s3

    service.reset()

    assert service.s3_client() is not s3
    assert service.publisher() is not publisher
    assert service.hooks() is not hooks
    assert service.alert_sender().mailer is not sender.mailer
    assert service.search_updater() is not search
    # and the new ones work
    assert service.publisher().public.client is service.s3_client()
