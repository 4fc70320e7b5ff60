"""Checks of the deployment artefacts: CloudFormation template, IAM policies,
chalice stage configuration and the CloudFront Function.

Nothing here talks to AWS. cfn-lint (dev extra) lints the template; node, when
installed, runs the CloudFront Function code against sample URIs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "newsroom.yaml"
CHALICE_DIR = ROOT / ".chalice"
CONFIG = CHALICE_DIR / "config.json"
STAGES = ("dev", "prod")

# Managed CloudFront cache policy "CachingOptimized".
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


# --------------------------------------------------------------- helpers
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long form."""


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_name}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def references(value: Any) -> set[str]:
    """Logical ids a value points at through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(as_list(inner)[0].split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                found.update(references(inner))
            else:
                found.update(references(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(references(inner))
    return found


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def buckets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = resources_of_type(template, "AWS::S3::Bucket")
    assert set(found) == {"SourceBucket", "PublicBucket"}
    return found


@pytest.fixture(scope="module")
def distribution_config(template: dict[str, Any]) -> dict[str, Any]:
    dists = resources_of_type(template, "AWS::CloudFront::Distribution")
    assert list(dists) == ["Distribution"]
    return dists["Distribution"]["Properties"]["DistributionConfig"]


# ------------------------------------------------------------- cfn-lint
def test_cfn_lint_is_clean() -> None:
    if importlib.util.find_spec("cfnlint") is None:
        pytest.skip("cfn-lint is not installed (pip install -e '.[dev]')")
    # cfnlint has no __main__ module, so call its console entry point.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"cfn-lint findings:\n{proc.stdout}{proc.stderr}"


# ------------------------------------------------------------- buckets
@pytest.mark.parametrize("name", ["SourceBucket", "PublicBucket"])
def test_bucket_is_private(buckets: dict[str, dict[str, Any]], name: str) -> None:
    props = buckets[name]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "AccessControl" not in props
    assert "WebsiteConfiguration" not in props  # served through OAC, not the website endpoint
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}


def test_source_bucket_versioned_and_notifies_the_publish_queue(
    buckets: dict[str, dict[str, Any]],
) -> None:
    props = buckets["SourceBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    rules = {
        (q["Event"], tuple((r["Name"], r["Value"]) for r in q["Filter"]["S3Key"]["Rules"]))
        for q in props["NotificationConfiguration"]["QueueConfigurations"]
        if q["Queue"] == {"Fn::GetAtt": ["PublishQueue", "Arn"]}
    }
    releases = (("prefix", "releases/"), ("suffix", ".json"))
    media = (("prefix", "media/"),)
    assert rules == {
        (event, filters)
        for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
        for filters in (releases, media)
    }
    assert buckets["SourceBucket"]["DependsOn"] == "PublishQueuePolicy"


def test_publish_queue_dead_letters_and_alarms(template: dict[str, Any]) -> None:
    res = template["Resources"]
    queue = res["PublishQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["PublishDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert res["PublishDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert queue["VisibilityTimeout"] >= 6 * 120  # six times sync_release's timeout
    [statement] = res["PublishQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    watched = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
        for a in alarms.values()
    }
    assert ("ApproximateNumberOfMessagesVisible", "PublishDeadLetterQueue") in watched
    assert ("ApproximateAgeOfOldestMessage", "PublishQueue") in watched
    config = _config()
    for stage in STAGES:
        env = config["stages"][stage]["environment_variables"]
        name = queue["QueueName"]["Fn::Sub"].replace("${Stage}", stage)
        assert env["NEWSROOM_QUEUE"] == name
        assert "sync_media" not in config["stages"][stage]["lambda_functions"]


def test_sync_release_consumes_the_publish_queue(template: dict[str, Any]) -> None:
    """sync_release is the publish queue's consumer (chalice declares the event
    source mapping: batches of 500, a short window, at most two at once); the
    stack declares no second poller of that queue."""
    import app

    sources = {source.name: source for source in app.app.event_sources}
    consumer = sources["sync_release"]
    assert consumer.queue == app._SETTINGS.queue
    assert consumer.batch_size == 500
    # over 10 messages a batch, Lambda requires a batching window
    assert 0 < consumer.maximum_batching_window_in_seconds <= 5
    assert consumer.maximum_concurrency == 2
    mappings = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert mappings == []


def _bucket_policy_for(template: dict[str, Any], bucket: str) -> dict[str, Any]:
    policies = [
        res["Properties"]["PolicyDocument"]
        for res in resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if res["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    assert len(policies) == 1, f"expected one bucket policy for {bucket}"
    return policies[0]


def test_public_bucket_readable_only_by_the_distribution(template: dict[str, Any]) -> None:
    policy = _bucket_policy_for(template, "PublicBucket")
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert as_list(allow["Action"]) == ["s3:GetObject"]
    assert references(allow["Resource"]) == {"PublicBucket.Arn"} or references(
        allow["Resource"]
    ) == {"PublicBucket"}
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert "Distribution" in references(source_arn)
    assert ":cloudfront::" in source_arn["Fn::Sub"]
    assert ":distribution/" in source_arn["Fn::Sub"]
    # Nothing else is granted to anybody.
    for statement in policy["Statement"]:
        if statement["Effect"] == "Deny":
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_source_bucket_policy_grants_nothing(template: dict[str, Any]) -> None:
    policy = _bucket_policy_for(template, "SourceBucket")
    assert all(s["Effect"] == "Deny" for s in policy["Statement"])


# ---------------------------------------------------------- distribution
def test_distribution_serves_public_bucket_through_oac(
    template: dict[str, Any], distribution_config: dict[str, Any]
) -> None:
    (origin,) = distribution_config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["PublicBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = template["Resources"]["OriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3"
    assert oac["SigningBehavior"] == "always"
    assert oac["SigningProtocol"] == "sigv4"


def test_distribution_behaviour(distribution_config: dict[str, Any]) -> None:
    assert distribution_config["DefaultRootObject"] == "index.html"
    behaviour = distribution_config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] in {"redirect-to-https", "https-only"}
    assert behaviour["Compress"] is True
    assert behaviour["CachePolicyId"] == CACHING_OPTIMIZED
    assert sorted(behaviour["AllowedMethods"]) == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
    (assoc,) = behaviour["FunctionAssociations"]
    assert assoc["EventType"] == "viewer-request"
    assert references(assoc["FunctionARN"]) == {"IndexRewriteFunction"}


def test_missing_pages_get_the_404_page(distribution_config: dict[str, Any]) -> None:
    responses = {r["ErrorCode"]: r for r in distribution_config["CustomErrorResponses"]}
    # With OAC and no ListBucket, S3 answers 403 for a missing key.
    assert set(responses) >= {403, 404}
    for code in (403, 404):
        assert responses[code]["ResponseCode"] == 404
        assert responses[code]["ResponsePagePath"] == "/404.html"


def _csp_directives(csp: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            assert words[0] not in directives, f"duplicate CSP directive {words[0]}"
            directives[words[0]] = words[1:]
    return directives


def test_security_headers(template: dict[str, Any]) -> None:
    config = template["Resources"]["SecurityHeadersPolicy"]["Properties"][
        "ResponseHeadersPolicyConfig"
    ]
    headers = config["SecurityHeadersConfig"]
    hsts = headers["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] == 63072000
    assert hsts["IncludeSubdomains"] is True
    assert hsts["Preload"] is True
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    for header in headers.values():
        assert header["Override"] is True

    # with and without an API: forms post to the site (the header's search box),
    # and the sign-up form to <ApiUrl>/subscriptions only
    condition, with_api, without_api = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"][
        "Fn::If"
    ]
    assert condition == "HasApiUrl"
    assert _csp_directives(with_api["Fn::Sub"])["form-action"] == [
        "'self'",
        "${ApiUrl}/subscriptions",
    ]
    assert _csp_directives(without_api)["form-action"] == ["'self'"]
    for policy in (with_api["Fn::Sub"], without_api):
        _check_csp(policy)


def _check_csp(policy: str) -> None:
    csp = _csp_directives(policy)
    assert csp["default-src"] == ["'none'"]
    # Same-origin scripts only (the search page and Pagefind: its index over
    # fetch, its worker, its WebAssembly); never inline code or eval.
    assert sorted(csp["script-src"]) == sorted(["'self'", "'wasm-unsafe-eval'"])
    assert csp["connect-src"] == ["'self'"]
    assert csp["worker-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert sorted(csp["img-src"]) == sorted(["'self'", "https:"])
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    for sources in csp.values():
        assert "'unsafe-inline'" not in sources
        assert "'unsafe-eval'" not in sources


def test_outputs_feed_the_chalice_config(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= {
        "SourceBucketName",
        "PublicBucketName",
        "DistributionId",
        "DistributionDomainName",
        "SiteUrl",
    }
    assert outputs["SourceBucketName"]["Value"] == {"Ref": "SourceBucket"}
    assert outputs["PublicBucketName"]["Value"] == {"Ref": "PublicBucket"}
    assert outputs["DistributionId"]["Value"] == {"Ref": "Distribution"}
    assert outputs["DistributionDomainName"]["Value"] == {
        "Fn::GetAtt": ["Distribution", "DomainName"]
    }
    site_url = json.dumps(outputs["SiteUrl"]["Value"])
    assert "https://" in site_url
    assert not site_url.rstrip('"]}').endswith("/")


# ------------------------------------------------------ CloudFront Function
def _function_code(template: dict[str, Any]) -> str:
    props = template["Resources"]["IndexRewriteFunction"]["Properties"]
    assert props["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert props["AutoPublish"] is True
    return props["FunctionCode"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/", "/index.html"),
        ("/releases/x/", "/releases/x/index.html"),
        ("/topics/cote-d-ivoire/", "/topics/cote-d-ivoire/index.html"),
        ("/index.html", "/index.html"),
        ("/releases/x", "301 /releases/x/"),
        ("/archive", "301 /archive/"),
        ("/assets/style.abc.css", "/assets/style.abc.css"),
        ("/feed.xml", "/feed.xml"),
        ("/index.json", "/index.json"),
        ("/404.html", "/404.html"),
        ("/media/photo.jpg", "/media/photo.jpg"),
        # never a redirect to another site: //evil.example/x/ is protocol-relative
        ("//evil.example/x", "//evil.example/x"),
        ("//evil.example/x/", "//evil.example/x/"),
        ("///evil.example/x", "///evil.example/x"),
        ("/\\evil.example/x", "/\\evil.example/x"),
        ("/releases\\evil.example", "/releases\\evil.example"),
    ],
)
def test_cloudfront_function_rewrites(template: dict[str, Any], uri: str, expected: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; cannot execute the CloudFront Function")
    script = (
        _function_code(template)
        + "\nvar out = handler({request: {method: 'GET', uri: process.argv[1],"
        + " querystring: {}, headers: {}, cookies: {}}});"
        + "\nprocess.stdout.write(JSON.stringify(out));\n"
    )
    proc = subprocess.run(
        [node, "-e", script, uri], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    if expected.startswith("301 "):
        assert result["statusCode"] == 301
        assert result["headers"]["location"]["value"] == expected[4:]
        assert not re.match(r"/[/\\]", expected[4:])  # stays on this site
    else:
        assert result["uri"] == expected
        assert "statusCode" not in result  # a rewrite, not a response


# ------------------------------------------------------------ IAM policies
def _policy(stage: str, suffix: str = "") -> dict[str, Any]:
    return json.loads((CHALICE_DIR / f"policy-{stage}{suffix}.json").read_text(encoding="utf-8"))


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    statements = as_list(policy["Statement"])
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
    return statements


def _grants(policy: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource, condition) for every allowed pair."""
    return [
        (action, resource, statement.get("Condition", {}))
        for statement in _statements(policy)
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]


def _buckets(stage: str) -> tuple[str, str]:
    return f"newsroom-{stage}-source", f"newsroom-{stage}-public"


ALL_POLICIES = [
    (stage, suffix)
    for stage in STAGES
    for suffix in ("", "-api", "-alerts", "-feedback", "-search", "-rebuild")
]


@pytest.mark.parametrize(("stage", "suffix"), ALL_POLICIES)
def test_policy_has_no_wildcard_actions_or_resources(stage: str, suffix: str) -> None:
    for action, resource, _ in _grants(_policy(stage, suffix)):
        assert action != "*" and not action.endswith(":*"), action
        assert "*" not in action, action
        if action.startswith("logs:"):
            assert resource.startswith("arn:aws:logs:")
            assert f":log-group:/aws/lambda/newsroom-{stage}" in resource
        else:
            assert resource != "*"
            assert not resource.startswith("arn:aws:s3:::*")


@pytest.mark.parametrize("stage", STAGES)
def test_publisher_policy_is_least_privilege(stage: str) -> None:
    source, public = _buckets(stage)
    src_arn, pub_arn = f"arn:aws:s3:::{source}", f"arn:aws:s3:::{public}"
    grants = _grants(_policy(stage))

    by_resource: dict[str, set[str]] = {}
    for action, resource, _ in grants:
        if action.startswith("s3:"):
            assert resource.startswith((src_arn, pub_arn)), resource
            by_resource.setdefault(resource, set()).add(action)

    # Source bucket: read only releases/* and media/* (plus the publisher's own
    # embargo schedule and private state), write only receipts/*, its private
    # state (state/*) and the search corpus it keeps (search/*).
    state = f"{src_arn}/state/*"
    corpus = f"{src_arn}/search/*"
    schedule = f"{src_arn}/receipts/schedule.json"
    # private previews of scheduled releases: written, deleted, and readable by
    # the role, since S3 checks a presigned GET against the signer's rights
    previews = f"{src_arn}/previews/*"
    source_objects = {r: a for r, a in by_resource.items() if r.startswith(src_arn + "/")}
    assert set(source_objects) == {
        f"{src_arn}/releases/*",
        f"{src_arn}/media/*",
        f"{src_arn}/receipts/*",
        previews,
        schedule,
        state,
        corpus,
    }
    assert source_objects[schedule] == {"s3:GetObject"}
    assert source_objects[state] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert source_objects[corpus] == {"s3:GetObject", "s3:PutObject"}
    for resource, actions in source_objects.items():
        if "s3:GetObject" in actions or "s3:GetObjectVersion" in actions:
            assert resource in {
                f"{src_arn}/releases/*",
                f"{src_arn}/media/*",
                previews,
                schedule,
                state,
                corpus,
            }, resource
    assert source_objects[f"{src_arn}/releases/*"] <= {"s3:GetObject", "s3:GetObjectVersion"}
    assert "s3:GetObject" in source_objects[f"{src_arn}/releases/*"]
    assert source_objects[f"{src_arn}/media/*"] <= {"s3:GetObject", "s3:GetObjectVersion"}
    assert source_objects[f"{src_arn}/receipts/*"] == {"s3:PutObject"}
    assert source_objects[previews] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    for action, resource, _ in grants:
        if resource.startswith(src_arn):
            assert not action.startswith("s3:Delete") or resource in (state, previews), (
                action,
                resource,
            )
            assert not action.startswith("s3:Put") or resource in (
                f"{src_arn}/receipts/*",
                previews,
                state,
                corpus,
            )

    # Listing the source bucket, unconditionally: without s3:ListBucket S3 answers a
    # GET of a deleted release with 403 instead of 404, and the takedown would fail.
    source_lists = [(a, c) for a, r, c in grants if r == src_arn]
    assert [a for a, _ in source_lists] == ["s3:ListBucket"]

    # Public bucket: manage objects, list the bucket.
    assert by_resource[f"{pub_arn}/*"] == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert by_resource[pub_arn] == {"s3:ListBucket"}
    assert set(by_resource) == set(source_objects) | {src_arn, f"{pub_arn}/*", pub_arn}

    # CloudFront: one action on one distribution.
    cloudfront = [(a, r) for a, r, _ in grants if a.startswith("cloudfront:")]
    assert len(cloudfront) == 1
    action, resource = cloudfront[0]
    assert action == "cloudfront:CreateInvalidation"
    assert re.fullmatch(r"arn:aws:cloudfront::\d{12}:distribution/[A-Z0-9]+", resource)

    services = {a.split(":")[0] for a, _, _ in grants}
    assert {"s3", "cloudfront", "logs", "sqs"} == services
    # sqs: consume its own publish queue, announce on the alert queue; nothing else
    publish_queue = _alert_queue(stage).replace("-alerts", "-publish")
    sqs = {(a, r) for a, r, _ in grants if a.startswith("sqs:")}
    assert sqs == {
        ("sqs:ReceiveMessage", publish_queue),
        ("sqs:DeleteMessage", publish_queue),
        ("sqs:GetQueueAttributes", publish_queue),
        ("sqs:GetQueueUrl", _alert_queue(stage)),
        ("sqs:SendMessage", _alert_queue(stage)),
    }
    logs = {a for a, _, _ in grants if a.startswith("logs:")}
    assert logs == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.parametrize("stage", STAGES)
def test_webhook_policy_only_writes_releases(stage: str) -> None:
    """The API handler (CMS webhooks) writes or deletes releases/<slug>.json (and
    reads the one an entry published, for its first publication date) and keeps
    its entry maps under cms/; publishing still goes through sync_release. s3:ListBucket, unconditional, so that a GET of a
    missing entry map answers 404 rather than 403."""
    source, _ = _buckets(stage)
    grants = _grants(_policy(stage, "-api"))
    s3 = [(a, r, c) for a, r, c in grants if a.startswith("s3:")]
    assert {(a, r) for a, r, _ in s3} == {
        ("s3:GetObject", f"arn:aws:s3:::{source}/releases/*"),
        ("s3:PutObject", f"arn:aws:s3:::{source}/releases/*"),
        ("s3:DeleteObject", f"arn:aws:s3:::{source}/releases/*"),
        ("s3:GetObject", f"arn:aws:s3:::{source}/cms/*"),
        ("s3:PutObject", f"arn:aws:s3:::{source}/cms/*"),
        ("s3:DeleteObject", f"arn:aws:s3:::{source}/cms/*"),
        ("s3:ListBucket", f"arn:aws:s3:::{source}"),
    }
    assert all(c == {} for _, _, c in s3)
    # the same function serves the subscription routes: the one table, the one
    # sender, and the alert queue for confirmations SES could not take at once
    assert {a.split(":")[0] for a, _, _ in grants} == {"s3", "logs", "dynamodb", "ses", "sqs"}
    assert {(a, r) for a, r, _ in grants if a.startswith("sqs:")} == {
        ("sqs:GetQueueUrl", _alert_queue(stage)),
        ("sqs:SendMessage", _alert_queue(stage)),
    }
    assert {(a, r) for a, r, _ in grants if a.startswith("dynamodb:")} == {
        (a, _table(stage)) for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
    }
    _check_mail_grants(grants, stage)


def _alert_queue(stage: str) -> str:
    return f"arn:aws:sqs:us-east-1:123456789012:newsroom-{stage}-alerts"


def _table(stage: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/newsroom-{stage}-subscribers"


def _check_mail_grants(grants: list[tuple[str, str, dict[str, Any]]], stage: str) -> None:
    """ses:SendEmail and nothing else of SES: on the one identity (and the stage's
    configuration set, which SES also authorises), from the one sender address."""
    ses = [(a, r, c) for a, r, c in grants if a.startswith("ses:")]
    assert {a for a, _, _ in ses} == {"ses:SendEmail"}
    assert {r for _, r, _ in ses} == {
        "arn:aws:ses:us-east-1:123456789012:identity/harborlight.example",
        f"arn:aws:ses:us-east-1:123456789012:configuration-set/newsroom-{stage}",
    }
    env = {**_config()["stages"][stage]["environment_variables"]}
    for _, _, condition in ses:
        assert condition == {"StringEquals": {"ses:FromAddress": env["NEWSROOM_MAIL_FROM"]}}


@pytest.mark.parametrize("stage", STAGES)
def test_alert_sender_policy_is_least_privilege(stage: str) -> None:
    grants = _grants(_policy(stage, "-alerts"))
    assert {a.split(":")[0] for a, _, _ in grants} == {"dynamodb", "sqs", "ses", "s3", "logs"}
    # it reads the public month files, to check a release is still listed, and
    # the publisher's committed state, to follow a release corrected since its
    # alert was queued; it writes nothing (ListBucket: a month with no release
    # left, or a hint never written, is a 404, not a 403)
    source, public = (f"arn:aws:s3:::{b}" for b in _buckets(stage))
    assert {(a, r) for a, r, _ in grants if a.startswith("s3:")} == {
        ("s3:GetObject", f"{public}/index/*"),
        ("s3:ListBucket", public),
        ("s3:GetObject", f"{source}/state/*"),
        ("s3:ListBucket", source),
    }
    assert {r for a, r, _ in grants if a.startswith("dynamodb:")} == {_table(stage)}
    assert {a for a, _, _ in grants if a.startswith("dynamodb:")} == {
        "dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
        "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
    }  # fmt: skip
    assert {r for a, r, _ in grants if a.startswith("sqs:")} == {_alert_queue(stage)}
    _check_mail_grants(grants, stage)


@pytest.mark.parametrize("stage", STAGES)
def test_mail_feedback_policy_only_suppresses(stage: str) -> None:
    grants = _grants(_policy(stage, "-feedback"))
    assert {(a, r) for a, r, _ in grants if not a.startswith("logs:")} == {
        ("dynamodb:GetItem", _table(stage)),
        ("dynamodb:PutItem", _table(stage)),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_alert_functions_use_their_policies_and_the_infra_names(
    stage: str, template: dict[str, Any]
) -> None:
    stage_config = _config()["stages"][stage]
    functions = stage_config["lambda_functions"]
    assert functions["send_alerts"]["iam_policy_file"] == f"policy-{stage}-alerts.json"
    assert functions["mail_feedback"]["iam_policy_file"] == f"policy-{stage}-feedback.json"
    env = stage_config["environment_variables"]
    resources = template["Resources"]
    names = {
        "NEWSROOM_SUBSCRIBERS_TABLE": resources["SubscribersTable"]["Properties"]["TableName"],
        "NEWSROOM_ALERT_QUEUE": resources["AlertQueue"]["Properties"]["QueueName"],
        "NEWSROOM_MAIL_FEEDBACK_TOPIC": resources["MailFeedbackTopic"]["Properties"]["TopicName"],
        "NEWSROOM_SES_CONFIGURATION_SET": resources["MailConfigurationSet"]["Properties"]["Name"],
    }
    for setting, name in names.items():
        assert name == {"Fn::Sub": name["Fn::Sub"]}
        assert env[setting] == name["Fn::Sub"].replace("${Stage}", stage)
    assert env["NEWSROOM_API_URL"].startswith("https://")
    assert "NEWSROOM_ALERT_SECRET" not in env  # a secret: filled in on the deploy machine


@pytest.mark.parametrize("stage", STAGES)
def test_search_function_has_its_layer_and_a_least_privilege_policy(stage: str) -> None:
    """``update_search`` alone carries the Pagefind layer (the release handler's
    zip stays small); it reads the corpus and what the site lists, and writes
    only the search page and the bundle."""
    functions = _config()["stages"][stage]["lambda_functions"]
    search = functions["update_search"]
    assert search["iam_policy_file"] == f"policy-{stage}-search.json"
    assert search["reserved_concurrency"] == 1  # overlapping runs would delete each other's files
    assert len(search["layers"]) == 1
    assert re.fullmatch(
        r"arn:aws:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+", search["layers"][0]
    )
    assert [name for name, f in functions.items() if "layers" in f] == ["update_search"]
    source, public = (f"arn:aws:s3:::{b}" for b in _buckets(stage))
    grants = {(a, r) for a, r, _ in _grants(_policy(stage, "-search")) if not a.startswith("logs:")}
    assert grants == {
        ("s3:GetObject", f"{source}/search/*"),
        ("s3:PutObject", f"{source}/search/*"),
        ("s3:ListBucket", source),
        ("s3:GetObject", f"{public}/index.json"),
        ("s3:GetObject", f"{public}/index/*"),
        ("s3:ListBucket", public),
        *(
            (action, f"{public}/{prefix}/*")
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
            for prefix in ("search", "pagefind")
        ),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_api_gateway_throttling_in_the_stage_config(stage: str) -> None:
    limits = _config()["stages"][stage]["api_gateway_throttling"]
    assert limits["/subscriptions/POST"]["rate_limit"] <= 5
    assert limits["/subscriptions/POST"]["burst_limit"] <= 10
    for route in ("/subscriptions/confirm/GET", "/subscriptions/unsubscribe/POST"):
        assert route in limits
    assert "*/*" in limits


def test_subscribers_table_alert_queue_and_feedback_topic(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    table = resources["SubscribersTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert "GlobalSecondaryIndexes" not in table  # the items need none (see store.py)
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert resources["SubscribersTable"]["DeletionPolicy"] == "Retain"

    queue = resources["AlertQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["AlertDeadLetterQueue", "Arn"]
    }
    assert (
        queue["VisibilityTimeout"]
        >= 6 * _config()["stages"]["prod"]["lambda_functions"]["send_alerts"]["lambda_timeout"]
    )

    destination = resources["MailFeedbackDestination"]["Properties"]["EventDestination"]
    assert sorted(destination["MatchingEventTypes"]) == ["bounce", "complaint"]
    assert destination["SnsDestination"]["TopicARN"] == {"Ref": "MailFeedbackTopic"}
    [statement] = resources["MailFeedbackTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"


# ------------------------------------------------------ chalice config
def _config() -> dict[str, Any]:
    if not CONFIG.exists():
        pytest.skip(".chalice/config.json does not exist yet")
    return json.loads(CONFIG.read_text(encoding="utf-8"))


@pytest.mark.parametrize("stage", STAGES)
def test_stage_uses_hand_written_policy(stage: str) -> None:
    config = _config()
    stages = config.get("stages", {})
    if stage not in stages:
        pytest.skip(f"stage {stage!r} is not in .chalice/config.json yet")
    settings = {**config, **stages[stage]}
    settings.pop("stages", None)
    assert settings.get("autogen_policy") is False
    assert settings.get("iam_policy_file") == f"policy-{stage}.json"
    assert (CHALICE_DIR / settings["iam_policy_file"]).exists()

    functions = stages[stage].get("lambda_functions", {})
    api = functions.get("api_handler", {})
    assert api.get("iam_policy_file") == f"policy-{stage}-api.json"
    for name in ("sync_release", "publish_due_releases"):
        # The publisher functions use the stage policy, not their own.
        assert functions.get(name, {}).get("iam_policy_file", settings["iam_policy_file"]) == (
            f"policy-{stage}.json"
        )

    env = {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }
    source, public = _buckets(stage)
    if "NEWSROOM_SOURCE_BUCKET" in env:
        assert env["NEWSROOM_SOURCE_BUCKET"] == source, "policy and config name different buckets"
    if "NEWSROOM_PUBLIC_BUCKET" in env:
        assert env["NEWSROOM_PUBLIC_BUCKET"] == public, "policy and config name different buckets"
    dist = env.get("NEWSROOM_DISTRIBUTION_ID")
    if dist:
        resources = [r for a, r, _ in _grants(_policy(stage)) if a.startswith("cloudfront:")]
        assert resources[0].endswith(f":distribution/{dist}")


def test_function_sizes() -> None:
    """``sync_release`` gets one whole vCPU (1,769 MB: Lambda's CPU share grows
    with memory), in every stage and as docs/deploy.md tells to configure it
    (docs/operations.md, "Function size", gives the figures)."""
    config = _config()
    stages = config.get("stages", {})
    if "prod" not in stages:
        pytest.skip("stage 'prod' is not in .chalice/config.json yet")
    for stage in stages.values():
        functions = stage.get("lambda_functions", {})
        assert functions["sync_release"]["lambda_memory_size"] == 1769
        assert functions["sync_release"]["lambda_timeout"] == 120
        assert functions["publish_due_releases"]["lambda_memory_size"] == 512
        assert functions["publish_due_releases"]["lambda_timeout"] == 300
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    shown = {
        name: json.loads(body)
        for name, body in re.findall(r'"(sync_release|publish_due_releases)": (\{[^}]*\})', deploy)
    }
    prod = stages["prod"]["lambda_functions"]
    assert shown == {n: prod[n] for n in ("sync_release", "publish_due_releases")}


# --------------------------------------------- the site satisfies the CSP
TEMPLATE_DIRS = [ROOT / "chalicelib" / "templates", ROOT / "templates"]


def test_templates_satisfy_the_csp() -> None:
    """No inline script, inline style or event handler in any page template
    (the CSP blocks them); JSON-LD data blocks and same-origin script files
    (the search page's) are allowed."""
    files = [
        p
        for d in TEMPLATE_DIRS
        if d.is_dir()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.suffix in {".html", ".j2", ".jinja", ".jinja2", ".xml"}
    ]
    if not files:
        pytest.skip("no page templates yet")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.I | re.S):
            attrs, inline = match.group(1), match.group(2)
            src = re.search(r'\ssrc="([^"]*)"', attrs)
            if src:
                assert not inline.strip(), f"{path}: a script with both src and content"
                assert src.group(1).startswith(("/", "{{")), f"{path}: script {src.group(1)}"
            else:
                assert 'type="application/ld+json"' in attrs, f"{path}: {match.group(0)[:80]}"
        assert not re.search(r"<style\b", text, flags=re.IGNORECASE), f"{path}: inline <style>"
        assert not re.search(r"\sstyle\s*=", text, flags=re.IGNORECASE), f"{path}: style="
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.IGNORECASE), f"{path}: on*="
        assert "javascript:" not in text.lower(), f"{path}: javascript: URL"
        for href in re.findall(r'<link\b[^>]*rel="stylesheet"[^>]*href="([^"]+)"', text):
            assert href.startswith("/") or "{{" in href, f"{path}: stylesheet {href}"
