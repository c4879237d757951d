"""The local rules engine: analytics, readings and camera states in; output states out.

:class:`RulesEngine` has a narrow interface. The gateway feeds it

* :meth:`RulesEngine.on_analytics` with each camera's analytics events (from the camera
  pipeline's thread),
* :meth:`RulesEngine.on_reading` with sensor readings (from the sensor readers),
* camera states through the ``camera_status`` callable it polls,

and receives every actuation through ``on_actuation`` (from the output threads). Feeding
only updates trigger state and hands the desired state to each output's worker
(:class:`~gateway.rules.output.OutputWorker`): it never waits for an actuator. A ticker
thread re-evaluates time-based changes (dwell reached, a rate window passing, a stale
sensor, a stalled camera, the time of day) every ``tick_s``.

A rule whose camera is not streaming (or whose frames are older than
``conditions.max_frame_age_s``), or whose sensor value is stale, puts its outputs into
their fail-safe state. :meth:`RulesEngine.stop` writes every output's fail-safe state.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from gateway.actuation import Actuation, Cause, RuleHealth, RuleState
from gateway.config.rules import WEEKDAYS, RuleConfig, TimeWindow
from gateway.rules.actuators.registry import ActuatorFactory
from gateway.rules.output import OutputSpec, OutputWorker
from gateway.rules.triggers import Evaluator, make_evaluator
from gateway.rules.types import CameraStatus
from gateway.sensors.types import Reading
from gateway.vision.analytics.types import AnalyticsEvent

log = logging.getLogger(__name__)

TICK_S = 0.02
CAMERA_POLL_S = 0.25

CameraStatusFn = Callable[[str], CameraStatus | None]


def in_window(window: TimeWindow, epoch_s: float) -> bool:
    """Whether local time ``epoch_s`` is inside ``window`` (the start day counts)."""
    local = time.localtime(epoch_s)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = window.minutes()
    day = local.tm_wday
    if start < end:
        inside = start <= minute < end
    elif minute >= start:
        inside = True
    elif minute < end:  # after midnight: the window started the day before
        inside, day = True, (day - 1) % 7
    else:
        inside = False
    return inside and WEEKDAYS[day] in window.days


class _Rule:
    """One rule's evaluator, outputs and current state."""

    def __init__(self, cfg: RuleConfig, outputs: list[OutputWorker]) -> None:
        self.cfg = cfg
        self.evaluator: Evaluator = make_evaluator(cfg.trigger)
        self.outputs = outputs
        self.state: RuleState = "fail_safe"
        self.reason = "start"
        self.trigger_active = False
        self.fired = 0
        self.late = 0


class RulesEngine:
    """Every configured rule, its outputs and the ticker (see the module docstring)."""

    def __init__(
        self,
        rules: Sequence[RuleConfig],
        actuators: ActuatorFactory,
        on_actuation: Callable[[Actuation], None],
        *,
        camera_status: CameraStatusFn | None = None,
        tick_s: float = TICK_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._on_actuation = on_actuation
        self._camera_status_fn = camera_status or (lambda _camera: None)
        self.tick_s = tick_s
        self._wall = wall
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._actuators = actuators
        self._rules: list[_Rule] = []
        for cfg in rules:
            if not cfg.enabled:
                continue
            outputs = [
                OutputWorker(
                    OutputSpec(
                        rule=cfg.id,
                        action=i,
                        action_type=action.type,
                        target=action.target(),
                        values={
                            "active": action.active,
                            "idle": action.idle,
                            "fail_safe": action.fail_safe,
                        },
                        timing=action,
                        max_latency_ms=cfg.max_latency_ms,
                        lease_s=getattr(action, "lease_s", 0.0),
                        max_retries=getattr(action, "retries", None),
                    ),
                    actuators.make(action),
                    self._actuated,
                    wall=wall,
                )
                for i, action in enumerate(cfg.actions)
            ]
            self._rules.append(_Rule(cfg, outputs))
        self._by_camera: dict[str, list[_Rule]] = {}
        self._by_sensor: dict[str, list[_Rule]] = {}
        for rule in self._rules:
            camera = rule.cfg.camera
            if camera is not None:
                self._by_camera.setdefault(camera, []).append(rule)
            sensor = getattr(rule.cfg.trigger, "sensor", None)
            if sensor is not None:
                self._by_sensor.setdefault(sensor, []).append(rule)
        self._camera_status: dict[str, CameraStatus | None] = dict.fromkeys(self._by_camera)
        self._next_camera_poll = 0.0

    @property
    def rules(self) -> list[str]:
        """Ids of the enabled rules."""
        return [r.cfg.id for r in self._rules]

    # -- inputs ---------------------------------------------------------------------------

    def on_analytics(self, events: Sequence[AnalyticsEvent]) -> None:
        """Feed one camera's analytics events (called from its pipeline thread)."""
        if not events or not self._by_camera:
            return
        with self._lock:
            now = self._wall()
            touched: dict[int, _Rule] = {}
            for event in events:
                for rule in self._by_camera.get(event.camera_id, ()):
                    if rule.evaluator.feed(event):
                        touched[id(rule)] = rule
            for rule in touched.values():
                self._evaluate(rule, now)

    def on_reading(self, reading: Reading) -> None:
        """Feed one sensor reading (called from its reader thread)."""
        rules = self._by_sensor.get(reading.sensor_id)
        if not rules:
            return
        with self._lock:
            now = self._wall()
            for rule in rules:
                if rule.evaluator.feed_reading(reading):
                    self._evaluate(rule, now)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Evaluate every rule, start the outputs (each writes its first state), then tick."""
        statuses = self._poll_cameras(time.monotonic(), force=True)
        with self._lock:
            self._camera_status.update(statuses)
            now = self._wall()
            for rule in self._rules:
                self._evaluate(rule, now)
        for rule in self._rules:
            for output in rule.outputs:
                output.start()
        self._thread = threading.Thread(target=self._run, name="rules", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the ticker and write every output's fail-safe state (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        threads = []
        for rule in self._rules:
            for output in rule.outputs:
                thread = threading.Thread(target=output.stop, args=(timeout_s,), daemon=True)
                thread.start()
                threads.append(thread)
        deadline = time.monotonic() + timeout_s + 2.0
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._actuators.close()

    def health(self) -> list[RuleHealth]:
        """Each rule's state and its outputs' counters."""
        with self._lock:
            states = [
                (r, r.state, r.reason, r.trigger_active, r.fired, r.late) for r in self._rules
            ]
        return [
            RuleHealth(
                rule=rule.cfg.id,
                state=state,
                reason=reason,
                trigger_active=active,
                fired=fired,
                outputs=tuple(o.health() for o in rule.outputs),
                late=late,
            )
            for rule, state, reason, active, fired, late in states
        ]

    # -- evaluation -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                statuses = self._poll_cameras(time.monotonic())  # outside the lock
                with self._lock:
                    self._camera_status.update(statuses)
                    now = self._wall()
                    for rule in self._rules:
                        self._evaluate(rule, now)
            except Exception:  # a bug in one evaluation must not stop the rules
                log.exception("rules: evaluation failed")

    def _poll_cameras(self, mono: float, force: bool = False) -> dict[str, CameraStatus | None]:
        """Camera states, every CAMERA_POLL_S (empty in between); call without the lock.

        Reading a camera's health takes a moment: the pipeline threads feeding the engine
        must not wait for it.
        """
        if not force and mono < self._next_camera_poll:
            return {}
        self._next_camera_poll = mono + CAMERA_POLL_S
        out: dict[str, CameraStatus | None] = {}
        for camera in self._camera_status:
            try:
                out[camera] = self._camera_status_fn(camera)
            except Exception as exc:  # an unreadable camera is not ok
                log.debug("rules: camera %s status: %s", camera, exc)
                out[camera] = None
        return out

    def _camera_check(self, rule: _Rule, now: float) -> Cause | None:
        """None when the rule's camera is fine, else why not (and since when)."""
        camera = rule.cfg.camera
        assert camera is not None
        status = self._camera_status.get(camera)
        max_age = rule.cfg.conditions.max_frame_age_s
        ok = status is not None and status.ok(max_age)
        if not ok:  # what the camera reported is stale (its tracks are gone): start afresh
            for other in self._by_camera.get(camera, ()):
                other.evaluator.reset()
        if ok:
            return None
        details: dict[str, str | int | float] = {"camera_state": "unknown"}
        due = now
        if status is not None:
            details["camera_state"] = status.state
            if status.last_frame_age_s is not None:
                details["frame_age_s"] = round(status.last_frame_age_s, 3)
                due = now - max(status.last_frame_age_s - max_age, 0.0)
        return Cause("camera_not_ok", due, rule.cfg.trigger.type, camera, details)

    def _evaluate(self, rule: _Rule, now: float) -> None:
        cfg = rule.cfg
        trigger = cfg.trigger.type
        if cfg.needs_camera_ok and (cause := self._camera_check(rule, now)) is not None:
            rule.trigger_active = False
            self._set(rule, "fail_safe", cause)
            return
        level = rule.evaluator.level(now)
        rule.trigger_active = level.active
        source = cfg.camera or str(getattr(cfg.trigger, "sensor", ""))
        if not level.known:
            self._set(rule, "fail_safe", level.cause or Cause("unknown", now, trigger, source))
            return
        window = cfg.conditions.time_of_day
        if window is not None and not in_window(window, now):
            self._set(rule, "idle", Cause("outside_hours", now, trigger, source))
            return
        active = level.active
        cause = level.cause or Cause("clear", now, trigger, source)
        minimum = cfg.conditions.min_duration_s
        if active and minimum > 0:
            since = level.since if level.since is not None else now
            active = now - since >= minimum
            cause = dataclasses.replace(cause, timestamp=max(cause.timestamp, since + minimum))
        self._set(rule, "active" if active else "idle", cause)

    def _set(self, rule: _Rule, state: RuleState, cause: Cause) -> None:
        if state == "active":
            if rule.state != "active":
                rule.fired += 1
            for output in rule.outputs:
                output.want("active", cause)
        elif state != rule.state:
            for output in rule.outputs:
                output.want(state, cause)
        if state != rule.state:
            level = logging.DEBUG if state == "idle" else logging.INFO
            log.log(level, "rule %s: %s (%s)", rule.cfg.id, state, cause.reason)
        rule.state = state
        rule.reason = cause.reason

    def _actuated(self, actuation: Actuation) -> None:
        if actuation.late:
            with self._lock:
                for rule in self._rules:
                    if rule.cfg.id == actuation.rule:
                        rule.late += 1
        self._on_actuation(actuation)
