"""Secrets out of everything the unit shows: config replies, ``config check``, health, logs.

Two rules, applied everywhere text leaves the process:

- a URL's password (``rtsp://admin:s3cret@cam``) becomes ``***``
  (``rtsp://admin:***@cam``); the user name stays, it tells which account is used;
- a setting that is a secret (pydantic ``SecretStr``: the MQTT password, the database
  token) is dumped as ``**********`` by pydantic itself, and a value under a key that
  names a secret (``password``, ``token``, ``secret``, ``key``) is masked too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import BaseModel

MASK = "***"
# scheme://user:password@  (the password is whatever up to the last '@' before the host)
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")
# A password's hash is a secret too: it can be attacked offline.
_SECRET_KEYS = re.compile(r"(^|_)(password|passwd|token|secret|passphrase)(_hash)?$", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with every URL password replaced by ``***``."""
    if "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)


def redact(value: Any, key: str = "") -> Any:
    """A JSON-like value with URL passwords and secret-named values masked."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if value and _SECRET_KEYS.search(key):
            return "**********"
        return redact_text(value)
    return value


def redact_settings(settings: BaseModel) -> dict[str, Any]:
    """The settings as JSON with every secret redacted (``get_config``, ``config check``)."""
    dumped: dict[str, Any] = redact(settings.model_dump(mode="json"))
    return dumped


class RedactingFilter(logging.Filter):
    """A log filter that removes URL passwords from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
