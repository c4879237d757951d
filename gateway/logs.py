"""Logging set-up: human-readable text by default, JSON lines for log shippers."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Configure the root logger to write to stderr in ``fmt``.

    Calling it again replaces the previous handler, so the CLI can apply the
    config file's logging section after the command-line flags.
    """
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    from gateway.redaction import RedactingFilter

    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if not isinstance(old, LogRing):  # the console's in-memory log stays
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings as log records too (valid JSON lines)


class LogRing(logging.Handler):
    """The last ``size`` log lines in memory (the console's log view), secrets redacted.

    Bounded: a deque of formatted lines; attach it to the root logger with
    :meth:`install` and take it off with :meth:`remove`.
    """

    def __init__(self, size: int = 500, level: int = logging.INFO) -> None:
        super().__init__(level)
        from collections import deque

        from gateway.redaction import RedactingFilter

        self.lines: deque[tuple[int, str]] = deque(maxlen=size)
        self._seq = 0
        self._ring_lock = threading.Lock()
        self.setFormatter(logging.Formatter(_TEXT_FORMAT))
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record (never raises into the logging call)."""
        try:
            text = self.format(record)
        except Exception:  # a broken record must not break the caller
            self.handleError(record)
            return
        with self._ring_lock:
            self._seq += 1
            self.lines.append((self._seq, text))

    def tail(self, after: int = 0, limit: int = 200) -> list[tuple[int, str]]:
        """Up to ``limit`` of the latest lines numbered above ``after``, oldest first."""
        with self._ring_lock:
            lines = [item for item in self.lines if item[0] > after]
        return lines[-limit:]

    def install(self) -> None:
        """Attach to the root logger."""
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        """Detach from the root logger."""
        logging.getLogger().removeHandler(self)
