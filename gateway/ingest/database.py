"""Writes line-protocol batches to InfluxDB with influxdb-client's synchronous API.

:meth:`Database.write` makes one attempt and classifies the outcome:

- connection errors, timeouts, 429 and 5xx raise :class:`RetryableWriteError` (with
  the server's ``Retry-After`` when it sent one): the database is away or busy;
- 401, 403, 404 and any 4xx that says nothing about the data raise
  :class:`ConfigFaultError` (a subclass of it): a rotated token, a missing permission,
  a wrong bucket, org or URL. Good data is never dead-lettered for that: the worker
  holds it and retries with back-off, and raises an alarm;
- 400, 413 and 422 raise :class:`RejectedWriteError`: the batch (or one line of it)
  is refused. :mod:`gateway.ingest.isolate` splits the batch to find the line.

:meth:`Database.probe` writes one known-good point, to tell a bad line from a
database that refuses everything. The worker waits between attempts with
:class:`gateway.backoff.Backoff`.
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


class ConfigFaultError(RetryableWriteError):
    """The database refuses every write (authentication, permission, bucket, URL).

    Retryable: an operator fixes the token or the bucket and the held data goes in.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


# 4xx answers about the data of the request: the batch may hold one bad line.
DATA_STATUSES = frozenset({400, 413, 422})
PROBE_MEASUREMENT = "ingest_probe"


class RejectedWriteError(Exception):
    """The database refused the batch because of its data (400, 413, 422)."""

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
            ConfigFaultError: 401, 403, 404 or another 4xx not about the data.
            RejectedWriteError: 400, 413 or 422.
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
            message = str(exc.message)[:300]
            if status is None or status == 429 or status >= 500:
                raise RetryableWriteError(f"HTTP {status}: {message}", retry_after) from exc
            if status in DATA_STATUSES:
                raise RejectedWriteError(status, message) from exc
            raise ConfigFaultError(status, message) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc

    def probe(self) -> None:
        """Write one known-good point (``ingest_probe``, field ``ok`` = 1, now).

        Raises:
            RetryableWriteError: the database is away or busy.
            ConfigFaultError: the database refuses even this point (so it refuses
                every write: a configuration fault, not a bad line). A 400 to this
                point is reported as a configuration fault too.
        """
        line = f"{PROBE_MEASUREMENT} ok=1i {time.time_ns()}".encode()
        try:
            self.write([line])
        except RejectedWriteError as exc:
            raise ConfigFaultError(
                exc.status, f"even a known-good point is refused: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def _status(exc: Any) -> int | None:
    status = getattr(exc, "status", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status", None)
    return int(status) if status is not None else None
