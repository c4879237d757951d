"""One ingest worker: a paho MQTT v5 client on a shared subscription feeding a :class:`Pipeline`.

The session is persistent (``clean_start=False`` with a session expiry) and
acknowledgements are manual (``client.manual_ack_set(True)``, ``client.ack(mid, qos)``),
so a message is acknowledged only when :mod:`gateway.ingest.acks` says it is done;
whatever a dead worker had not acknowledged, the broker redelivers.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config.settings import GatewaySettings
from gateway.errors import IngestError
from gateway.ingest.acks import AckTracker, Published
from gateway.ingest.database import Database
from gateway.ingest.deadletter import DeadLetterSink, dead_letter_body
from gateway.ingest.deadstore import DeadLetterStore, open_store
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.spool import Spool
from gateway.ingest.stats import Stats

log = logging.getLogger(__name__)


def default_worker_name() -> str:
    """Return the default worker name: the host name (stable across restarts)."""
    return socket.gethostname().split(".")[0] or "worker"


def receipt(info: mqtt.MQTTMessageInfo) -> Published:
    """Return ``info`` as a receipt whose ``is_published()`` never raises for a queued message.

    paho keeps a QoS 1 message published while disconnected and sends it after the
    reconnect, but its ``is_published()`` raises for such a message (``rc`` NO_CONN);
    the rc is reset so the receipt reports False until the broker's PUBACK, then True.
    """
    if info.rc == mqtt.MQTT_ERR_NO_CONN:
        info.rc = mqtt.MQTT_ERR_SUCCESS
    return info


class IngestWorker:
    """Subscribe, ingest, acknowledge; :meth:`start` then :meth:`stop`."""

    def __init__(self, settings: GatewaySettings, worker: str | None = None) -> None:
        self.settings = settings
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
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._db: Database | None = None
        self._spool: Spool | None = None
        self._store: DeadLetterStore | None = None
        self.acks: AckTracker | None = None
        self.pipeline: Pipeline | None = None

    @property
    def filters(self) -> list[str]:
        """The shared-subscription filters: ``$share/<group>/<filter>``."""
        return [f"$share/{self.config.share_group}/{t}" for t in self.config.topics]

    def start(self) -> None:
        """Open the spool and the database client, connect, and start the pipeline thread."""
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
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        client.manual_ack_set(True)
        self._client = client
        self.acks = AckTracker(client.ack, max_pending=4 * self.config.receive_maximum)
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
        mqtt_cfg = self.settings.mqtt
        if mqtt_cfg.username:
            password = mqtt_cfg.password.get_secret_value() if mqtt_cfg.password else None
            client.username_pw_set(mqtt_cfg.username, password)
        if mqtt_cfg.tls is not None:
            tls = mqtt_cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
            client.tls_insecure_set(tls.insecure)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(
            max(1, round(mqtt_cfg.reconnect_min_s)), max(1, round(mqtt_cfg.reconnect_max_s))
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        try:
            client.connect_async(
                mqtt_cfg.host,
                mqtt_cfg.port,
                mqtt_cfg.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise IngestError(f"cannot connect to {mqtt_cfg.host}:{mqtt_cfg.port}: {exc}") from exc
        client.loop_start()
        self._thread = threading.Thread(
            target=self._run_pipeline, name=f"ingest-{self.worker}", daemon=True
        )
        self._thread.start()
        log.info(
            "ingest worker %s (client id %s) subscribing to %s",
            self.worker,
            self.client_id,
            ", ".join(self.filters),
        )

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
        if self.pipeline is not None and self._thread is not None:
            self.pipeline.stop()
            self._thread.join(timeout)
        if self._client is not None:
            self._wait_acks(min(timeout, 3.0))
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
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
        """Give dead-letter copies a moment to reach the broker so their originals get acked."""
        if self.acks is None:
            return
        stop = threading.Event()
        waited = 0.0
        while self.acks.release() or (len(self.acks) and waited < timeout):
            stop.wait(0.05)
            waited += 0.05

    # -- paho callbacks (network thread: keep them short) --------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        assert self.acks is not None
        self.acks.new_connection()
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        log.info("connected (session present: %s)", flags.session_present)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("subscription refused: %s", ", ".join(failed))
        else:
            self.subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.subscribed.clear()
        if reason.is_failure:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        assert self.acks is not None
        assert self.pipeline is not None
        pending = self.acks.track(message.mid, message.qos)
        if pending is None:
            self.stats.add("refused_qos0")
            return
        self.pipeline.submit(message.topic, message.payload, pending)

    # -- publishing ---------------------------------------------------------------

    def _publish_dead_letter(
        self, reason: str, topic: str, payload: bytes, detail: str
    ) -> Published:
        body = dead_letter_body(reason, topic, payload, detail)
        info: Published = self._client.publish(self.config.dead_letter_topic, body, qos=1)
        return info

    def _publish_stats(self, snapshot: dict[str, Any]) -> None:
        text = json.dumps({"worker": self.worker, **snapshot}, separators=(",", ":"))
        log.info("ingest stats %s", text)
        if self._client is not None:
            self._client.publish(
                f"{self.config.stats_topic}/{self.worker}", text, qos=0, retain=True
            )
