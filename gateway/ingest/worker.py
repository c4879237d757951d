"""One ingest worker: an MQTT v5 shared subscription feeding a :class:`Pipeline`.

The session is persistent (``clean_start=False`` with a session expiry) and
acknowledgements are manual, so a message is acknowledged only when
:mod:`gateway.ingest.acks` says it is done; whatever a dead worker had not
acknowledged, the broker redelivers. The connection (and its reconnects, its bounded
reading and its failure logs) is :class:`~gateway.ingest.connection.IngestConnection`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

from gateway.config.settings import GatewaySettings
from gateway.ingest.acks import AckTracker, Published
from gateway.ingest.connection import IngestConnection
from gateway.ingest.database import Database
from gateway.ingest.deadletter import DeadLetterSink, dead_letter_body
from gateway.ingest.deadstore import DeadLetterStore, open_store
from gateway.ingest.declare import declaration
from gateway.ingest.ledgerloop import LedgerAuditor
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.spool import Spool
from gateway.ingest.stats import Stats

log = logging.getLogger(__name__)


def default_worker_name() -> str:
    """Return the default worker name: the host name (stable across restarts)."""
    return socket.gethostname().split(".")[0] or "worker"


class IngestWorker:
    """Subscribe, ingest, acknowledge; :meth:`start` then :meth:`stop`."""

    def __init__(
        self, settings: GatewaySettings, worker: str | None = None, *, retire: bool = False
    ) -> None:
        self.settings = settings
        self.retire = retire
        self.config = settings.ingest
        self.worker = worker or default_worker_name()
        self.client_id = (
            settings.mqtt.client_id
            if worker is None and settings.mqtt.client_id
            else f"{self.config.share_group}-{self.worker}"
        )
        self.stats = Stats()
        self.subscribed = threading.Event()
        # Set when the pipeline thread has ended on its own (a bug or a fatal error).
        self.failed: BaseException | None = None
        self.failed_event = threading.Event()
        self._conn: IngestConnection | None = None
        self._thread: threading.Thread | None = None
        self._db: Database | None = None
        self._spool: Spool | None = None
        self._store: DeadLetterStore | None = None
        self.acks: AckTracker | None = None
        self.pipeline: Pipeline | None = None
        self.ledger = LedgerAuditor(self.config)

    @property
    def filters(self) -> list[str]:
        """The shared-subscription filters: ``$share/<group>/<filter>``."""
        return [f"$share/{self.config.share_group}/{t}" for t in self.config.topics]

    def start(self) -> None:
        """Open the stores and the database client, connect, and start the pipeline thread."""
        if self.config.spool_path is not None:
            self._spool = Spool(self.config.spool_path, self.config.spool_max_bytes)
            if self._spool.events:
                log.info("spool holds %d events from a previous run", self._spool.events)
        self._store = open_store(self.settings)
        if self._store is not None:
            held = self._store.count()
            if held:
                log.warning(
                    "dead-letter store %s holds %d letters (`gateway ingest deadletters list`)",
                    self._store.path,
                    held,
                )
        self._db = Database(self.config.influx)
        self.acks = AckTracker(self._ack, max_pending=4 * self.config.receive_maximum)
        self.pipeline = Pipeline(
            self.config,
            database=self._db,
            spool=self._spool,
            acks=self.acks,
            stats=self.stats,
            dead_letters=DeadLetterSink(
                store=self._store,
                notify=self._publish_dead_letter,
                worker=self.worker,
                stats=self.stats,
            ),
            on_stats=self._publish_stats,
            topic_prefix=self.settings.mqtt.topic_prefix,
        )
        self._conn = IngestConnection(
            self.settings.mqtt,
            self.client_id,
            filters=self.filters,
            session_expiry_s=self.config.session_expiry_s,
            receive_maximum=self.config.receive_maximum,
            reconnect_max_s=self.config.reconnect_max_s,
            on_message=self._on_message,
            on_connected=self.acks.new_connection,
            can_read=self.pipeline.can_read,
            on_burst=self.pipeline.hand_over,
            subscribed=self.subscribed,
            retire=self.retire,
            on_subscribed=self._declare,
        )
        self._conn.start()
        self._thread = threading.Thread(
            target=self._run_pipeline, name=f"ingest-{self.worker}", daemon=True
        )
        self._thread.start()
        self.ledger.start()
        log.info(
            "ingest worker %s (client id %s) subscribing to %s",
            self.worker,
            self.client_id,
            ", ".join(self.filters),
        )

    def drained(self) -> bool:
        """Whether nothing is waiting: no message queued, batched or unacknowledged."""
        pipeline, acks = self.pipeline, self.acks
        if pipeline is None or acks is None:
            return False
        return pipeline.idle() and len(acks) == 0

    def _run_pipeline(self) -> None:
        assert self.pipeline is not None
        try:
            self.pipeline.run()
        except Exception as exc:
            log.exception("ingest pipeline failed")
            self.failed = exc
            self.failed_event.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush the current batch, acknowledge what is done, disconnect, close."""
        self.ledger.stop()
        if self.pipeline is not None and self._thread is not None:
            self.pipeline.stop()
            self._thread.join(timeout)
        if self._conn is not None:
            self._wait_acks(min(timeout, 3.0))
            self._conn.stop()
            self._conn = None
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._store is not None:
            self._store.close()
            self._store = None
        log.info("ingest worker %s stopped: %s", self.worker, json.dumps(self.stats.snapshot()))

    def _wait_acks(self, timeout: float) -> None:
        """Give dead-letter notices a moment to reach the broker so their originals get acked."""
        if self.acks is None:
            return
        stop = threading.Event()
        waited = 0.0
        while self.acks.release() or (len(self.acks) and waited < timeout):
            stop.wait(0.05)
            waited += 0.05

    # -- connection callbacks (network thread: keep them short) -----------------------

    def _ack(self, mid: int, qos: int) -> None:
        if self._conn is not None:
            self._conn.ack(mid, qos)

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        assert self.acks is not None
        assert self.pipeline is not None
        pending = self.acks.track(mid, qos)
        if pending is None:
            self.stats.add("refused_qos0")
            return
        self.pipeline.submit(topic, payload, pending)

    # -- publishing ---------------------------------------------------------------

    def _declare(self) -> None:
        """Publish the group's declaration, retained (network thread, on each subscription)."""
        if self.retire or self._conn is None:
            return
        found = declaration(self.config, self.settings.mqtt.topic_prefix)
        if found is not None:
            topic, payload = found
            self._conn.publish(topic, payload, qos=1, retain=True)
            log.info("declared on %s: %s", topic, payload.decode())

    def _publish_dead_letter(
        self, reason: str, topic: str, payload: bytes, detail: str
    ) -> Published:
        assert self._conn is not None
        body = dead_letter_body(reason, topic, payload, detail)
        receipt: Published = self._conn.publish(self.config.dead_letter_topic, body, qos=1)
        return receipt

    def _publish_stats(self, snapshot: dict[str, Any]) -> None:
        conn = self._conn
        mqtt = {
            "connected": conn is not None and conn.connected,
            "connects": conn.connects if conn is not None else 0,
            "last_error": conn.last_error if conn is not None else None,
            "paused_reading_s": round(conn.paused_s, 1) if conn is not None else 0.0,
        }
        text = json.dumps({"worker": self.worker, **snapshot, "mqtt": mqtt}, separators=(",", ":"))
        log.info("ingest stats %s", text)
        if conn is not None:
            conn.publish(f"{self.config.stats_topic}/{self.worker}", text, qos=0, retain=True)
