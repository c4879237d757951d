"""``gateway camera``: check a camera on site and see what the unit sees."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli_options import conf_option
from gateway.commands.common import config_option, json_option, model_dir_option, print_json
from gateway.errors import InputError, SourceError, UsageError

if TYPE_CHECKING:
    from gateway.config.sources import SourceConfig
    from gateway.config.vision import CameraConfig


def check_source(
    source: SourceConfig, seconds: float, timeout_s: float = 10.0
) -> tuple[dict[str, Any], SourceError | None]:
    """Open ``source`` and read it for ``seconds``; report what arrived.

    It is opened once first, so a camera that does not open is reported at once with
    its cause (no retries); then the capture thread reads it as the runtime would.
    """
    from gateway.sources.base import describe, is_live, make_reader
    from gateway.sources.capture import CaptureThread
    from gateway.sources.first_frame import first_frame

    t0 = time.monotonic()
    try:
        first = first_frame(source, timeout_s)
    except SourceError as exc:
        return _failed(describe(source), exc, time.monotonic() - t0), exc
    capture = CaptureThread(
        lambda: make_reader(source, timeout_s=timeout_s),
        name="check",
        live=is_live(source),
        every_frame=True,
        stall_timeout_s=timeout_s,
        reconnect_min_s=0.5,
        reconnect_max_s=2.0,
    )
    received = 0
    first_mono: float | None = None
    last = 0.0
    capture.start()
    try:
        while time.monotonic() - t0 < seconds:
            frame = capture.get(timeout=0.2)
            if frame is None:
                if capture.finished:
                    break
                continue
            received += 1
            first_mono = frame.mono if first_mono is None else first_mono
            last = frame.mono
        health = capture.health()  # before stopping: the state the camera was in
    finally:
        capture.stop(timeout=timeout_s + 2)
    fps = (
        (received - 1) / (last - first_mono)
        if first_mono is not None and received > 1 and last > first_mono
        else 0.0
    )
    return {
        "source": describe(source),
        "ok": received > 0,
        "width": health.width or int(first.image.shape[1]),
        "height": health.height or int(first.image.shape[0]),
        "nominal_fps": health.nominal_fps,
        "measured_fps": round(fps, 2),
        "frames": received,
        "seconds": round(time.monotonic() - t0, 2),
        "open_s": round(first.open_s, 3),
        "reconnects": health.reconnects,
        "stalls": health.stalls,
        "state": health.state,
        "error": health.last_error,
        "cause": None,
        "fix": None,
    }, None


def _failed(name: str, exc: SourceError, seconds: float) -> dict[str, Any]:
    return {
        "source": name,
        "ok": False,
        "frames": 0,
        "seconds": round(seconds, 2),
        "state": "failed",
        "error": str(exc),
        "cause": getattr(exc, "cause", None),
        "fix": getattr(exc, "fix", None),
    }


def grab_frame(source: SourceConfig, timeout_s: float = 10.0, settle_frames: int = 5) -> Any:
    """One BGR frame from ``source`` (a live camera is read a few frames to settle)."""
    from gateway.sources.first_frame import first_frame

    return first_frame(source, timeout_s, settle_frames).image


def _encoder(out: Path) -> Callable[[Any], bytes]:
    """The encoder for OUT's name: JPEG for .jpg/.jpeg, PNG for .png; others refused."""
    suffix = out.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        from gateway.vision.jpeg import encode_jpeg

        return encode_jpeg
    if suffix == ".png":
        import cv2

        def png(image: Any) -> bytes:
            ok, buf = cv2.imencode(".png", image)
            if not ok:
                raise InputError("could not encode the frame as PNG")
            return bytes(buf.tobytes())

        return png
    raise UsageError(f"{out}: the snapshot is written as JPEG (.jpg, .jpeg) or PNG (.png)")


def _camera_from_config(config_path: Path | None, camera_id: str | None) -> CameraConfig | None:
    if camera_id is None:
        return None
    from gateway.config import load_settings

    settings = load_settings(config_path)
    for camera in settings.cameras:
        if camera.id == camera_id:
            return camera
    known = ", ".join(c.id for c in settings.cameras) or "none"
    raise UsageError(f"--camera {camera_id}: no such camera in the config (cameras: {known})")


@click.group("camera")
def camera_group() -> None:
    """Check cameras and take snapshots on site."""


@camera_group.command("check")
@click.argument("source")
@click.option("--seconds", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True)
@json_option
def check_command(source: str, seconds: float, timeout: float, as_json: bool) -> None:
    """Open SOURCE (a file, an rtsp:// or http:// URL, or a USB index) and report what arrives.

    Exit code 1 when no frame arrived.
    """
    from gateway.sources.base import source_from_spec

    report, failure = check_source(source_from_spec(source, realtime=True), seconds, timeout)
    if as_json:
        print_json(report)
    else:
        for key, value in report.items():
            click.echo(f"{key:>12}: {'-' if value is None else value}")
    if failure is not None:
        raise failure  # its cause and fix (and exit 2 for a file that is not a video)
    if not report["ok"]:
        raise SourceError(report["error"] or f"no frames from {report['source']}")


@camera_group.command("snapshot")
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", help="Detect with this model (.onnx file or store name).")
@model_dir_option
@click.option("--draw", is_flag=True, help="Draw detections, and the camera's lines and zones.")
@config_option()
@click.option("--camera", "camera_id", help="Draw this configured camera's lines and zones.")
@conf_option
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True)
@json_option
def snapshot_command(
    *,
    source: str,
    out: Path,
    model: str | None,
    model_dir: Path | None,
    draw: bool,
    config_path: Path | None,
    camera_id: str | None,
    conf: float,
    timeout: float,
    as_json: bool,
) -> None:
    """Grab one frame from SOURCE into OUT (.jpg/.jpeg: JPEG, .png: PNG): see what the unit sees.

    With --draw and --camera, each counting line is an arrow from its point 1 to point 2
    with its left (L) and right (R) sides marked: going from L to R is left_to_right.
    """
    from gateway.config.vision import DetectorConfig, TilingConfig
    from gateway.sources.base import source_from_spec
    from gateway.vision.detections import Detections
    from gateway.vision.overlay import draw_overlay

    if draw and model is None and camera_id is None:
        raise UsageError("--draw needs --model (detections) and/or --camera (lines and zones)")
    encode = _encoder(out)  # before the camera is asked: a wrong name fails at once
    camera = _camera_from_config(config_path, camera_id)
    image = grab_frame(source_from_spec(source), timeout)
    dets = Detections.empty()
    labels: list[str] = []
    if model is not None:
        from gateway.vision.detector import load_detector
        from gateway.vision.tiling import Tiler

        detector = load_detector(DetectorConfig(model=model, conf=conf), model_dir)
        labels = detector.labels
        tiling = camera.tiling if camera is not None else TilingConfig(mode="off")
        dets = Tiler(tiling, detector.input_size, detector.nms_iou).detect(image, detector.detect)
    if draw:
        image = draw_overlay(image, dets if model is not None else None, labels, camera)
    try:
        out.write_bytes(encode(image))
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    report = {
        "path": str(out),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "detections": dets.to_records(labels) if model is not None else None,
    }
    if as_json:
        print_json(report)
    else:
        found = "" if model is None else f", {len(dets)} detection(s)"
        click.echo(f"wrote {out} ({report['width']}x{report['height']}{found})")


def register(app: click.Group) -> None:
    """Add the ``camera`` command group to the root app."""
    app.add_command(camera_group)
