"""Each enabled camera opens and delivers a frame within its timeout."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult
from gateway.errors import CameraOpenError, GatewayError


def check_cameras(ctx: Context) -> Iterator[CheckResult]:
    """Open every enabled camera once (no retries) and wait for its first frame."""
    from gateway.sources.base import describe
    from gateway.sources.first_frame import first_frame

    for camera in ctx.settings.cameras:
        name = f"camera {camera.id}"
        if not camera.enabled:
            yield CheckResult("cameras", name, "ok", "disabled (not checked)")
            continue
        timeout = ctx.timeout(camera.stall_timeout_s)
        try:
            got = first_frame(camera.source, timeout)
        except CameraOpenError as exc:
            yield CheckResult(
                "cameras", name, "fail", f"{exc.source}: {exc.cause}: {exc.detail}", exc.fix
            )
            continue
        except GatewayError as exc:
            yield CheckResult(
                "cameras", name, "fail", str(exc), "check the source with gateway camera check"
            )
            continue
        h, w = got.image.shape[:2]
        fps = f", {got.nominal_fps:g} fps nominal" if got.nominal_fps else ""
        yield CheckResult(
            "cameras",
            name,
            "ok",
            f"{describe(camera.source)}: {w}x{h}{fps}, first frame in "
            f"{got.open_s + got.frame_s:.1f} s",
        )
