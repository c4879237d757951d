"""An InfluxDB 2 write endpoint with InfluxDB's strictness, storing into VictoriaMetrics.

VictoriaMetrics answers 204 to every write it can read and drops bad lines in silence;
InfluxDB 2 refuses them. No InfluxDB server is packaged for Debian, so the tests that need
InfluxDB's answers put this loopback front before a real VictoriaMetrics. It answers
like InfluxDB 2's ``/api/v2/write``: 401 for a token other than the expected one, 404 for an
unknown bucket, and 400 (nothing written) for a request with any line InfluxDB refuses:
unparsable, an integer or a time outside int64, or a field whose type differs from the type
that field already has in the measurement (InfluxDB's "field type conflict"). Accepted
requests are forwarded unchanged to VictoriaMetrics.
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.parse
import urllib.request
from typing import Any

_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_INT64 = 2**63


def _field_type(value: str) -> str:
    if value.endswith("i") and re.fullmatch(r"-?[0-9]+i", value):
        if abs(int(value[:-1])) >= _INT64:
            raise ValueError(f"integer out of range: {value}")
        return "integer"
    if value in ("true", "false", "t", "f", "T", "F", "TRUE", "FALSE"):
        return "boolean"
    if value.startswith('"') and value.endswith('"'):
        return "string"
    float(value)
    return "float"


class StrictInflux:
    """The front: ``url`` for the ingest; ``schema`` maps (measurement, field) to its type."""

    def __init__(self, upstream: str, token: str = "test", bucket: str = "roadside") -> None:
        self.upstream = upstream
        self.token = token
        self.bucket = bucket
        self.schema: dict[tuple[str, str], str] = {}
        self.answers: list[int] = []
        self._lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, message = front.handle(self.path, self.headers, body)
                front.answers.append(status)
                data = (
                    f'{{"code":"invalid","message":"{message}"}}'.encode() if status >= 400 else b""
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, str]:
        parsed = urllib.parse.urlparse(path)
        if parsed.path != "/api/v2/write":
            return 404, "path not found"
        if headers.get("Authorization") != f"Token {self.token}":
            return 401, "unauthorized access"
        query = urllib.parse.parse_qs(parsed.query)
        if query.get("bucket", [""])[0] != self.bucket:
            return 404, f"bucket {query.get('bucket')} not found"
        with self._lock:
            seen: dict[tuple[str, str], str] = {}
            for number, line in enumerate(body.decode("utf-8").split("\n"), start=1):
                if not line:
                    continue
                try:
                    for key, kind in self._types(line):
                        known = self.schema.get(key) or seen.get(key)
                        if known is not None and known != kind:
                            return 400, (
                                f"failure writing points to database: partial write: field "
                                f"type conflict: input field {key[1]} on measurement {key[0]} "
                                f"is type {kind}, already exists as type {known} dropped=1"
                            )
                        seen[key] = kind
                except ValueError as exc:
                    return 400, f"unable to parse line {number}: {exc}"
            self.schema.update(seen)
        request = urllib.request.Request(
            f"{self.upstream}/api/v2/write?{parsed.query}", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, ""

    @staticmethod
    def _types(line: str) -> list[tuple[tuple[str, str], str]]:
        parts = _UNESCAPED_SPACE.split(line)
        if len(parts) not in (2, 3):
            raise ValueError("expected measurement, fields and time")
        if len(parts) == 3 and abs(int(parts[2])) >= _INT64:
            raise ValueError(f"time out of range: {parts[2]}")
        measurement = _UNESCAPED_COMMA.split(parts[0])[0]
        out = []
        for field in _UNESCAPED_COMMA.split(parts[1]):
            key, _, value = field.partition("=")
            if not key or not value:
                raise ValueError(f"bad field {field!r}")
            out.append(((measurement, key), _field_type(value)))
        return out
