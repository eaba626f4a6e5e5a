"""Log formatting: JSON lines in production (LOG_FORMAT=json), plain text in development.

Every line about a connection carries its ids (connectionId, userId, deviceId, and the
requestId of the message being handled) from contextvars the session consumer sets, so
they follow the work into database threads. Tokens are redacted from every line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# Set by the session consumer for its task (and so for the threads it calls into).
log_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)

# `token=…`, `ticket=…`, `"sessionToken": "…"`, `Bearer …`: the value goes, the name stays.
_SECRETS = re.compile(r"((?:token|ticket)\"?\s*[=:]\s*\"?|Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRETS.sub(r"\1[redacted]", text)


def bind(**fields: Any) -> contextvars.Token:
    """Add fields to this task's log context; returns the token to reset it with."""
    return log_context.set({**(log_context.get() or {}), **fields})


class ContextFilter(logging.Filter):
    """Puts the current connection's ids on the record (as `context`), and redacts secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = log_context.get() or {}
        if isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
        elif record.args:
            record.msg, record.args = redact(record.getMessage()), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = getattr(record, "context", {})
        if context:
            text += " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        return redact(text)
