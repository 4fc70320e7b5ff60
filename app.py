"""Chalice entry points: thin adapters from AWS events to ``chalicelib`` services."""

import logging

from chalice import Chalice, Rate, Response

from chalicelib import service
from chalicelib.logs import configure_logging
from chalicelib.settings import Settings

app = Chalice(app_name="newsroom")
configure_logging(logging.INFO)  # one bare JSON object per line on stdout -> CloudWatch


_SETTINGS = Settings.from_env()  # read at import: the queues and their concurrency are declared


# The consumer of the publish queue (NEWSROOM_QUEUE). Lambda honours the partial
# batch response once the mapping reports batch item failures, which chalice
# does not set: docs/deploy.md turns it on once after the first deploy. Batches
# of up to 500 (more than 10 needs a batching window; 500 S3 notifications are
# about 0.6 MB of Lambda's 6 MB): a burst pays the shared pages and the commit
# once per batch (docs/operations.md, docs/performance.md).
@app.on_sqs_message(
    queue=_SETTINGS.queue,
    batch_size=500,
    maximum_batching_window_in_seconds=2,
    maximum_concurrency=2,
)
def sync_release(event):
    """Converge the public site to the current state of every key the batch names;
    answer with the messages to deliver again (partial batch response)."""
    return service.consumer().handle(event.to_dict())


@app.on_sqs_message(
    queue=_SETTINGS.rebuild_queue, batch_size=1, maximum_concurrency=_SETTINGS.rebuild_concurrency
)
def render_releases(event):
    """One step of a fanned-out rebuild (start, render a chunk, commit); a failure
    raises, so SQS delivers the step again and, in the end, to its dead-letter queue."""
    service.rebuilder().handle(event.to_dict())


@app.schedule(Rate(5, unit=Rate.MINUTES))
def publish_due_releases(event):
    """Publish what has come due and converge whatever events were lost (the sweep)."""
    return [r.to_json() for r in service.sweeper().run().receipts]


@app.schedule(Rate(5, unit=Rate.MINUTES))
def update_search(event):
    """Rebuild the search bundle when the site changed since the last run."""
    return service.search_updater().run().to_json()


# CMS webhooks (docs/cms.md): one route for every CMS module in chalicelib/hooks/cms/
# (/hooks/generic, /hooks/contentful, /hooks/sanity, /hooks/strapi); others answer 404.
HOOK_CONTENT_TYPES = ["application/json", "application/vnd.contentful.management.v1+json"]


@app.route("/hooks/{cms}", methods=["POST"], content_types=HOOK_CONTENT_TYPES)
def hook(cms):
    """Verify a CMS webhook, map its entry, write or delete releases/<slug>.json."""
    req = app.current_request
    paths = [req.context.get("path", ""), req.context.get("resourcePath", "")]
    status, body = service.hooks().handle(
        cms, dict(req.headers), req.raw_body or b"", method=req.method, paths=paths
    )
    return Response(body=body, status_code=status)


# E-mail alerts (docs/alerts.md): sign-up, double opt-in, one-click unsubscribe.
FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "application/json"]
_ALERT_SETTINGS = Settings.from_env()


def _reply(reply):
    return Response(body=reply.body, status_code=reply.status, headers=reply.headers)


def _token():
    return (app.current_request.query_params or {}).get("token")


@app.route("/subscriptions", methods=["POST"], content_types=FORM_TYPES)
def subscribe():
    req = app.current_request
    return _reply(
        service.subscriptions().subscribe(req.raw_body or b"", req.headers.get("content-type", ""))
    )


@app.route("/subscriptions/confirm", methods=["GET"])
def confirm_subscription():
    return _reply(service.subscriptions().confirm(_token()))


@app.route("/subscriptions/unsubscribe", methods=["GET", "POST"], content_types=FORM_TYPES)
def unsubscribe():
    subscriptions = service.subscriptions()
    if app.current_request.method == "GET":
        return _reply(subscriptions.unsubscribe_form(_token()))
    return _reply(subscriptions.unsubscribe(_token()))  # RFC 8058 one-click


@app.on_sqs_message(
    queue=_ALERT_SETTINGS.alert_queue or "newsroom-alerts", batch_size=10, maximum_concurrency=2
)
def send_alerts(event):
    """Fan a new release out to its subscribers and send each one e-mail, once."""
    return service.alert_sender().handle_batch(record.body for record in event)


@app.on_sns_message(topic=_ALERT_SETTINGS.mail_feedback_topic or "newsroom-mail-feedback")
def mail_feedback(event):
    """SES bounces and complaints: the address gets no more mail."""
    return service.mail_feedback().handle(event.message)
