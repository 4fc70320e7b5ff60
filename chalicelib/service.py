"""Cached service getters: the handlers' one way to reach the domain.

Built lazily so ``import app`` needs no AWS configuration, and keyed by the
settings so a changed environment (tests, the demo) gets a fresh publisher.
``reset()`` forgets every client and service built so far (the tests call it
before each test, so none sees another's services).
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

from .alerts.compose import Composer
from .alerts.feedback import Feedback
from .alerts.mail import SesMailer
from .alerts.public import PublicSite
from .alerts.sender import AlertAnnouncer, AlertQueue, AlertSender
from .alerts.store import SubscriberStore
from .alerts.subscriptions import Subscriptions
from .alerts.tokens import Keys
from .cloudfront import CloudFrontInvalidator
from .consumer import QueueConsumer
from .core.render import Renderer
from .errors import ConfigurationError
from .hooks import HookService
from .listeners import CommitListener
from .pool import THREADS
from .previews import Previews
from .publisher import Publisher
from .rebuild import RebuildService, SqsQueue
from .search.corpus import SearchCorpus
from .search.updater import SearchUpdater
from .settings import Settings
from .storage import S3Storage
from .sweep import Sweeper


def settings() -> Settings:
    return Settings.from_env()


# One client per (service, endpoint, region), never evicted: the cached services
# below hold their clients, so a client let go here while a service still held it
# would make two clients for one endpoint (a hook on one misses the other's calls).
# Made under a lock (a boto3 session is not thread-safe, and threads, the demo's,
# must never build two for one key), from one session per process: the session
# keeps botocore's parsed API models, which are most of what a client costs.
_clients: dict[tuple[str, str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    from botocore.config import Config

    key = (service, endpoint or None, region)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # the publisher's request pool keeps up to THREADS requests in flight
            config = Config(max_pool_connections=2 * THREADS)
            if service == "sesv2":
                # botocore would resend SendEmail after a read timeout (a second
                # e-mail if SES had taken the first); SesMailer retries what is safe
                config = config.merge(Config(retries={"total_max_attempts": 1}))
            client = _session().client(
                service, endpoint_url=endpoint or None, region_name=region, config=config
            )
            _clients[key] = client
    return client


def s3_client():  # noqa: ANN201
    return _client(
        "s3",
        os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def _invalidator(s: Settings, endpoint: str | None) -> CloudFrontInvalidator | None:
    """The CDN invalidator, when a distribution is configured."""
    if not s.distribution_id:
        return None
    cloudfront = _client(
        "cloudfront", os.environ.get("AWS_ENDPOINT_URL_CLOUDFRONT") or endpoint, "us-east-1"
    )
    return CloudFrontInvalidator(cloudfront, s.distribution_id)


@lru_cache(maxsize=8)
def _publisher(s: Settings, endpoint: str | None) -> Publisher:
    client = s3_client()
    invalidator = _invalidator(s, endpoint)
    source = S3Storage(client, s.source_bucket)
    renderer = Renderer(s)
    listeners: list[CommitListener] = [SearchCorpus(source)]
    announcer = alert_announcer(s)
    if announcer is not None:
        listeners.append(announcer)
    return Publisher(
        source,
        S3Storage(client, s.public_bucket),
        renderer,
        invalidator=invalidator,
        listeners=listeners,
        previews=Previews(source, renderer),
    )


def publisher() -> Publisher:
    s = settings().require_buckets()
    return _publisher(s, os.environ.get("AWS_ENDPOINT_URL"))


def sweeper() -> Sweeper:
    """``publish_due_releases``' service: the schedule and the anti-entropy sweep."""
    return Sweeper(publisher())


def consumer() -> QueueConsumer:
    """The publish queue's consumer: the publisher, and media through the same writer."""
    return QueueConsumer(publisher(), source_bucket=settings().source_bucket)


@lru_cache(maxsize=8)
def _rebuilder(s: Settings, endpoint: str | None) -> RebuildService:
    client = s3_client()
    invalidator = _invalidator(s, endpoint)
    return RebuildService(
        S3Storage(client, s.source_bucket),
        S3Storage(client, s.public_bucket),
        Renderer(s),
        SqsQueue(aws_client("sqs"), s.rebuild_queue),
        invalidator=invalidator,
        chunk_size=s.rebuild_chunk_size,
    )


def rebuild_service(s: Settings) -> RebuildService:
    return _rebuilder(s.require_buckets(), os.environ.get("AWS_ENDPOINT_URL"))


def rebuilder() -> RebuildService:
    """``render_releases``' service (and local rebuild workers'): rebuild steps off the
    rebuild queue."""
    return rebuild_service(settings())


@lru_cache(maxsize=8)
def _hooks(s: Settings, endpoint: str | None) -> HookService:
    return HookService(S3Storage(s3_client(), s.source_bucket), s)


def hooks() -> HookService:
    """The CMS webhook service; it needs only the source bucket."""
    s = settings()
    if not s.source_bucket:
        raise ConfigurationError("missing setting(s): NEWSROOM_SOURCE_BUCKET")
    return _hooks(s, os.environ.get("AWS_ENDPOINT_URL"))


# E-mail alerts (docs/alerts.md) ----------------------------------------------------
def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def aws_client(service: str):  # noqa: ANN201
    """A cached boto3 client; ``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL`` points it
    at a local endpoint (the demo)."""
    env = "AWS_ENDPOINT_URL_" + service.upper()
    return _client(service, os.environ.get(env) or os.environ.get("AWS_ENDPOINT_URL"), _region())


def alert_queue(s: Settings) -> AlertQueue:
    return AlertQueue(aws_client("sqs"), s.alert_queue)


@lru_cache(maxsize=8)
def _alert_parts(s: Settings, endpoint: str | None) -> tuple[SubscriberStore, SesMailer, Composer]:
    store = SubscriberStore(aws_client("dynamodb"), s.subscribers_table)
    mailer = SesMailer(aws_client("sesv2"), s.mail_from, s.ses_configuration_set)
    return store, mailer, Composer(s)


def subscriptions() -> Subscriptions:
    s = settings().require_alerts()
    store, mailer, composer = _alert_parts(s, os.environ.get("AWS_ENDPOINT_URL"))
    queue = alert_queue(s) if s.alert_queue else None
    return Subscriptions(s, store, mailer, composer=composer, queue=queue)


def alert_sender() -> AlertSender:
    s = settings().require_alerts()
    if not s.alert_queue:
        raise ConfigurationError("missing setting(s): NEWSROOM_ALERT_QUEUE")
    store, mailer, composer = _alert_parts(s, os.environ.get("AWS_ENDPOINT_URL"))
    client = s3_client()
    public = PublicSite(S3Storage(client, s.public_bucket), S3Storage(client, s.source_bucket))
    return AlertSender(s, store, mailer, alert_queue(s), public, composer=composer)


def mail_feedback() -> Feedback:
    s = settings().require_alerts()
    store, _, _ = _alert_parts(s, os.environ.get("AWS_ENDPOINT_URL"))
    return Feedback(store, Keys(s.alert_secret))


def alert_announcer(s: Settings) -> AlertAnnouncer | None:
    """The publisher's alert listener, or None when no alert queue is configured."""
    return AlertAnnouncer(alert_queue(s), s.site_url) if s.alert_queue else None


# Search (docs/search.md) ---------------------------------------------------------
@lru_cache(maxsize=8)
def _search(s: Settings, endpoint: str | None) -> SearchUpdater:
    client = s3_client()
    return SearchUpdater(
        S3Storage(client, s.source_bucket), S3Storage(client, s.public_bucket), Renderer(s)
    )


def search_updater() -> SearchUpdater:
    """``update_search``'s service: the corpus (source bucket) in, the bundle
    (public bucket) out."""
    s = settings().require_buckets()
    return _search(s, os.environ.get("AWS_ENDPOINT_URL"))


def search_corpus() -> SearchCorpus:
    """The commit listener that keeps the search corpus in the source bucket."""
    s = settings().require_buckets()
    return SearchCorpus(S3Storage(s3_client(), s.source_bucket))


def reset() -> None:
    """Forget every client and service built so far; the next call builds them
    again from the environment as it is then (the session's parsed API models
    are kept)."""
    with _clients_lock:
        _clients.clear()
    for cache in (_publisher, _rebuilder, _hooks, _alert_parts, _search):
        cache.cache_clear()
