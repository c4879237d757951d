"""Typed health of a simulated gateway: streaming cameras, an open sensor, a connected link.

The fleet simulator reports these (with its own figures) and tests build health events
from them. Each builder starts from a healthy part with zero counters; keyword arguments
override any field of the record (``dataclasses.replace``), so a field added to a record
in :mod:`gateway.health` is given its default here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gateway.health import (
    CameraHealth,
    CaptureHealth,
    GatewayHealth,
    LinkHealth,
    OutboxHealth,
    PartFailure,
    PipelineHealth,
    SensorHealth,
    SystemHealth,
)

_CAPTURE = CaptureHealth(
    state="streaming",
    frames_captured=0,
    frames_skipped=0,
    reconnects=0,
    stalls=0,
    capture_fps=10.0,
    last_frame_age_s=0.1,
    last_error=None,
    width=1280,
    height=720,
    nominal_fps=10.0,
)
_PIPELINE = PipelineHealth(
    frames=0,
    inferred_full=0,
    inferred_regions=0,
    skipped_motion=0,
    detector_calls=0,
    inference_ms_avg=0.0,
    detect_ms_avg=0.0,
    detections=0,
    events=0,
)
_OUTBOX = OutboxHealth(
    depth=0,
    bytes=0,
    oldest_age_s=0.0,
    inflight=0,
    losses={"dropped": 0},
    damaged=0,
    disk_bytes=0,
    limit_bytes=0,
    refused=0,
    held_topics=0,
)
_LINK = LinkHealth(state="connected", protocol="5", connects=1, last_error=None, subscribed=True)
_SYSTEM = SystemHealth(
    cpu_percent=0.0,
    load_1m=0.0,
    cpu_temp_c=None,
    mem_used_bytes=0,
    mem_total_bytes=0,
    mem_percent=0.0,
    disk_free_bytes=0,
)


def capture(**fields: Any) -> CaptureHealth:
    """A capture thread streaming 1280x720 at 10 fps."""
    return replace(_CAPTURE, **fields)


def pipeline(**fields: Any) -> PipelineHealth:
    """A camera pipeline's counters (all zero unless given)."""
    return replace(_PIPELINE, **fields)


def camera(
    camera_id: str,
    *,
    capture: CaptureHealth = _CAPTURE,
    pipeline: PipelineHealth = _PIPELINE,
    processed_fps: float = 10.0,
) -> CameraHealth:
    """A streaming camera without errors."""
    return CameraHealth(
        camera=camera_id,
        capture=capture,
        processed_fps=processed_fps,
        pipeline=pipeline,
        errors=0,
        pipeline_error=None,
    )


def outbox(**fields: Any) -> OutboxHealth:
    """An outbox with nothing waiting and nothing lost."""
    return replace(_OUTBOX, **fields)


def link(**fields: Any) -> LinkHealth:
    """An MQTT v5 link, connected and subscribed."""
    return replace(_LINK, **fields)


def system(**fields: Any) -> SystemHealth:
    """The machine's figures (zero unless given)."""
    return replace(_SYSTEM, **fields)


def gateway(
    *,
    uptime_s: float,
    cameras: Mapping[str, CameraHealth | PartFailure],
    sensors: Mapping[str, SensorHealth | PartFailure],
    system: SystemHealth = _SYSTEM,
    outbox: OutboxHealth = _OUTBOX,
    mqtt: LinkHealth = _LINK,
    dropped_events: int = 0,
) -> GatewayHealth:
    """The whole report of one gateway."""
    return GatewayHealth(
        uptime_s=uptime_s,
        system=system,
        cameras=cameras,
        sensors=sensors,
        outbox=outbox,
        mqtt=mqtt,
        dropped_events=dropped_events,
    )
