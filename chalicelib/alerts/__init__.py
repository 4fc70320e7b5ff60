"""E-mail alerts: double opt-in subscriptions and one e-mail per new release.

    tokens.py         keyed address ids, signed confirm/unsubscribe links
    store.py          the subscribers table (DynamoDB), exactly-once records
    mail.py           outgoing mail, the SES v2 adapter
    compose.py        the e-mails and pages (Jinja2)
    subscriptions.py  the routes: sign up, confirm, unsubscribe
    sender.py         the publisher's listener and the alert-queue consumer
    public.py         whether a release is still public when its alert goes out
    feedback.py       SES bounces and complaints (SNS)

``chalicelib/service.py`` builds them; ``app.py`` calls them. docs/alerts.md
describes what subscribers get and what operators set up.
"""
