"""Typed health records for tests: the simulator's builders with a busy camera's figures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.health import CameraHealth, GatewayHealth, SensorHealth
from simulators.fleet import health as sim_health

SYSTEM = sim_health.system(
    cpu_percent=12.0,
    load_1m=0.5,
    mem_used_bytes=1000,
    mem_total_bytes=4000,
    mem_percent=25.0,
    disk_free_bytes=10**9,
)
OUTBOX = sim_health.outbox()
BUSY_PIPELINE: dict[str, Any] = {
    "frames": 120,
    "inferred_full": 100,
    "skipped_motion": 20,
    "detector_calls": 100,
    "inference_ms_avg": 15.2,
    "detect_ms_avg": 16.0,
    "detections": 300,
    "events": 12,
}
LINK = sim_health.link()


def camera(camera_id: str = "cam-north", **pipeline: Any) -> CameraHealth:
    """A streaming camera at about 10 fps; ``pipeline`` overrides pipeline counters."""
    return sim_health.camera(
        camera_id,
        capture=sim_health.capture(frames_captured=130, frames_skipped=3, last_frame_age_s=0.05),
        pipeline=sim_health.pipeline(**(BUSY_PIPELINE | pipeline)),
        processed_fps=9.8,
    )


def gateway(**fields: Any) -> GatewayHealth:
    """A gateway with one camera and one sensor; ``fields`` overrides any part."""
    base = sim_health.gateway(
        uptime_s=12.5,
        system=SYSTEM,
        cameras={"cam-north": camera()},
        sensors={"pm": SensorHealth(state="open", last_error="", frames=10, readings=9)},
    )
    return replace(base, **fields)
