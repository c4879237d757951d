"""The gateway runtime: cameras and sensors -> events -> outbox -> MQTT, plus commands.

:class:`App` wires the parts together and owns their threads::

    camera runners --on_events-->  +
    sensor readers --on_reading--> +-> App.emit -> Outbox (SQLite) -> Forwarder -> MqttLink
    synthetic source ------------> +                                               |
    ticker: health, bounds, watchdog                 commands <-- cmd/+ <----------+

:meth:`App.emit` is the one entry for events (tests inject events through it).
A gateway with no cameras and no sensors still runs and publishes health and
availability.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gateway import __version__
from gateway.actuation import Actuation
from gateway.budget import held
from gateway.budget.gate import MAX_HELD_BYTES, BudgetGate, Step
from gateway.budget.usage import WireUsage
from gateway.config.settings import GatewaySettings
from gateway.config.vision import CameraConfig
from gateway.errors import TransportError
from gateway.events import builder
from gateway.events.envelope import Draft, encode, envelope, new_id
from gateway.events.health import health as health_event
from gateway.events.topics import Topics, capabilities_filter
from gateway.health import CameraHealth, GatewayHealth, PartFailure, SensorHealth
from gateway.ratelog import RateLimitedLog
from gateway.rules.types import CameraStatus
from gateway.runtime import sdnotify
from gateway.runtime.commands import AuditRecord, CommandHandler
from gateway.runtime.health import SystemMetrics, Uptime
from gateway.runtime.link_gate import ConnectionGate
from gateway.runtime.live_settings import ApplyResult, LiveSettings, SettingsChange
from gateway.runtime.parts import RunningCamera, RunningSensor
from gateway.runtime.synthetic import SyntheticSource
from gateway.security.authorize import authorizer_for
from gateway.sensors.throttle import ReadingThrottle
from gateway.sensors.types import Reading
from gateway.transport.forwarder import Batching, Forwarder
from gateway.transport.lanes import ALERT, lane_of
from gateway.transport.mqtt import Incoming, Message, MqttLink
from gateway.transport.negotiate import BatchPolicy
from gateway.transport.outbox import Outbox, Stored
from gateway.transport.urgency import Urgency
from gateway.vision.analytics.types import AnalyticsEvent

if TYPE_CHECKING:
    from gateway.console.server import ConsoleServer
    from gateway.rules.engine import RulesEngine

log = logging.getLogger(__name__)

_TICK_S = 0.25
_ENFORCE_EVERY_S = 30.0
_DROP_HEALTH_MIN_S = 10.0
_BUDGET_EVERY_S = 1.0


class App:
    """One running gateway."""

    def __init__(self, settings: GatewaySettings, config_path: Path | None = None) -> None:
        self.live = LiveSettings(settings, config_path, self._restart_if_running)
        gw = settings.gateway
        self.topics = Topics(settings.mqtt.topic_prefix, gw.site, gw.id)
        self.uptime = Uptime()
        self._emit_log = RateLimitedLog(log, interval_s=60.0)
        self._drop_pending = False
        self._last_drop_health = 0.0
        self.outbox = Outbox(
            settings.outbox.path or gw.data_dir / "outbox.sqlite3",
            self.topics,
            max_bytes=settings.outbox.max_bytes,
            max_age_s=settings.outbox.max_age_s,
            synchronous=settings.outbox.synchronous,
            on_drop=self._on_drop,
        )
        self.batch_policy = self._batch_policy(settings)
        self.urgency = Urgency()  # alerts in passage: the drain's threads step aside
        self.link = MqttLink(
            settings.mqtt,
            settings.mqtt.client_id or gw.id,
            birth=lambda: self.availability("online"),
            will=lambda: self.availability("offline"),
            subscriptions=(self.topics.commands,)
            + ((capabilities_filter(self.topics.prefix),) if self.batch_policy.negotiates else ()),
            on_connected=self._on_link_connected,
            on_published=self._on_link_published,
            on_message=self._on_command,
            max_inflight=settings.outbox.max_inflight,
            urgency=self.urgency,
        )
        self.gate = ConnectionGate(self.live, self.link, settings.security.rollback_deadline_s)
        self.forwarder = Forwarder(
            self.outbox,
            self.link,
            no_subscribers=settings.outbox.no_subscribers,
            retry_min_s=settings.outbox.retry_min_s,
            retry_max_s=settings.outbox.retry_max_s,
            backlog_order=settings.outbox.backlog_order,
            lane_share=settings.outbox.lane_share,
            batching=self.batch_policy.current,
            bulk_hold=self.batch_policy.holds_bulk,
            urgency=self.urgency,
        )
        self.budget: BudgetGate | None = None
        # What a byte budget held when the run before ended without stopping: stored at
        # start, by the gate or (no budget now) as it is (gateway.budget.held).
        kept = self._held_rows()
        self._leftover: list[held.HeldEvent] = []
        if settings.budget.enabled:
            usage_path = settings.budget.state_path or gw.data_dir / "budget.json"
            self.budget = BudgetGate(
                settings.budget,
                WireUsage(usage_path),
                held=kept,
                durable=kept is not None,
                max_bytes=min(MAX_HELD_BYTES, settings.outbox.max_bytes // 8),
            )
        elif kept is not None:
            self._leftover = kept.events
        self.metrics = SystemMetrics(gw.data_dir)
        self.cameras: dict[str, RunningCamera] = {}
        self.sensors: dict[str, RunningSensor] = {}
        self.commands = CommandHandler(
            link=self.link,
            topics=self.topics,
            cameras=self.cameras,
            settings=lambda: self.settings,
            apply_settings=self.apply_settings,
            authorizer=authorizer_for(settings),
            audit=self._on_audit,
        )
        self._throttles = {s.id: ReadingThrottle(s.publish_interval_s) for s in settings.sensors}
        self.synthetic: SyntheticSource | None = None
        if settings.events.synthetic_events_per_s > 0:
            self.synthetic = SyntheticSource(
                self._emit_safely, settings.events.synthetic_events_per_s
            )
        self.rules = self._make_rules(settings)
        self.readings: dict[str, Reading] = {}  # the latest of each configured sensor
        self.console = self._make_console(settings)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = False

    def _held_rows(self) -> held.Loaded | None:
        """The budget's held rows in the outbox database (None: they cannot be kept now).

        When the outbox found its file damaged, what of them still reads there is taken.
        """
        recovered = self.outbox.recovered
        damaged = recovered.quarantined if recovered is not None else None
        try:
            return self.outbox.transact(lambda db: held.load(db, damaged, MAX_HELD_BYTES))
        except TransportError as exc:
            log.error("byte budget: held crossings are kept in memory only: %s", exc)
            return None

    def _batch_policy(self, settings: GatewaySettings) -> BatchPolicy:
        """Compact batches for a bulk backlog: as ``[outbox] batch`` says (or negotiated)."""
        box = settings.outbox
        own = Batching(
            self.topics.batch, box.batch_min_events, box.batch_max_events, box.batch_max_bytes
        )
        return BatchPolicy(box.batch, own, self.topics.prefix)

    # -- settings --------------------------------------------------------------------

    @property
    def settings(self) -> GatewaySettings:
        """The running settings."""
        return self.live.current

    def apply_settings(self, change: SettingsChange) -> ApplyResult:
        """Validate, save and apply a settings change (see :class:`LiveSettings`).

        An ``[mqtt]`` change is kept only if the unit reconnects with it
        (:class:`~gateway.runtime.link_gate.ConnectionGate`).
        """
        return self.gate.apply(change)

    # -- link callbacks (network thread: hand on and return) ---------------------------

    def _on_link_connected(self, generation: int) -> None:
        self.batch_policy.on_connected()
        self.forwarder.on_connected(generation)

    def _on_link_published(self, generation: int, mid: int, reason_code: int) -> None:
        self.forwarder.on_published(generation, mid, reason_code)

    def _on_command(self, msg: Incoming) -> None:
        if self.batch_policy.owns(msg.topic):  # a central consumer's declaration
            self.batch_policy.on_message(msg.topic, msg.payload)
            return
        self.commands.submit(msg)

    # -- events ----------------------------------------------------------------------

    def emit(self, drafts: Sequence[Draft], *, gated: bool = True) -> Stored:
        """Store events in the outbox (durably, with their seq and id) and wake the forwarder.

        Under a byte budget the drafts pass the budget gate first (``gated``), which
        may hold crossings and summarize readings (:mod:`gateway.budget.gate`): what it
        holds is written in the transaction that stores the rest.
        """
        if not gated or self.budget is None:
            return self._store(drafts)
        with self.budget.admit(drafts) as step:  # not stored: undone, the drafts counted lost
            return self._store(step.drafts, step.write, unstored=len(drafts))

    def _metered_bytes(self) -> int:
        """The link's byte total as the budget counts it (``[budget] meter``)."""
        mqtt = sum(self.link.wire_bytes())
        if self.budget is None or self.budget.cfg.meter == "mqtt":
            return mqtt
        ip = sum(self.link.ip_bytes())
        return ip if ip else mqtt  # no kernel counters: the MQTT bytes, as the floor

    def store_budget_step(self, step: AbstractContextManager[Step]) -> bool:
        """Store a step of the budget gate (what it lets go, with its rows' changes).

        When that fails the gate keeps what it held (nothing is counted lost) and tries
        again at a later step; returns whether it was stored.
        """
        try:
            with step as taken:
                self._store(taken.drafts, taken.write, unstored=0)
        except Exception as exc:  # a full disk; held events stay held (and in their rows)
            self._emit_log.log("held", logging.ERROR, "held events not stored yet: %s", exc)
            return False
        return True

    def _store(
        self,
        drafts: Sequence[Draft],
        also: held.Write | None = None,
        unstored: int | None = None,
    ) -> Stored:
        """Store in the outbox (``also``, ``unstored``: :meth:`Outbox.add`); wake the forwarder."""
        alerts = sum(1 for draft in drafts if lane_of(draft.type) == ALERT)
        self.urgency.begin(alerts)  # the drain steps aside until they are handed over
        try:
            stored = self.outbox.add(drafts, also=also, unstored=unstored)
        except BaseException:
            self.urgency.handed_over(alerts)  # not stored: nothing to wait for
            raise
        self.forwarder.wake()
        return stored

    def publish_manifest(self) -> None:
        """Store a delivery-ledger manifest (a failure is counted and logged once a minute)."""
        try:
            self.outbox.add_manifest(time.time(), self.settings.events.manifest_interval_s)
        except TransportError as exc:
            self._emit_log.log("manifest", logging.ERROR, "manifest lost: %s", exc)
            return
        self.forwarder.wake()

    def _emit_safely(self, drafts: Sequence[Draft], *, gated: bool = True) -> bool:
        """Store events; True when stored (``gated``: through the budget gate).

        On failure they are counted as lost (a camera or sensor thread must survive a
        full disk) and one line a minute is logged, not a traceback per event.
        """
        try:
            self.emit(drafts, gated=gated)
        except TransportError as exc:  # counted in lost_store by the outbox, seqs consumed
            self._drop_pending = True
            self._emit_log.log("store", logging.ERROR, "events lost: %s", exc)
            return False
        except Exception as exc:  # an event that cannot be encoded: a bug, still counted
            self.outbox.count_lost(len(drafts))
            self._emit_log.log(
                f"emit:{type(exc).__name__}",
                logging.ERROR,
                "could not store %d event(s): %s: %s",
                len(drafts),
                type(exc).__name__,
                exc,
            )
            return False
        return True

    def on_analytics(self, events: list[AnalyticsEvent]) -> None:
        """Sink of the camera runners (local rules first: they must not wait for the disk)."""
        if self.rules is not None:
            self.rules.on_analytics(events)
        self._emit_safely([builder.from_analytics(e) for e in events])

    def on_reading(self, reading: Reading) -> None:
        """Sink of the sensor readers (at most one reading per sensor per publish interval)."""
        if self.rules is not None:
            self.rules.on_reading(reading)
        self.readings[reading.sensor_id] = reading
        throttle = self._throttles.get(reading.sensor_id)
        if throttle is not None and not throttle.admit():
            return
        self._emit_safely([builder.sensor_reading(reading)])

    def availability(self, state: Literal["online", "offline"]) -> Message:
        """Build the retained availability message (outside the sequence: ``seq`` 0)."""
        draft = builder.availability(state, time.time(), __version__)
        event = envelope(
            draft, seq=0, event_id=new_id(), gateway=self.topics.gateway, site=self.topics.site
        )
        return Message(self.topics.status, encode(event), retain=True)

    def health(self) -> GatewayHealth:
        """The typed health of every part, now (a part whose report fails is marked so)."""
        cameras: dict[str, CameraHealth | PartFailure] = {}
        for cam_id, runner in list(self.cameras.items()):
            try:
                cameras[cam_id] = runner.health()
            except Exception as exc:  # health must not fail because one camera does
                cameras[cam_id] = PartFailure(str(exc))
        sensors: dict[str, SensorHealth | PartFailure] = {}
        for sensor_id, reader in list(self.sensors.items()):
            try:
                sensors[sensor_id] = reader.health()
            except Exception as exc:
                sensors[sensor_id] = PartFailure(str(exc))
        outbox = self.forwarder.health()
        if self.batch_policy.mode != "off":  # (an "off" unit's health stays as it was)
            outbox = replace(outbox, batch=self.batch_policy.health(self.forwarder.batches))
        return GatewayHealth(
            uptime_s=self.uptime(),
            system=self.metrics.sample(),
            cameras=cameras,
            sensors=sensors,
            outbox=outbox,
            mqtt=self.link.health(),
            dropped_events=outbox.lost,
            budget=self.budget.health() if self.budget is not None else None,
        )

    def health_draft(self) -> Draft:
        """Build a health event of the whole gateway, now."""
        rules = self.rules.health() if self.rules is not None else ()
        return health_event(time.time(), self.health(), rules)

    def _on_audit(self, record: AuditRecord) -> None:
        """Store the audit event of an obeyed command (through the outbox, like any event)."""
        caller = record.caller
        self._emit_safely(
            [
                builder.command_audit(
                    timestamp=time.time(),
                    command=record.command,
                    caller=caller.name if caller else None,
                    role=caller.role if caller else None,
                    ok=record.ok,
                    error=record.error,
                    signed_at=caller.issued_at if caller else None,
                    nonce=caller.nonce if caller else None,
                    details=record.details,
                )
            ]
        )
        log.info(
            "command %s by %s: %s",
            record.command,
            caller.name if caller else "unsigned",
            "ok" if record.ok else record.error,
        )

    def publish_health(self) -> None:
        """Store a health event (it leaves through the outbox like any event).

        When the outbox cannot store it (full disk), it is published directly, outside
        the sequence (``seq`` 0), so the centre still hears about the loss.
        """
        draft = self.health_draft()
        if self._emit_safely([draft]):
            return
        event = envelope(
            draft, seq=0, event_id=new_id(), gateway=self.topics.gateway, site=self.topics.site
        )
        if self.link.publish(self.topics.health, encode(event), qos=1) is None:
            log.debug("health not published directly: not connected")

    def _on_drop(self, count: int) -> None:
        self._emit_log.log(
            "drop", logging.WARNING, "outbox full: dropped the %d oldest event(s)", count
        )
        self._drop_pending = True

    # -- local rules -----------------------------------------------------------------

    def _make_rules(self, settings: GatewaySettings) -> RulesEngine | None:
        if not any(rule.enabled for rule in settings.rules):
            return None
        from gateway.rules.actuators.bridge import ReaderBridgePorts
        from gateway.rules.actuators.registry import ActuatorFactory
        from gateway.rules.engine import RulesEngine

        bridge = ReaderBridgePorts(self.sensors.get)  # type: ignore[arg-type]
        factory = ActuatorFactory(gateway_id=settings.gateway.id, bridge=bridge)
        return RulesEngine(
            settings.rules, factory, self._on_actuation, camera_status=self._camera_status
        )

    def _camera_status(self, camera_id: str) -> CameraStatus | None:
        runner = self.cameras.get(camera_id)
        if runner is None:
            return None
        capture = runner.health().capture
        return CameraStatus(capture.state, capture.last_frame_age_s)

    def _on_actuation(self, actuation: Actuation) -> None:
        self._emit_safely([builder.actuation(actuation)])

    # -- crew console ----------------------------------------------------------------

    def _make_console(self, settings: GatewaySettings) -> ConsoleServer | None:
        if not settings.console.enabled:
            return None
        from gateway.console.server import ConsoleServer
        from gateway.console.unit import ConsoleUnit

        unit = ConsoleUnit(
            name=f"{self.topics.site}/{self.topics.gateway}",
            settings=lambda: self.settings,
            cameras=self.cameras,
            health=lambda: self.health_draft().data,
            readings=lambda: dict(self.readings),
            apply_settings=self.apply_settings,
            audit=self._on_audit,
            config_path=self.live.config_path,
        )
        return ConsoleServer(settings.console, unit)

    def _start_console(self) -> None:
        """Serve the console; the gateway runs on without it when it cannot listen."""
        if self.console is None:
            return
        from gateway.console.server import ConsoleError

        try:
            self.console.start()
        except ConsoleError as exc:
            log.error("%s; the gateway runs without its console", exc)
            self.console.stop()
            self.console = None

    # -- cameras and sensors ---------------------------------------------------------

    def _make_runner(self, camera: CameraConfig) -> RunningCamera:
        from gateway.vision.detector import load_detector
        from gateway.vision.runner import CameraRunner

        detector = load_detector(camera.detector or self.settings.detector, self.settings.model_dir)
        reference_dir = self.settings.gateway.data_dir / "reference"
        return CameraRunner(camera, detector, self.on_analytics, reference_dir=reference_dir)

    def replace_camera(self, camera: CameraConfig) -> None:
        """Restart one camera's pipeline with a new config (lines, zones, ...)."""
        old = self.cameras.get(camera.id)
        runner = self._make_runner(camera)
        if old is not None:
            old.stop()
            if self.budget is not None:  # crossings the old pipeline's aggregate would count
                self.store_budget_step(self.budget.release(camera.id))
        self.cameras[camera.id] = runner
        runner.start()

    def _restart_if_running(self, camera: CameraConfig) -> None:
        if camera.id in self.cameras:
            self.replace_camera(camera)

    def _store_leftover(self) -> None:
        """Store what the run before held and no aggregate will count, before new events."""
        if self.budget is not None:
            self.store_budget_step(self.budget.recover())
        elif self._leftover:
            drafts, changes = held.let_go(self._leftover)
            try:
                self._store(drafts, changes.apply, unstored=0)
            except TransportError as exc:  # the rows stay: the next start tries again
                log.error("events held by a byte budget not stored yet: %s", exc)
            else:
                self._leftover = []

    def _start_sources(self) -> None:
        for camera in self.settings.cameras:
            if camera.enabled:
                runner = self._make_runner(camera)
                self.cameras[camera.id] = runner
                runner.start()
        enabled = [s for s in self.settings.sensors if s.enabled]
        if enabled:
            from gateway.serialports.reader import SensorReader

            for sensor in enabled:
                reader = SensorReader(sensor, self.on_reading)
                self.sensors[sensor.id] = reader
                reader.start()
        if self.synthetic is not None:
            self.synthetic.start()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Connect, start forwarding, then start cameras, sensors and the ticker."""
        self._started = True
        self._store_leftover()
        self.commands.start()
        self.forwarder.start()
        self.link.start()
        try:
            if self.rules is not None:
                self.rules.start()
            self._start_sources()
        except Exception:
            self.stop()
            raise
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)
        self._ticker.start()
        self._start_console()
        self.publish_health()
        sdnotify.notify("READY=1")
        log.info(
            "gateway %s running: %d camera(s), %d sensor(s)",
            self.topics.gateway,
            len(self.cameras),
            len(self.sensors),
        )

    def _tick(self) -> None:
        watchdog = sdnotify.watchdog_interval_s()
        next_health = time.monotonic() + self.settings.events.health_interval_s
        manifest_s = self.settings.events.manifest_interval_s
        next_manifest = time.monotonic() + manifest_s
        next_enforce = time.monotonic() + _ENFORCE_EVERY_S
        next_watchdog = time.monotonic()
        next_budget = time.monotonic()
        while not self._stop.wait(_TICK_S):
            now = time.monotonic()
            if self.budget is not None and now >= next_budget:
                next_budget = now + _BUDGET_EVERY_S
                self.store_budget_step(self.budget.tick(self._metered_bytes()))
            if watchdog is not None and now >= next_watchdog and self.forwarder.alive:
                sdnotify.notify("WATCHDOG=1")
                next_watchdog = now + watchdog
            if now >= next_enforce:
                next_enforce = now + _ENFORCE_EVERY_S
                try:
                    self.outbox.enforce()
                except Exception:
                    log.exception("outbox bounds")
            if manifest_s > 0 and now >= next_manifest:
                next_manifest = now + manifest_s
                self.publish_manifest()
            drop_health = self._drop_pending and now - self._last_drop_health >= _DROP_HEALTH_MIN_S
            if now >= next_health or drop_health:
                next_health = now + self.settings.events.health_interval_s
                self._drop_pending = False
                self._last_drop_health = now
                self.publish_health()

    def stop(self) -> None:
        """Stop sources, flush what the broker will take, publish ``offline`` and close."""
        if not self._started:
            self.outbox.close()
            return
        self._started = False
        sdnotify.notify("STOPPING=1")
        self._stop.set()
        if self.rules is not None:  # outputs to their fail-safe states first
            self.rules.stop()
        if self.console is not None:
            self.console.stop()
        if self.synthetic is not None:
            self.synthetic.stop()
        for runner in self.cameras.values():
            runner.stop()
        for reader in self.sensors.values():
            reader.stop()
        if self._ticker is not None:
            self._ticker.join(5.0)
        if self.budget is not None:  # what no aggregate or summary will carry now
            self.store_budget_step(self.budget.flush())
        self.commands.stop()
        if self.settings.events.manifest_interval_s > 0:
            self.publish_manifest()  # the last account, so a clean stop leaves none open
        self.forwarder.stop(drain_s=5.0)
        self.link.stop(final=self.availability("offline"))
        self.outbox.close()
        log.info("gateway stopped")

    def __enter__(self) -> App:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
