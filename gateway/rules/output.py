"""One output's worker thread: the desired state in, writes to the actuator out.

The rules engine calls :meth:`OutputWorker.want` from whatever thread saw the trigger
(a camera pipeline, a sensor reader, the engine's ticker); it only records the desired
state under a lock and wakes the worker, so a slow or hung actuator never blocks the
caller. The worker writes what the output should show *now*:

* ``fail_safe`` at once, bypassing hold and rate limit (safety first);
* ``active`` while the rule wants it and for ``hold_s`` after it last did (a pulse, such
  as an alert, keeps the output on for ``hold_s``; a switched-on output stays on at least
  that long), but not before ``min_off_s`` after it went idle;
* ``idle`` otherwise;
* at most ``max_changes_per_min`` changes per sliding minute: a change beyond that waits.

Changes coalesce: while a write is under way or waits, only the latest desired state
matters and intermediate ones are counted as ``coalesced``. A failed write is retried
with the project's back-off (``gateway/backoff.py``) until it succeeds or the desired
state changes; each state change produces one :class:`~gateway.actuation.Actuation`
when it is written (``ok``) and one on its first failure (``failed``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.actuation import Actuation, Cause, Outcome, OutputHealth, OutputValue, RuleState
from gateway.backoff import Backoff
from gateway.config.rules import OutputTiming
from gateway.rules.actuators.base import Actuator, ActuatorError, WriteContext

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.05
FOREVER = float("inf")


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """Who this output is and the values of its three states."""

    rule: str
    action: int
    action_type: str
    target: str
    values: dict[RuleState, OutputValue]
    timing: OutputTiming
    max_latency_ms: float
    lease_s: float = 0.0
    max_retries: int | None = None  # None: retry until written or superseded


class OutputWorker:
    """Drives one actuator from a rule's desired state (see the module docstring)."""

    def __init__(
        self,
        spec: OutputSpec,
        actuator: Actuator,
        on_actuation: Callable[[Actuation], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.actuator = actuator
        self.on_actuation = on_actuation
        self._clock = clock
        self._wall = wall
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        # desired (written under the lock by want())
        self._desired: RuleState = "fail_safe"
        self._wanted_at = -FOREVER  # monotonic time the rule last wanted active
        self._cause = Cause("start", wall(), "start", "gateway")  # of the latest change
        self._active_cause = self._cause  # of the latest activation
        self._pending = False  # a desired change the worker has not looked at yet
        # output (owned by the worker thread)
        self.state: RuleState | None = None
        self._switched_idle_at = -FOREVER
        self._switched_on_at = -FOREVER
        self._changes: collections.deque[float] = collections.deque(
            maxlen=spec.timing.max_changes_per_min
        )
        self._last_write = -FOREVER
        self._backoff = Backoff(RETRY_MIN_S, spec.timing.retry_max_s)
        self._failing: RuleState | None = None  # the state whose write is failing
        self._retry_at = -FOREVER
        self._deferring = False
        # A write that failed may still have reached the device (a late answer, a lost
        # echo): after a failed switch-on the output may be on, so it is not switched
        # off before this time (its hold), and its state is unknown until a write succeeds.
        self._unsure_on_until = -FOREVER
        self._given_up: RuleState | None = None  # retries exhausted for this state
        self._attempts = 0
        # counters
        self.writes = self.failures = self.retries = 0
        self.coalesced = self.deferred = self.refreshes = 0
        self.last_error: str | None = None
        self.last_latency_ms: float | None = None
        self.opened = False

    # -- the caller's side ---------------------------------------------------------------

    def want(self, state: RuleState, cause: Cause) -> None:
        """Record the rule's desired state (never blocks on the actuator)."""
        with self._cond:
            now = self._clock()
            if state == "active":
                if self._desired != "active":
                    self._active_cause = cause
                self._wanted_at = now
            elif state == "fail_safe":
                self._wanted_at = -FOREVER  # what was seen before is stale: no hold
            elif self._desired == "active":
                self._wanted_at = now  # it wanted active until now: the hold starts here
            if state != self._desired:
                if self._pending:
                    self.coalesced += 1
                self._pending = True
                self._cause = cause
                self._desired = state
                self._given_up = None
            self._cond.notify()

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"rule-{self.spec.rule}-{self.spec.action}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Write the fail-safe state (one attempt, bounded), stop the thread; True if written."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s + self.spec.timing.timeout_s)
            if self._thread.is_alive():  # a hung write: give up on it, the state is unknown
                log.warning(
                    "rule %s output %s: worker did not stop", self.spec.rule, self.spec.target
                )
                return False
        ok = self._write("fail_safe", Cause("stop", self._wall(), "stop", "gateway"), final=True)
        self.actuator.close()
        return ok

    def health(self) -> OutputHealth:
        """Counters and states now."""
        with self._cond:
            return OutputHealth(
                action=self.spec.action,
                action_type=self.spec.action_type,
                target=self.spec.target,
                state=self.state,
                desired=self._desired,
                writes=self.writes,
                failures=self.failures,
                retries=self.retries,
                coalesced=self.coalesced,
                deferred=self.deferred,
                refreshes=self.refreshes,
                pending=self._failing is not None,
                last_error=self.last_error,
                last_latency_ms=self.last_latency_ms,
            )

    # -- the worker ----------------------------------------------------------------------

    def _target(self, now: float) -> tuple[RuleState, float]:
        """What the output should show now, and when that may change by itself.

        A want is never lost: one that arrives while the output is off switches it on as
        soon as ``min_off_s`` (and the rate limit) allow, and it then stays on ``hold_s``
        after switching on and after the last want.
        """
        if self._desired == "fail_safe":
            return "fail_safe", FOREVER
        hold = self.spec.timing.hold_s
        if self.state == "active":
            if self._desired == "active":
                return "active", FOREVER
            until = max(self._wanted_at, self._switched_on_at) + hold
            return ("active", until) if now < until else ("idle", FOREVER)
        if self._desired != "active" and self._wanted_at <= self._switched_idle_at:
            return "idle", FOREVER
        earliest = self._switched_idle_at + self.spec.timing.min_off_s
        if now < earliest:
            return self.state or "idle", earliest
        return "active", FOREVER

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                now = self._clock()
                target, wake = self._target(now)
                self._pending = False
                change = target not in (self.state, self._given_up)
                if change and target != "fail_safe":
                    allowed = self._rate_allowed(now)
                    if allowed > now:
                        if not self._deferring:  # count each held-back change once
                            self.deferred += 1
                            self._deferring = True
                        self._cond.wait(min(wake, allowed) - now)
                        continue
                self._deferring = False
                if target == "idle" and now < self._unsure_on_until:
                    self._cond.wait(self._unsure_on_until - now)
                    continue
                if self._failing is not None and self._failing == target and now < self._retry_at:
                    self._cond.wait(self._retry_at - now)
                    continue
                if not change and self._failing is None and not self._refresh_due(now):
                    refresh = self._next_refresh()
                    until = min(wake, refresh)
                    self._cond.wait(None if until == FOREVER else max(until - now, 0.001))
                    continue
                cause = self._cause_for(target, now)
            self._write(target, cause)

    def _rate_allowed(self, now: float) -> float:
        changes = self._changes
        if len(changes) < (changes.maxlen or 1):
            return now
        return changes[0] + 60.0

    def _refresh_every(self) -> float | None:
        every = self.spec.timing.refresh_s
        if self.spec.lease_s > 0:
            lease_every = self.spec.lease_s / 3
            every = lease_every if every is None else min(every, lease_every)
        return every

    def _next_refresh(self) -> float:
        every = self._refresh_every()
        if self.state is None or every is None:
            return FOREVER
        return self._last_write + every

    def _refresh_due(self, now: float) -> bool:
        return now >= self._next_refresh()

    def _cause_for(self, target: RuleState, now: float) -> Cause:
        if target == "fail_safe":
            return self._cause
        if target == "active":
            return self._active_cause
        if self.state == "active":  # the hold ran out: the change was due at wanted_at + hold_s
            due_mono = max(self._wanted_at, self._switched_on_at) + self.spec.timing.hold_s
            due = max(self._wall() - max(now - due_mono, 0.0), self._cause.timestamp)
            base = self._cause
            return Cause("hold_expired", due, base.trigger, base.source, base.details)
        return self._cause

    def _write(self, target: RuleState, cause: Cause, final: bool = False) -> bool:
        spec = self.spec
        value = spec.values[target]
        refresh = target == self.state and self._failing is None and not final
        context = WriteContext(spec.rule, target, cause, spec.timing.timeout_s, spec.lease_s)
        started = self._clock()
        try:
            if not self.opened:
                self.actuator.open()
                self.opened = True
            self.actuator.write(value, context)
        except Exception as exc:  # ActuatorError or an unexpected failure: reported, retried
            return self._failed(
                target=target,
                value=value,
                cause=cause,
                exc=exc,
                refresh=refresh,
                final=final,
                started=started,
            )
        done_wall = self._wall()
        with self._cond:
            done = self._clock()
            self._last_write = done
            if refresh:
                self.refreshes += 1
                return True
            attempts = self._attempts + 1
            self._attempts = 0
            self._failing = None
            self._backoff.reset()
            if target != self.state:
                self._changes.append(started)
                # The hold runs from the device's confirmation, not from the start of the
                # write: the device had the state by then at the latest, so it shows it for
                # the whole hold however long this write took to arrive. (Switching idle
                # keeps the start: a want that arrives during that write is not stale.)
                if target == "active":
                    self._switched_on_at = done
                else:
                    self._switched_idle_at = started
            self.state = target
            self.writes += 1
            latency = max((done_wall - cause.timestamp) * 1000.0, 0.0)
            self.last_latency_ms = latency
            self.last_error = None
        self._report(
            state=target, value=value, outcome="ok", cause=cause, latency_ms=latency,
            attempts=attempts, error=None,
        )  # fmt: skip
        return True

    def _failed(
        self,
        *,
        target: RuleState,
        value: OutputValue,
        cause: Cause,
        exc: Exception,
        refresh: bool,
        final: bool,
        started: float,
    ) -> bool:
        message = str(exc) if isinstance(exc, ActuatorError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ActuatorError):
            log.exception("rule %s output %s: write failed", self.spec.rule, self.spec.target)
        if self.opened:
            try:
                self.actuator.close()  # reconnect on the next attempt
            except Exception:  # closing a broken link may fail too
                log.debug("close after failure", exc_info=True)
            self.opened = False
        with self._cond:
            self.failures += 1
            self.last_error = message[:200]
            if target == "active":
                hold_until = started + self.spec.timing.hold_s
                self._unsure_on_until = max(self._unsure_on_until, hold_until)
            self.state = None  # it may or may not have taken effect: write the next one
            if refresh:  # the next refresh or change writes again
                self._last_write = self._clock()
                return False
            first = self._failing != target or final
            if self._failing == target:
                self.retries += 1
            self._failing = target
            self._attempts += 1
            attempts = self._attempts
            self._retry_at = self._clock() + self._backoff.next_delay()
            limit = self.spec.max_retries
            gave_up = limit is not None and attempts > limit
            if gave_up:
                self._given_up, self._failing, self._attempts = target, None, 0
                self._backoff.reset()
        if gave_up and not first:
            log.warning(
                "rule %s output %s: gave up writing %s after %d attempts: %s",
                self.spec.rule, self.spec.target, target, attempts, message,
            )  # fmt: skip
            latency = max((self._wall() - cause.timestamp) * 1000.0, 0.0)
            self._report(
                state=target, value=value, outcome="gave_up", cause=cause, latency_ms=latency,
                attempts=attempts, error=message[:200],
            )  # fmt: skip
        elif first:
            log.warning(
                "rule %s output %s: writing %s failed: %s (retrying)",
                self.spec.rule, self.spec.target, target, message,
            )  # fmt: skip
            latency = max((self._wall() - cause.timestamp) * 1000.0, 0.0)
            self._report(
                state=target, value=value, outcome="failed", cause=cause, latency_ms=latency,
                attempts=attempts, error=message[:200],
            )  # fmt: skip
        return False

    def _report(
        self,
        *,
        state: RuleState,
        value: OutputValue,
        outcome: Outcome,
        cause: Cause,
        latency_ms: float,
        attempts: int,
        error: str | None,
    ) -> None:
        spec = self.spec
        actuation = Actuation(
            rule=spec.rule,
            action=spec.action,
            action_type=spec.action_type,
            target=spec.target,
            state=state,
            value=value,
            outcome=outcome,
            cause=cause,
            latency_ms=round(latency_ms, 2),
            attempts=attempts,
            late=latency_ms > spec.max_latency_ms,
            timestamp=self._wall(),
            error=error,
        )
        try:
            self.on_actuation(actuation)
        except Exception:  # the event sink's failure must not stop the output
            log.exception("rule %s: actuation sink failed", spec.rule)
