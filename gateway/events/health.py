"""The ``health`` event: the typed health of every part mapped onto the schema, here only.

:func:`health` takes a :class:`~gateway.health.GatewayHealth` (and the rules' health)
and returns the draft whose ``data`` matches ``schema/v1.json``. Strings that may carry
credentials (camera URLs in errors, pyserial URLs) are redacted; counters are never
negative; numbers that are not finite become ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.actuation import RuleHealth
from gateway.events.builder import _count, _nonneg
from gateway.events.envelope import GATEWAY_SOURCE, Draft, format_ts
from gateway.health import (
    BatchHealth,
    BudgetHealth,
    CameraHealth,
    GatewayHealth,
    LinkHealth,
    OutboxHealth,
    PartFailure,
    SensorHealth,
    SystemHealth,
)
from gateway.jsontypes import JsonObject
from gateway.redaction import redact

_ERROR_CHARS = 200

Scalar = float | int | str | bool | None


def _scalar(value: object) -> Scalar:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _error(text: str) -> str:
    return str(redact(text[:_ERROR_CHARS]))


def _failed_camera(failure: PartFailure) -> dict[str, Scalar]:
    return {
        "state": "error",
        "fps": 0.0,
        "inference_ms": 0.0,
        "skipped_frames": 0,
        "reconnects": 0,
        "last_error": _error(failure.error),
    }


def camera(health: CameraHealth | PartFailure) -> dict[str, Scalar]:
    """One camera's entry (``cameras.<id>``)."""
    if isinstance(health, PartFailure):
        return _failed_camera(health)
    capture, pipeline = health.capture, health.pipeline
    out: dict[str, Scalar] = {
        "state": health.state,
        "fps": round(_nonneg(health.processed_fps), 2),
        "inference_ms": round(_nonneg(pipeline.inference_ms_avg), 2),
        "skipped_frames": _count(capture.frames_skipped),
        "reconnects": _count(capture.reconnects),
        "capture_fps": _scalar(capture.capture_fps),
        "frames_captured": capture.frames_captured,
        "stalls": capture.stalls,
        "last_frame_age_s": _scalar(capture.last_frame_age_s),
        "errors": health.errors,
        "pipeline_frames": pipeline.frames,
        "pipeline_events": pipeline.events,
        "pipeline_skipped_motion": pipeline.skipped_motion,
        **{key: _scalar(value) for key, value in health.analytics.items()},
    }
    if health.last_error:
        out["last_error"] = _error(health.last_error)
    return out


def sensor(health: SensorHealth | PartFailure) -> dict[str, Scalar]:
    """One sensor's entry (``sensors.<id>``): its counters and state."""
    if isinstance(health, PartFailure):
        return {"state": "error", "last_error": _error(health.error)}
    counters: JsonObject = redact(health.counters())
    out: dict[str, Scalar] = {}
    for key, value in counters.items():
        if not isinstance(value, float) or math.isfinite(value):
            out[key] = _scalar(value)
    return out


def system(health: SystemHealth) -> dict[str, Scalar]:
    """The ``system`` entry."""
    return {
        "cpu_percent": health.cpu_percent,
        "load_1m": health.load_1m,
        "cpu_temp_c": health.cpu_temp_c,
        "mem_used_bytes": health.mem_used_bytes,
        "mem_total_bytes": health.mem_total_bytes,
        "mem_percent": health.mem_percent,
        "disk_free_bytes": health.disk_free_bytes,
    }


def outbox(health: OutboxHealth) -> dict[str, Scalar]:
    """The ``outbox`` entry."""
    return {
        "depth": health.depth,
        "bytes": health.bytes,
        "oldest_age_s": health.oldest_age_s,
        "inflight": health.inflight,
        **health.losses,
        "damaged": health.damaged,
        "disk_bytes": health.disk_bytes,
        "limit_bytes": health.limit_bytes,
        "refused": health.refused,
        "held_topics": health.held_topics,
        **{f"depth_{lane}": depth for lane, depth in health.lanes.items()},
        **(batch(health.batch) if health.batch is not None else {}),
    }


def batch(health: BatchHealth) -> dict[str, Scalar]:
    """The ``outbox.batch_*`` fields: compact batches in force (absent keys: none)."""
    out: dict[str, Scalar] = {
        "batch_mode": health.mode,
        "batch_state": health.state,
        "batch_since": format_ts(health.since),
        "batch_reason": health.reason[:200],
        "batch_refusals": health.refusals,
        "batches": health.batches,
    }
    if health.encoding is not None:
        out["batch_encoding"] = health.encoding
    if health.types:
        out["batch_types"] = ",".join(health.types)
    if health.consumers:
        out["batch_consumers"] = ",".join(health.consumers)[:512]
    return out


def link(health: LinkHealth) -> dict[str, Scalar]:
    """The ``mqtt`` entry."""
    return {
        "state": health.state,
        "protocol": health.protocol,
        "connects": health.connects,
        "last_error": health.last_error,
        "subscribed": health.subscribed,
        "bytes_sent": max(health.bytes_sent, 0),
        "bytes_received": max(health.bytes_received, 0),
        "ip_bytes_sent": max(health.ip_bytes_sent, 0),
        "ip_bytes_received": max(health.ip_bytes_received, 0),
    }


def budget(health: BudgetHealth) -> dict[str, Scalar]:
    """The ``budget`` entry."""
    return {
        "level": health.level,
        "level_index": health.level_index,
        "over_budget": health.over_budget,
        "changes": health.changes,
        "bytes_today": health.bytes_today,
        "bytes_month": health.bytes_month,
        "limit_day": health.limit_day,
        "limit_month": health.limit_month,
        "projected_day": max(health.projected_day, 0),
        "projected_month": max(health.projected_month, 0),
        "rate_bps": max(health.rate_bps, 0.0),
        "crossings_withheld": health.crossings_withheld,
        "crossings_held": health.crossings_held,
        "readings_summarized": health.readings_summarized,
        "summaries": health.summaries,
        "recovered_held": health.recovered_held,
        "unreadable_held": health.unreadable_held,
        "rolled_back_crossings": health.rolled_back_crossings,
        "rolled_back_readings": health.rolled_back_readings,
    }


def rule_health(health: RuleHealth) -> JsonObject:
    """One rule's entry of the ``health`` event."""
    return {
        "state": health.state,
        "reason": health.reason[:64],
        "trigger_active": health.trigger_active,
        "fired": health.fired,
        "late": health.late,
        "outputs": [
            {
                "action": o.action,
                "action_type": o.action_type,
                "target": o.target[:512],
                "state": o.state,
                "desired": o.desired,
                "writes": o.writes,
                "failures": o.failures,
                "retries": o.retries,
                "coalesced": o.coalesced,
                "deferred": o.deferred,
                "refreshes": o.refreshes,
                "pending": o.pending,
                "last_error": o.last_error,
                "last_latency_ms": None
                if o.last_latency_ms is None
                else round(_nonneg(o.last_latency_ms), 2),
            }
            for o in health.outputs
        ],
    }


def health(timestamp: float, report: GatewayHealth, rules: Sequence[RuleHealth] = ()) -> Draft:
    """Build a ``health`` event of the whole gateway (``rules`` only when configured)."""
    data: JsonObject = {
        "uptime_s": round(_nonneg(report.uptime_s), 1),
        "system": system(report.system),
        "cameras": {cam: camera(h) for cam, h in report.cameras.items()},
        "sensors": {sid: sensor(h) for sid, h in report.sensors.items()},
        "outbox": outbox(report.outbox),
        "mqtt": link(report.mqtt),
        "dropped_events": max(int(report.dropped_events), 0),
    }
    if report.budget is not None:
        data["budget"] = budget(report.budget)
    if rules:
        data["rules"] = {r.rule: rule_health(r) for r in rules}
    return Draft("health", GATEWAY_SOURCE, timestamp, data)
