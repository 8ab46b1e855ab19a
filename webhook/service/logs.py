"""JSON log lines on stderr — one object per line, for the service and for gunicorn itself.

Structured fields come from ``extra={"fields": {...}}``.  Decision lines name the object,
the user, the verdict and the finding codes; object contents are never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any

__all__ = ["ENV_ACCESS_LOG", "JsonFormatter", "access_log_enabled", "configure", "logconfig_dict"]

#: ``AUDITWARDEN_ACCESS_LOG=1`` turns gunicorn's access log on (off by default: every judged
#: request already gets a decision line).
ENV_ACCESS_LOG = "AUDITWARDEN_ACCESS_LOG"


def access_log_enabled() -> bool:
    return os.environ.get(ENV_ACCESS_LOG) == "1"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def logconfig_dict(level: str = "info", access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for gunicorn's ``logconfig_dict`` setting."""
    lvl = level.upper()
    handlers = {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "webhook.service.logs.JsonFormatter"}},
        "handlers": handlers,
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "auditwarden": {"level": lvl, "handlers": ["stderr"], "propagate": False},
            "gunicorn.error": {"level": lvl, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {
                "level": "INFO" if access_log else "CRITICAL",
                "handlers": ["stderr"],
                "propagate": False,
            },
        },
    }


def configure(level: str = "info") -> None:
    """Log the ``auditwarden`` loggers as JSON on stderr (outside gunicorn: tests, tools)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("auditwarden")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
