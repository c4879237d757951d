"""Running stills and videos through the pipeline offline (``gateway count``, benches, demo).

:func:`count_video` runs the same :class:`~gateway.vision.pipeline.CameraPipeline` as a
live camera; only the frame delivery differs (every frame in order, as fast as
possible, stamped with the video's own clock).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gateway.errors import InputError, SourceError, UsageError
from gateway.interrupt import stop_on_interrupt

if TYPE_CHECKING:  # the detector pulls in onnxruntime: only when a video runs
    from gateway.config.vision import CameraConfig
    from gateway.sources.frame import Frame
    from gateway.vision.analytics.score import CrossingRecord
    from gateway.vision.analytics.sight import DetectionFrame
    from gateway.vision.analytics.types import LineCrossing
    from gateway.vision.detections import Detections
    from gateway.vision.pipeline import CameraPipeline
    from gateway.vision.protocols import Detector

DIRECTIONS = ("left_to_right", "right_to_left")
PROGRESS_EVERY_S = 0.25


def _delay(crossing: LineCrossing) -> float:
    """How long before its event a crossing happened (0 when not estimated)."""
    return 0.0 if crossing.crossed_at is None else crossing.timestamp - crossing.crossed_at


def read_image(path: Path) -> NDArray[np.uint8]:
    """Read an image file as BGR; a missing or undecodable file is an :class:`InputError`."""
    import cv2

    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image {path} (not an image file, or corrupt)")
    return np.asarray(image, dtype=np.uint8)


def read_frames(video: Path, limit: int = 10_000) -> list[NDArray[np.uint8]]:
    """The first ``limit`` frames of a video file, decoded in memory (benchmarks, tests).

    Raises:
        SourceError: not one frame could be read.
    """
    import cv2

    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    frames: list[NDArray[np.uint8]] = []
    try:
        while len(frames) < limit:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(np.asarray(image, dtype=np.uint8))
    finally:
        cap.release()
    if not frames:
        raise SourceError(f"cannot read frames from {video}")
    return frames


def parse_tiles(text: str) -> dict[str, Any]:
    """Parse ``--tiles``: ``off``, ``auto`` or ``RxC`` (rows x columns) into a tiling config."""
    value = text.strip().lower()
    if value in ("off", "auto"):
        return {"mode": value}
    rows, sep, cols = value.partition("x")
    if sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 8 and 1 <= int(cols) <= 8:
        return {"mode": "grid", "rows": int(rows), "cols": int(cols)}
    raise UsageError(f"--tiles {text!r}: expected off, auto or RxC with 1..8 each (e.g. 2x3)")


def count_video(
    camera: CameraConfig,
    detector: Detector,
    crossings: list[CrossingRecord] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    stop: threading.Event | None = None,
    *,
    detections: list[DetectionFrame] | None = None,
) -> dict[str, Any]:
    """Run ``camera`` (a file source) to its end through the camera pipeline; the result dict.

    With ``crossings``, every counted crossing is appended to it (media time, frame index);
    with ``detections``, every frame's raw detections (before tracking).
    ``on_progress(frames done, frames in the file or None)`` is called a few times a second.
    When ``stop`` is set (Ctrl-C through :func:`gateway.interrupt.stop_on_interrupt`), the
    pipeline's threads are stopped and joined and what was counted so far is returned,
    with ``"interrupted": True``.
    """
    from gateway.sources.base import make_reader
    from gateway.vision.analytics.sight import DetectionFrame
    from gateway.vision.runner import CameraRunner

    probe = make_reader(camera.source)
    probe.open()  # a missing or corrupt file fails here with a clear SourceError
    total = getattr(probe, "frame_count", None)
    probe.close()

    def sink(events: list[Any]) -> None:
        frame = runner.latest_frame()  # the frame these events came from (same thread)
        if crossings is None or frame is None:
            return
        crossings.extend(_crossing_records(events, frame.index, frame.pts_s))

    def record(frame: Frame, dets: Detections) -> None:
        if detections is not None:
            detections.append(DetectionFrame.of(frame.index, frame.pts_s, dets, labels))

    labels = list(detector.labels)
    runner = CameraRunner(
        camera, detector, sink, every_frame=True, media_clock=True, on_frame=record
    )
    t0 = time.perf_counter()
    interrupted = False
    # Without a caller's stop event, Ctrl-C still never lands inside a thread join: it is
    # taken as a stop request here and raised again once the threads are joined.
    own = stop is None
    with stop_on_interrupt() if own else contextlib.nullcontext(stop) as requested:
        runner.start()
        try:
            while not runner.wait(PROGRESS_EVERY_S):
                if on_progress is not None:
                    on_progress(runner.pipeline.stats.frames, total)
                if requested is not None and requested.is_set():
                    interrupted = True
                    break
        finally:
            # Stop and join the capture and pipeline threads before the interpreter exits:
            # one left inside OpenCV or ONNX Runtime aborts the process (exit 134).
            runner.stop()
    if interrupted and own:
        raise KeyboardInterrupt
    seconds = time.perf_counter() - t0
    health = runner.health()
    stats = runner.pipeline.stats
    if on_progress is not None:
        on_progress(stats.frames, total)
    if stats.frames == 0 and not interrupted:
        raise SourceError(f"no frame could be processed: {health.last_error}")
    if health.errors:
        raise SourceError(f"{health.errors} frame(s) failed: {health.pipeline_error}")
    return _result(camera, runner.pipeline, seconds, total, interrupted=interrupted)


def _crossing_records(events: list[Any], frame: int, pts_s: float) -> list[CrossingRecord]:
    """The crossing log's records of one frame's events (media time of the crossing)."""
    from gateway.vision.analytics.score import CrossingRecord
    from gateway.vision.analytics.types import LineCrossing

    return [
        CrossingRecord(
            line_id=e.line_id,
            direction=e.direction,
            label=e.label,
            t=round(pts_s - _delay(e), 4),
            frame=frame,
            track_id=e.track_id,
        )
        for e in events
        if isinstance(e, LineCrossing)
    ]


def _result(
    camera: CameraConfig,
    pipeline: CameraPipeline,
    seconds: float,
    total: int | None,
    *,
    interrupted: bool,
) -> dict[str, Any]:
    """What ``gateway count`` prints: frames, rate, each line's counts, pipeline stats."""
    stats = pipeline.stats
    return {
        "frames": stats.frames,
        "frames_total": total,
        "interrupted": interrupted,
        "seconds": round(seconds, 3),
        "fps": round(stats.frames / seconds, 2) if seconds > 0 else 0.0,
        "lines": _line_counts(camera, pipeline),
        "pipeline": stats.snapshot().as_dict(),
    }


def _line_counts(camera: CameraConfig, pipeline: CameraPipeline) -> list[dict[str, Any]]:
    """Each line's counts per direction and label, and its total."""
    engine = pipeline.analytics
    counts = engine.counts() if engine is not None else {}
    lines = []
    for line in camera.lines:
        per_dir = counts.get(line.id, {})
        by_dir = {d: dict(sorted(per_dir.get(d, {}).items())) for d in DIRECTIONS}
        lines.append(
            {
                "id": line.id,
                "points": [v for point in line.points for v in point],
                "counts": by_dir,
                "total": sum(n for labels in by_dir.values() for n in labels.values()),
            }
        )
    return lines


class _Recorded:
    """A detector that gives back the recorded raw detections of the frame in hand."""

    input_size = (416, 416)  # unused: recorded detections are never tiled again
    last_inference_ms = 0.0

    def __init__(self, labels: list[str]) -> None:
        from gateway.vision.detections import Detections

        self.labels = labels
        self.next = Detections.empty()

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        """The detections set for this frame (the image is not looked at)."""
        return self.next


def recount(
    camera: CameraConfig,
    frames: dict[int, DetectionFrame],
    frame_size: tuple[int, int],
    crossings: list[CrossingRecord] | None = None,
) -> dict[str, Any]:
    """Count recorded raw detections (``gateway count --detections``) again, no model run.

    Each recorded frame goes through the tracker and the camera's lines in order, as
    :func:`count_video` would have after detection (tiling and motion gating happened
    when the detections were recorded); ``camera.fps_limit`` keeps frames by media time
    as there. Lines, classes and tracker settings may differ from the recording's: that
    is what it is for (placing a line, tuning the counter, at the rate a unit will reach,
    in seconds). The result has :func:`count_video`'s shape.
    """
    from gateway.sources.frame import Frame
    from gateway.vision.detections import Detections
    from gateway.vision.pipeline import CameraPipeline
    from gateway.vision.runner import MediaPace

    classes = {c for line in camera.lines for c in line.classes}
    labels = sorted({name for f in frames.values() for name in f.labels} | classes)
    index = {name: i for i, name in enumerate(labels)}
    detector = _Recorded(labels)
    pipeline = CameraPipeline(camera, detector)
    image = np.zeros((frame_size[1], frame_size[0], 3), np.uint8)
    pace = MediaPace(camera.fps_limit)
    t0 = time.perf_counter()
    for k in sorted(frames):
        f = frames[k]
        if not pace.keep(f.t):
            continue
        detector.next = Detections.from_arrays(
            f.xyxy, f.scores or (1.0,) * len(f.labels), [index[name] for name in f.labels]
        )
        events = pipeline.process(Frame(image=image, index=f.frame, timestamp=f.t, pts_s=f.t))
        if crossings is not None:
            crossings.extend(_crossing_records(events, f.frame, f.t))
    seconds = time.perf_counter() - t0
    return _result(camera, pipeline, seconds, len(frames), interrupted=False)
