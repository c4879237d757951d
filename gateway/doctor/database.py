"""The ingest's database: reachable, healthy, and accepting writes with the token."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from gateway import net
from gateway.config.ingest import InfluxConfig
from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult

_WRITE_FIXES = {
    401: "check ingest.influx.token (or GATEWAY_INGEST__INFLUX__TOKEN): it needs write access",
    403: "the token may not write to this bucket: give it write access",
    404: "check ingest.influx.org and ingest.influx.bucket: the database does not know them",
}


def check_database(ctx: Context) -> Iterator[CheckResult]:
    """TCP to the URL's host, ``/health``, then an empty write with the token."""
    influx = ctx.settings.ingest.influx
    timeout = ctx.timeout(influx.timeout_s)
    parts = urllib.parse.urlsplit(influx.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        net.connect(host, port, timeout).close()
    except net.NetError as exc:
        yield CheckResult(
            "database",
            "database",
            "fail",
            f"{influx.url}: {exc.cause}: {exc.detail}",
            "is the database running? check ingest.influx.url",
        )
        return
    yield _health(influx, timeout)
    yield _write(influx, timeout)


def _request(url: str, timeout: float, **kw: object) -> tuple[int, str]:
    request = urllib.request.Request(url, **kw)  # type: ignore[arg-type]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(2000).decode("utf-8", "replace")


def _health(influx: InfluxConfig, timeout: float) -> CheckResult:
    base = influx.url.rstrip("/")
    try:
        status, body = _request(f"{base}/health", timeout)
        if status == 404:
            status, body = _request(f"{base}/ping", timeout)
    except (urllib.error.URLError, OSError) as exc:
        return CheckResult(
            "database",
            "database health",
            "fail",
            f"{base}: {exc}",
            "check ingest.influx.url (scheme, host, port)",
        )
    if 200 <= status < 300:
        return CheckResult("database", "database health", "ok", f"{base} answers ({status})")
    return CheckResult(
        "database",
        "database health",
        "fail",
        f"{base}/health: HTTP {status} {body[:120]}",
        "see the database's log",
    )


def _write(influx: InfluxConfig, timeout: float) -> CheckResult:
    base = influx.url.rstrip("/")
    query = urllib.parse.urlencode({"org": influx.org, "bucket": influx.bucket, "precision": "ns"})
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    token = influx.token.get_secret_value()
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        status, body = _request(
            f"{base}/api/v2/write?{query}", timeout, data=b"", headers=headers, method="POST"
        )
    except (urllib.error.URLError, OSError) as exc:
        return CheckResult(
            "database", "database write", "fail", f"{base}: {exc}", "check ingest.influx.url"
        )
    where = f"bucket {influx.bucket!r} of org {influx.org!r}"
    if 200 <= status < 300:
        return CheckResult("database", "database write", "ok", f"{where} accepts writes")
    if status in _WRITE_FIXES:
        return CheckResult(
            "database",
            "database write",
            "fail",
            f"{where}: HTTP {status} {body[:160]}",
            _WRITE_FIXES[status],
        )
    return CheckResult(
        "database",
        "database write",
        "warn",
        f"{where}: an empty write got HTTP {status} ({body[:120]}); writes not confirmed",
        "write a test point by hand to confirm the token and bucket",
    )
