"""POST (or PUT) an output's state as JSON to an HTTP endpoint on the pole's network.

The body is ``{"gateway", "rule", "state", "value", "reason", "trigger", "source", "ts",
"details"}``. A write is done when the server answers 2xx within ``timeout_s``; any other
answer, a refused connection or a timeout fails it, and the output retries with the
project's back-off at most ``retries`` times per state change.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from gateway.actuation import OutputValue
from gateway.config.rules import WebhookAction
from gateway.rules.actuators.base import ActuatorError, WriteContext

MAX_ERROR_BODY = 200


class WebhookActuator:
    """One URL; stateless between writes."""

    def __init__(self, cfg: WebhookAction, gateway_id: str) -> None:
        self.cfg = cfg
        self.gateway_id = gateway_id
        # Proxies from the environment are ignored: the endpoint is on the local network.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def open(self) -> None:
        """Nothing to connect: each write is one request."""

    def body(self, value: OutputValue, context: WriteContext) -> bytes:
        """The JSON body of one write."""
        cause = context.cause
        return json.dumps(
            {
                "gateway": self.gateway_id,
                "rule": context.rule,
                "state": context.state,
                "value": value,
                "reason": cause.reason,
                "trigger": cause.trigger,
                "source": cause.source,
                "ts": datetime.fromtimestamp(cause.timestamp, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "details": cause.details,
            },
            separators=(",", ":"),
        ).encode()

    def write(self, value: OutputValue, context: WriteContext) -> None:
        """Send one request and require a 2xx answer."""
        cfg = self.cfg
        request = urllib.request.Request(
            str(cfg.url),
            data=self.body(value, context),
            method=cfg.method,
            headers={
                "Content-Type": "application/json",
                **{name: value.get_secret_value() for name, value in cfg.headers.items()},
            },
        )
        try:
            with self._opener.open(request, timeout=context.timeout_s) as response:
                response.read(MAX_ERROR_BODY)
        except urllib.error.HTTPError as exc:
            text = exc.read(MAX_ERROR_BODY).decode("utf-8", "replace")
            exc.close()
            raise ActuatorError(f"webhook {cfg.target()}: HTTP {exc.code} {text!r}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ActuatorError(f"webhook {cfg.target()}: {reason}") from exc

    def close(self) -> None:
        """Nothing held between writes."""
