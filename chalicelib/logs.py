"""Structured logs: one JSON object per line, as CloudWatch Logs Insights reads them.

The publisher logs each processed key as a JSON document (``log.info(json.dumps(...))``).
Chalice gives the ``newsroom`` logger a stdout handler that prefixes every line
with ``name - LEVEL - ``, which hides the JSON from Logs Insights' automatic
field discovery. ``configure_logging`` keeps that handler (Lambda sends stdout to
CloudWatch Logs) but formats each record as a bare JSON object: a message that
already is one is written as is, any other message is wrapped as
``{"level", "logger", "message"}``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

LOGGER = "newsroom"


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{") and message.endswith("}") and not record.exc_info:
            return message
        doc = {"level": record.levelname, "logger": record.name, "message": message}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


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
