"""``gateway ngsi bridge``: events from the MQTT broker into an NGSI-LD context broker.

The same delivery rules as ``gateway ingest`` (``docs/ingest.md``), with the same
pieces: an MQTT v5 shared subscription with a persistent session and manual
acknowledgements (:class:`gateway.ingest.connection.IngestConnection`), released in
receive order (:class:`gateway.ingest.acks.AckTracker`).

- A message is acknowledged only when its entities are in the context broker (2xx to
  the batch upsert), or when it makes none (another type, no location, not a valid
  event: counted and logged; the ingest dead-letters invalid events already).
- While the context broker is away (connection errors, 429, 5xx) the batch is retried
  with the project's back-off and acknowledgements are held: the MQTT broker keeps the
  messages (at most ``receive_maximum`` in flight, the rest queued in the session), and
  a bridge that is killed loses nothing (they are redelivered to the next one).
- A batch the context broker refuses (another 4xx, or 207 partial success) is published
  on ``dead_letter_topic`` (QoS 1) with the reason, and its messages are acknowledged
  once that copy is: nothing is dropped silently, and one bad entity never blocks the rest.
- Upserts are idempotent (stable ids, same content), so redelivered events are harmless.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.backoff import Backoff
from gateway.config.ngsi import BridgeConfig, NgsiConfig
from gateway.ingest.acks import AckTracker, Pending, Published
from gateway.ingest.connection import IngestConnection
from gateway.ngsi.convert import Converter, NotExportedError
from gateway.ngsi.export import ContextBroker, ExportError, entities_of

log = logging.getLogger(__name__)

_POLL_S = 0.05


@dataclass(slots=True)
class _Item:
    topic: str
    payload: bytes
    pending: Pending
    entities: list[dict[str, Any]]


class NgsiBridge:
    """One bridge worker; :meth:`start`, :meth:`stop`."""

    def __init__(self, config: NgsiConfig, worker: str) -> None:
        """Set up from ``config`` (its ``bridge`` section must be set)."""
        if config.bridge is None:
            raise ValueError("the config has no [bridge] section")
        self.config = config
        self.cfg: BridgeConfig = config.bridge
        self.worker = worker
        self.client_id = f"{self.cfg.share_group}-{worker}"
        self.converter = Converter(config)
        self.broker = ContextBroker(
            self.cfg.url,
            tenant=self.cfg.tenant,
            timeout_s=self.cfg.timeout_s,
            retries=0,  # the bridge retries itself, without end, holding the acks
        )
        self.counts: Counter[str] = Counter()
        self.acks = AckTracker(self._ack, max_pending=4 * self.cfg.receive_maximum)
        self._queue: queue.SimpleQueue[tuple[str, bytes, Pending]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._backoff = Backoff(0.5, self.cfg.retry_max_s)
        self._conn = IngestConnection(
            config.mqtt,
            self.client_id,
            filters=[f"$share/{self.cfg.share_group}/{t}" for t in self.cfg.topics],
            session_expiry_s=self.cfg.session_expiry_s,
            receive_maximum=self.cfg.receive_maximum,
            reconnect_max_s=self.cfg.reconnect_max_s,
            on_message=self._on_message,
            on_connected=self.acks.new_connection,
            can_read=lambda: self._queue.qsize() < 2 * self.cfg.receive_maximum,
        )
        self._thread: threading.Thread | None = None

    @property
    def subscribed(self) -> threading.Event:
        """Set while the shared subscription is granted."""
        return self._conn.subscribed

    def start(self) -> None:
        """Connect and start converting."""
        self._conn.start()
        self._thread = threading.Thread(target=self._run, name=f"ngsi-{self.worker}", daemon=True)
        self._thread.start()
        log.info("ngsi bridge %s -> %s", ", ".join(self.cfg.topics), self.broker.url)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (one attempt), acknowledge what is done, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + 3.0
        while self.acks.release() or (len(self.acks) and time.monotonic() < deadline):
            time.sleep(_POLL_S)
        self._conn.stop()
        log.info("ngsi bridge %s stopped: %s", self.worker, json.dumps(self.snapshot()))

    def snapshot(self) -> dict[str, Any]:
        """Counters: messages by outcome, entities posted, retries, pending acks."""
        return {
            **dict(self.counts),
            "posted": self.broker.posted,
            "batches": self.broker.batches,
            "pending_acks": len(self.acks),
        }

    # -- network thread ----------------------------------------------------------------

    def _ack(self, mid: int, qos: int) -> None:
        self._conn.ack(mid, qos)

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        pending = self.acks.track(mid, qos)
        if pending is None:
            self.counts["refused_qos0"] += 1
            return
        self._queue.put((topic, payload, pending))

    # -- the bridge's own thread ----------------------------------------------------------

    def _run(self) -> None:
        batch: list[_Item] = []
        entities = 0
        started = 0.0
        while not self._stop.is_set():
            try:
                topic, payload, pending = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                pass
            else:
                item = self._convert(topic, payload, pending)
                if item is not None:
                    if not batch:
                        started = time.monotonic()
                    batch.append(item)
                    entities += len(item.entities)
            due = batch and time.monotonic() - started >= self.cfg.flush_interval_s
            if batch and (entities >= self.cfg.batch_size or due or self._queue.empty()):
                self._deliver(batch)
                batch, entities = [], 0
            self.acks.release()

    def _convert(self, topic: str, payload: bytes, pending: Pending) -> _Item | None:
        """The message's entities; a message that makes none is done at once."""
        try:
            event = json.loads(payload)
            entities = entities_of(event, self.converter)
        except NotExportedError as exc:
            self.counts[exc.reason] += 1
            pending.finish()
            return None
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            self.counts["invalid"] += 1
            log.warning("ngsi bridge: %s: %s (skipped; the ingest dead-letters it)", topic, exc)
            pending.finish()
            return None
        self.counts["converted"] += 1
        return _Item(topic, payload, pending, entities)

    def _deliver(self, batch: list[_Item]) -> None:
        """Upsert the batch until it is in, refused, or the bridge stops."""
        entities = [e for item in batch for e in item.entities]
        while True:
            try:
                for start in range(0, len(entities), self.cfg.batch_size):
                    self.broker.upsert(entities[start : start + self.cfg.batch_size])
            except ExportError as exc:
                if exc.retryable:
                    self.counts["retries"] += 1
                    if self._stop.wait(self._backoff.next_delay()):
                        return  # stopping: the messages stay unacknowledged, redelivered later
                    continue
                self._dead_letter(batch, str(exc))
                return
            self._backoff.reset()
            for item in batch:
                item.pending.finish()
            return

    def _dead_letter(self, batch: list[_Item], reason: str) -> None:
        log.error("ngsi bridge: context broker refused a batch: %s", reason)
        for item in batch:
            body = {
                "reason": "ngsi_refused",
                "detail": reason[:500],
                "topic": item.topic,
                "payload": item.payload[:4096].decode("utf-8", "replace"),
                "worker": self.worker,
            }
            info: Published = self._conn.publish(
                self.cfg.dead_letter_topic, json.dumps(body), qos=1
            )
            item.pending.finish(info)
            self.counts["dead_letter"] += 1
