"""Writes line-protocol batches to InfluxDB with influxdb-client's synchronous API.

:meth:`Database.write` makes one attempt and classifies the outcome: connection
errors, 429 and 5xx raise :class:`RetryableWriteError` (with the server's
``Retry-After`` when it sent one); any other 4xx raises :class:`RejectedWriteError`
(the batch's messages go to the dead-letter topic). The worker waits between
attempts with :class:`gateway.transport.backoff.Backoff`.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import urllib3
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from gateway.config.ingest import InfluxConfig


class RetryableWriteError(Exception):
    """The database is away or overloaded; try again after a delay."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RejectedWriteError(Exception):
    """The database refused the batch (4xx other than 429); retrying will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def parse_retry_after(value: object, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(float(moment.timestamp()) - (time.time() if now is None else now), 0.0)


class Database:
    """One InfluxDB (or /api/v2/write compatible) database, nanosecond precision."""

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=config.token.get_secret_value() or "none",
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            retries=False,
            enable_gzip=config.gzip,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, bodies: list[bytes]) -> None:
        """Write one batch (line-protocol bodies, joined by newlines) in one request.

        Raises:
            RetryableWriteError: connection error, timeout, 429 or 5xx.
            RejectedWriteError: any other 4xx.
        """
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=b"\n".join(bodies),
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except InfluxDBError as exc:
            status = _status(exc)
            retry_after = parse_retry_after(getattr(exc, "retry_after", None))
            if status is None or status == 429 or status >= 500:
                raise RetryableWriteError(f"HTTP {status}: {exc.message}", retry_after) from exc
            raise RejectedWriteError(status, str(exc.message)[:300]) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def _status(exc: Any) -> int | None:
    status = getattr(exc, "status", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status", None)
    return int(status) if status is not None else None
