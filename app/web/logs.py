"""Structured JSON logs with the request id; secrets are scrubbed before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from flask import g, has_request_context

# Anything that looks like a JWT, a bearer/basic credential or a secret-bearing field.
_SCRUBBERS = [
    (re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*"), "[token]"),
    (re.compile(r"(?i)(bearer|basic)\s+[\w\-.~+/=]+"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b(password|secret|client_secret|totp_code|code|activation_code|token|"
            r"refresh_token|recovery_code)(\"?\s*[:=]\s*\"?)[^\s\",&]+"
        ),
        r"\1\2[redacted]",
    ),
]


_NATIONAL_ID = re.compile(r"\b(\d{3})\d{4,7}(\d{2})\b")


def mask_identifiers(text: str) -> str:
    """Mask national id numbers (support routes carry them in the path)."""
    return _NATIONAL_ID.sub(r"\1*****\2", text)


def scrub(text: str) -> str:
    """Remove credentials from a log message."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return mask_identifiers(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extra fields."""

    EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "actor", "remote_addr")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
        for name in self.EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and a scrubbed trace go to the log, never to the client.
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", stream=None) -> logging.Handler:  # type: ignore[no-untyped-def]
    """Send the ``hoso`` and Flask app loggers to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.set_name("hoso-json")
    for name in ("hoso", "app"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "hoso-json"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler
