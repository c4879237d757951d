"""Dead letters: the notice published on the dead-letter topic, and the sink that keeps them."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import IngestError
from gateway.ingest.acks import Pending, Published
from gateway.ingest.deadstore import DeadLetterStore, Kind
from gateway.ingest.stats import Stats
from gateway.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

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


# Publishes one dead-letter notice: (reason, topic, payload, detail) -> broker receipt.
Notify = Callable[[str, str, bytes, str], Published | None]


@dataclass(slots=True)
class _Held:
    reason: str
    topic: str
    payload: bytes
    detail: str
    pending: Pending | None
    kind: Kind


class DeadLetterSink:
    """Where the pipeline sends what it cannot write; a message is done once it is safe.

    With a :class:`DeadLetterStore` (the default) a letter is safe once committed there;
    the notice on the dead-letter topic is only a notification (not waited for). Without
    a store, the notice is the only copy and the message is done once the broker has
    acknowledged it (a persistent subscriber must then collect the topic).

    A letter the store cannot take (full, or a write error) is held: its message stays
    unacknowledged, :meth:`retry` tries again on every tick, and an alarm is logged
    (rate-limited) and counted (``dead_letter_held``).
    """

    def __init__(
        self, *, store: DeadLetterStore | None, notify: Notify, worker: str, stats: Stats
    ) -> None:
        self.store = store
        self._notify = notify
        self._worker = worker
        self._stats = stats
        self._held: list[_Held] = []
        self._ratelog = RateLimitedLog(log)

    @property
    def held(self) -> int:
        """Letters waiting for room in the store."""
        return len(self._held)

    def reject(
        self,
        reason: str,
        topic: str,
        payload: bytes,
        detail: str,
        pending: Pending | None,
        *,
        kind: Kind = "message",
    ) -> None:
        """Dead-letter one message (or one spooled ``line``) with its reason."""
        self._stats.dead_lettered(reason)
        log.debug("dead-letter %s from %s: %s", reason, topic, detail)
        letter = _Held(reason, topic, payload, detail, pending, kind)
        if self._held or not self._keep(letter):
            self._held.append(letter)
            self._stats.dead_letter_held = len(self._held)

    def retry(self) -> None:
        """Try the held letters again, oldest first."""
        while self._held and self._keep(self._held[0]):
            self._held.pop(0)
        self._stats.dead_letter_held = len(self._held)

    def _keep(self, letter: _Held) -> bool:
        if self.store is None:
            receipt = self._notify(letter.reason, letter.topic, letter.payload, letter.detail)
            if letter.pending is not None:
                letter.pending.finish(receipt)
            return True
        try:
            stored = self.store.add(
                worker=self._worker,
                kind=letter.kind,
                reason=letter.reason,
                detail=letter.detail,
                topic=letter.topic,
                payload=letter.payload,
            )
        except IngestError as exc:
            self._ratelog.log("store", logging.ERROR, "dead letters held: %s", exc)
            return False
        if stored is None:
            self._ratelog.log(
                "store",
                logging.ERROR,
                "dead-letter store %s is full (%d bytes): %d letters held unacknowledged; "
                "replay or purge with `gateway ingest deadletters`",
                self.store.path,
                self.store.max_bytes,
                len(self._held) + 1,
            )
            return False
        self._stats.add("dead_letters_stored")
        self._notify(letter.reason, letter.topic, letter.payload, letter.detail)
        if letter.pending is not None:
            letter.pending.finish()
        return True
