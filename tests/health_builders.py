"""Builders of typed health records for tests (realistic defaults, override what matters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.health import (
    CameraHealth,
    CaptureHealth,
    GatewayHealth,
    LinkHealth,
    OutboxHealth,
    PipelineHealth,
    SensorHealth,
    SystemHealth,
)

SYSTEM = SystemHealth(
    cpu_percent=12.0,
    load_1m=0.5,
    cpu_temp_c=None,
    mem_used_bytes=1000,
    mem_total_bytes=4000,
    mem_percent=25.0,
    disk_free_bytes=10**9,
)
OUTBOX = OutboxHealth(
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
LINK = LinkHealth(state="connected", protocol="5", connects=1, last_error=None, subscribed=True)


def camera(camera_id: str = "cam-north", **pipeline: Any) -> CameraHealth:
    """A streaming camera at about 10 fps; ``pipeline`` overrides pipeline counters."""
    capture = CaptureHealth(
        state="streaming",
        frames_captured=130,
        frames_skipped=3,
        reconnects=0,
        stalls=0,
        capture_fps=10.0,
        last_frame_age_s=0.05,
        last_error=None,
        width=1280,
        height=720,
        nominal_fps=10.0,
    )
    counters = PipelineHealth(
        frames=120,
        inferred_full=100,
        inferred_regions=0,
        skipped_motion=20,
        detector_calls=100,
        inference_ms_avg=15.2,
        detect_ms_avg=16.0,
        detections=300,
        events=12,
    )
    return CameraHealth(
        camera=camera_id,
        capture=capture,
        processed_fps=9.8,
        pipeline=replace(counters, **pipeline),
        errors=0,
        pipeline_error=None,
    )


def gateway(**fields: Any) -> GatewayHealth:
    """A gateway with one camera and one sensor; ``fields`` overrides any part."""
    base = GatewayHealth(
        uptime_s=12.5,
        system=SYSTEM,
        cameras={"cam-north": camera()},
        sensors={"pm": SensorHealth(state="open", last_error="", frames=10, readings=9)},
        outbox=OUTBOX,
        mqtt=LINK,
        dropped_events=0,
    )
    return replace(base, **fields)
