"""A CloudFront refresh that keeps failing does not fail the publish."""

from __future__ import annotations

from support import log_docs, make_release, public_tree, publish, receipt


def test_lasting_invalidation_failure_is_a_receipt_warning_not_a_retry(
    app_module, aws, monkeypatch, caplog
) -> None:
    # a distribution id that does not exist: every create_invalidation fails
    monkeypatch.setenv("NEWSROOM_DISTRIBUTION_ID", "E0000NOSUCHDIST")
    out = publish(app_module, aws, "releases/clinics.json", make_release())
    assert out == {"batchItemFailures": []}
    assert receipt(aws, "releases/clinics.json")["status"] == "published"
    r = receipt(aws, "releases/clinics.json")
    assert r["status"] == "published"
    (warning,) = [w for w in r["warnings"] if w["loc"] == "(site)"]
    assert "CloudFront" in warning["msg"]
    assert "/releases/clinics/" in r["changed"] and "/index.json" in r["changed"]
    assert "releases/clinics/index.html" in public_tree(aws)
    failures = log_docs(caplog.records, "invalidation_failed")
    assert failures and failures[0]["source_key"] == "releases/clinics.json"
