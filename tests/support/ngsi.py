"""A loopback NGSI-LD context broker for the export tests (batch upsert only)."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


class ContextBrokerStub:
    """A loopback NGSI-LD batch-upsert endpoint answering a scripted list of statuses."""

    def __init__(self, statuses: list[int], default: int = 204) -> None:
        self.statuses = statuses
        self.default = default
        self.attempts = 0
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        broker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                broker.attempts += 1
                status = broker.statuses.pop(0) if broker.statuses else broker.default
                if status < 300:
                    broker.bodies.append(json.loads(body))
                    broker.headers.append({k.lower(): v for k, v in self.headers.items()})
                    assert self.path == "/ngsi-ld/v1/entityOperations/upsert"
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
