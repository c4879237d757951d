"""Records of the local rules' actuations: why a rule wants a state, each write, health.

The rules engine (:mod:`gateway.rules`) produces them; :mod:`gateway.events` maps
:class:`Actuation` onto the ``actuation`` event and :class:`RuleHealth` onto the
``health`` event. They sit here, below both, as :mod:`gateway.health` holds the other
parts' health records. This module imports nothing of the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# What a rule wants its outputs to show.
RuleState = Literal["active", "idle", "fail_safe"]
# The result of one state-change write.
Outcome = Literal["ok", "failed", "gave_up"]
OutputValue = bool | int | float | str


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a rule wants a state: what happened, where, and when (epoch seconds).

    ``timestamp`` is the frame (or reading) time of the event that caused the change, or
    the moment a timed change became due (hold expired, dwell reached); the latency of an
    actuation is measured from it.
    """

    reason: str
    timestamp: float
    trigger: str
    source: str
    details: dict[str, str | int | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Actuation:
    """One state-change write to one output (an ``actuation`` event)."""

    rule: str
    action: int
    action_type: str
    target: str
    state: RuleState
    value: OutputValue
    outcome: Outcome
    cause: Cause
    latency_ms: float
    attempts: int
    late: bool
    timestamp: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutputHealth:
    """One output's state and counters."""

    action: int
    action_type: str
    target: str
    state: RuleState | None
    desired: RuleState
    writes: int
    failures: int
    retries: int
    coalesced: int
    deferred: int
    refreshes: int
    pending: bool
    last_error: str | None
    last_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class RuleHealth:
    """One rule's state for the ``health`` event."""

    rule: str
    state: RuleState
    reason: str
    trigger_active: bool
    fired: int
    outputs: tuple[OutputHealth, ...]
    late: int
