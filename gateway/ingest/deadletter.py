"""The dead-letter message: why a message was not ingested, where it came from, what it was."""

from __future__ import annotations

import base64
import json
from typing import Any

# How much of a rejected payload the dead-letter message keeps.
MAX_KEPT_BYTES = 4096


def dead_letter_body(reason: str, topic: str, payload: bytes, detail: str = "") -> bytes:
    """Return the JSON body published on the dead-letter topic.

    ``{"reason", "detail", "topic", "size", "payload", "encoding", "truncated"}``:
    ``payload`` is the (first :data:`MAX_KEPT_BYTES` bytes of the) payload as text
    when it is UTF-8, otherwise base64 with ``encoding`` ``base64``.
    """
    kept = payload[:MAX_KEPT_BYTES]
    body: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "size": len(payload),
    }
    try:
        body["payload"] = kept.decode("utf-8")
        body["encoding"] = "utf-8"
    except UnicodeDecodeError:
        body["payload"] = base64.b64encode(kept).decode("ascii")
        body["encoding"] = "base64"
    body["truncated"] = len(payload) > MAX_KEPT_BYTES
    # ASCII escapes: a detail or topic can never make the encoding fail.
    return json.dumps(body, separators=(",", ":")).encode("ascii")
