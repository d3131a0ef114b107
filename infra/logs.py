"""Structured logs (one JSON object per line) with a request id that travels BFF → risk → contract.

The id lives in a context variable: set from ``X-Request-Id`` (or made) at the start of each request,
carried into worker-pool jobs (``contextvars.copy_context``), sent on every call to our services, and
written on every log line.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC
from datetime import datetime
from typing import Any

request_id: ContextVar[str] = ContextVar("request_id", default="")


def accept_request_id(incoming: str | None) -> str:
    """The caller's id when it is sane (printable, ≤ 64 characters), else a new one."""
    value = (incoming or "").strip()
    return value if 0 < len(value) <= 64 and value.isprintable() and '"' not in value else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "service": self.service, "logger": record.name,
            "request_id": request_id.get(), "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``service``: JSON lines on stderr, gunicorn's loggers included."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stderr}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
            # WeasyPrint logs each layout step of each contract at INFO: eleven lines a render
            "weasyprint.progress": {"level": "WARNING"},
        },
    }
