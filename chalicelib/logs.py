"""Structured logs: one JSON object per line, as CloudWatch Logs Insights reads them.

A call site names the event and passes its figures through the logging
module's ``extra=``::

    log.info("media_processed", extra={"source_key": key, "outcome": "published"})

and ``JsonLineFormatter`` writes ``{"event": "media_processed", "source_key": …,
"outcome": …, "level": "INFO"}``. A plain message becomes ``{"level", "logger",
"message"}``; a message that already is a JSON object (older call sites) is
written as is.

Chalice gives the ``newsroom`` logger a stdout handler that prefixes every line
with ``name - LEVEL - ``, which hides the JSON from Logs Insights' automatic
field discovery. ``configure_logging`` keeps that handler (Lambda sends stdout
to CloudWatch Logs) but formats each record as a bare JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

LOGGER = "newsroom"


# what every LogRecord carries: anything else on a record came through ``extra=``
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of ``record``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extra = fields(record)
        doc: dict[str, Any]
        if extra:
            doc = {"event": message, **extra, "level": record.levelname}
        elif message.startswith("{") and message.endswith("}") and not record.exc_info:
            return message
        else:
            doc = {"level": record.levelname, "logger": record.name, "message": message}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> logging.Logger:
    """Make the ``newsroom`` logger write JSON lines at ``level`` to stdout.

    Idempotent. Propagation to the root logger is off, so the Lambda runtime's
    own root handler does not print each line a second time."""
    log = logging.getLogger(LOGGER)
    log.setLevel(level)
    # exactly StreamHandler: not test-capture subclasses attached to the logger
    handlers = [h for h in log.handlers if type(h) is logging.StreamHandler]
    if not handlers:
        handler = logging.StreamHandler(stream or sys.stdout)
        log.addHandler(handler)
        handlers = [handler]
    for handler in handlers:
        handler.setFormatter(JsonLineFormatter())
    log.propagate = False
    return log
