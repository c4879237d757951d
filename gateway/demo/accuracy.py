"""Counting accuracy against the simulator's exact ground truth.

Every frame of a seeded simulated run goes through the same
:class:`~gateway.vision.pipeline.CameraPipeline` the live gateway uses (detector,
tracker, line counter), as fast as the machine allows. After ``seconds`` of traffic
no new objects enter and the run continues until the street is empty, so every
object that crossed the line in the ground truth had its chance to be counted.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from gateway.config.sources import SimulatorSource
from gateway.config.vision import CameraConfig, LineConfig, TilingConfig
from gateway.demo.scenario import (
    CAMERA_ID,
    LINE,
    Condition,
    Counts,
    camera_config,
    detector_config,
)
from gateway.errors import UsageError
from gateway.sources.frame import Frame
from gateway.vision.analytics.score import CrossingRecord
from gateway.vision.analytics.sight import SEEN_WINDOW_S, DetectionFrame
from gateway.vision.analytics.types import LineCrossing
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.vision.protocols import Detector
    from simulators.camera.source import SimulatorReader
    from simulators.camera.world import World

DRAIN_MAX_S = 60.0
# A counted crossing belongs to the simulator object its box overlaps at least this much.
OBJECT_IOU = 0.3
# How far back the object each track was on is remembered (longer than an object may be
# hidden and re-identified while it crosses, plus the confirmation).
OBJECT_LOG_S = 6.0
ScenarioDetector = Literal["truth", "model"]


@dataclass(frozen=True, slots=True)
class AccuracyReport:
    """Counted vs true crossings of one run."""

    seconds: float
    frames: int
    wall_s: float
    counted: Counts
    truth: Counts

    def by_label(self, counts: Counts) -> Counter[str]:
        """Both directions together, per label."""
        out: Counter[str] = Counter()
        for (_line, _direction, label), n in counts.items():
            out[label] += n
        return out

    def rows(self) -> list[tuple[str, int, int, float]]:
        """``(label, true, counted, relative error)`` per label, and ``all`` last."""
        truth, counted = self.by_label(self.truth), self.by_label(self.counted)
        out = []
        for label in sorted(set(truth) | set(counted)):
            t, c = truth[label], counted[label]
            out.append((label, t, c, (c - t) / t if t else float("inf")))
        t_all, c_all = sum(truth.values()), sum(counted.values())
        out.append(("all", t_all, c_all, (c_all - t_all) / t_all if t_all else float("inf")))
        return out

    @property
    def matched_error(self) -> float:
        """Sum of per (direction, label) count differences over the true total."""
        keys = set(self.truth) | set(self.counted)
        diff = sum(abs(self.counted[k] - self.truth[k]) for k in keys)
        total = sum(self.truth.values())
        return diff / total if total else float("inf")

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "seconds": self.seconds,
            "frames": self.frames,
            "wall_s": round(self.wall_s, 1),
            "by_label": {
                label: {"truth": t, "counted": c, "error": round(e, 4)}
                for label, t, c, e in self.rows()
            },
            "matched_error": round(self.matched_error, 4),
        }


def measure(seconds: float, seed: int = 7, condition: Condition = "day") -> AccuracyReport:
    """Run ``seconds`` of simulated traffic offline and compare counts with the truth."""
    return measure_run(seconds, seed, condition).report


@dataclass(frozen=True, slots=True)
class CrossingRun:
    """One offline run: the totals report and both crossing logs."""

    report: AccuracyReport
    counted: list[CrossingRecord]
    truth: list[CrossingRecord]
    # The raw detections (before tracking) of the frames around each true crossing: with
    # the truth's boxes, what tells a crossing the detector never saw from a counting miss.
    detections: dict[int, DetectionFrame] = field(default_factory=dict)


def measure_run(
    seconds: float, seed: int = 7, condition: Condition = "day", fps: float = 10.0
) -> CrossingRun:
    """Like :func:`measure`, with the per-crossing logs (counted and true).

    ``fps``: the simulated camera's rate, i.e. the rate frames are processed at.
    """
    from gateway.vision.detector import load_detector
    from simulators.camera.lines import Line
    from simulators.camera.source import SimulatorReader

    camera: CameraConfig = camera_config(seed, condition, realtime=False, fps=fps)
    assert camera.detector is not None
    (x1, y1), (x2, y2) = LINE.points
    reader = SimulatorReader(camera.source, (Line(LINE.id, (x1, y1), (x2, y2)),))  # type: ignore[arg-type]
    return _play(camera, reader, load_detector(camera.detector), seconds)


@dataclass(frozen=True)
class ScenarioInfo:
    """What ``gateway demo --list-scenarios`` tells of one scripted scene."""

    name: str
    seconds: float
    description: str


def scenario_list() -> list[ScenarioInfo]:
    """Every scripted scene :func:`run_scenario` plays, in registry order."""
    from simulators.camera.scenarios import SCENARIOS

    return [ScenarioInfo(s.name, s.duration_s, s.description) for s in SCENARIOS.values()]


def run_scenario(
    name: str,
    detector: ScenarioDetector = "truth",
    condition: Condition = "day",
    tiling: TilingConfig | None = None,
    fps: float = 10.0,
) -> CrossingRun:
    """Play a scripted scenario (:data:`simulators.camera.scenarios.SCENARIOS`) offline.

    ``detector`` is ``truth`` (the ideal detector: the visible part of every object;
    tiled, each tile sees the parts of objects inside it) or ``model`` (the demo's
    trained detector). ``tiling`` runs detection tiled. ``fps`` is the rate frames are
    processed at (a unit whose detector keeps up with 5 frames a second sees the scene
    at 5 fps).
    """
    from gateway.vision.detector import load_detector
    from gateway.vision.tiling import Tiler
    from simulators.camera.oracle import TruthDetector
    from simulators.camera.scenarios import SCENARIOS
    from simulators.camera.source import SimulatorReader

    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"unknown scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})"
        ) from None
    source = SimulatorSource(seed=1, condition=condition, realtime=False, fps=fps)
    camera = CameraConfig(
        id=CAMERA_ID,
        source=source,
        lines=[LineConfig(id=ln.id, points=[ln.p1, ln.p2]) for ln in scenario.lines],
        detector=detector_config(),
        aggregate_interval_s=10.0,
        tiling=tiling or TilingConfig(),
    )
    reader = SimulatorReader(source, scenario.lines, scenario.spawns)
    chosen: Detector
    if detector == "truth":
        size = (source.width, source.height)
        crops = Tiler(camera.tiling, (source.height, source.width)).tiles(size)
        chosen = TruthDetector.of_reader(reader, crops=crops)
    else:
        assert camera.detector is not None
        chosen = load_detector(camera.detector)
    return _play(camera, reader, chosen, scenario.duration_s, drain_s=0.0)


def _play(
    camera: CameraConfig,
    reader: SimulatorReader,
    detector: Detector,
    seconds: float,
    drain_s: float = DRAIN_MAX_S,
) -> CrossingRun:
    """Every frame of ``reader`` through the camera pipeline; then let the street empty.

    After ``seconds`` no new actor enters and the run goes on until the street is empty,
    for at most ``drain_s``.
    """
    from gateway.vision.pipeline import CameraPipeline

    pipeline = CameraPipeline(camera, detector)
    reader.open()
    world = reader.world
    assert world is not None
    start, epoch = time.monotonic(), time.time()
    frames = 0
    counted_log: list[CrossingRecord] = []
    on_object = _ObjectLog()
    sight = _SightLog(round(SEEN_WINDOW_S * reader.cfg.fps))

    def step() -> bool:
        nonlocal frames
        item = reader.read()
        if item is None:
            return False
        frames += 1
        events = pipeline.process(
            Frame(image=item[0], index=frames, timestamp=epoch + item[1], pts_s=item[1])
        )
        on_object.add(item[1], pipeline.last_tracked, reader)
        sight.add(reader, pipeline.last_detections, pipeline.labels)
        crossings = [e for e in events if isinstance(e, LineCrossing)]
        if crossings:
            counted_log.extend(_records(crossings, on_object, epoch, frames))
        return True

    try:
        while world.t < seconds + drain_s:
            if world.t >= seconds:
                world.spawning = False
                if not world.actors or drain_s <= 0:
                    break
            if not step():
                break
        # A few empty frames so the tracker and counter settle on the last objects.
        for _ in range(5):
            if not step():
                break
        sight.finish(reader)
        truth_log = [
            CrossingRecord(
                line_id=c.line_id,
                direction=c.direction,
                label=c.cls,
                t=round(c.t, 4),
                frame=c.frame,
                object_id=c.object_id,
                boxes=sight.boxes.get(i, ()),
            )
            for i, c in enumerate(world.crossings)
        ]
    finally:
        reader.close()
    engine = pipeline.analytics
    counted: Counts = Counter()
    if engine is not None:
        for line, dirs in engine.counts().items():
            for direction, labels in dirs.items():
                for label, n in labels.items():
                    counted[(line, direction, label)] += n
    truth: Counts = Counter((r.line_id, r.direction, r.label) for r in truth_log)
    report = AccuracyReport(seconds, frames, time.monotonic() - start, counted, truth)
    return CrossingRun(report, counted_log, truth_log, sight.detections)


class _SightLog:
    """Each true crossing's exact boxes around it, and the raw detections of those frames.

    The evidence :func:`gateway.vision.analytics.score.score` tests against to tell a
    crossing the detector never saw from a counting miss: per crossing, the object's
    visible box in every frame within ``SEEN_WINDOW_S`` where any of it shows, and the
    raw detector output (before tracking) of those frames. Only the last
    ``2 * window + 1`` frames are held; what is kept is per crossing.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._recent: deque[tuple[int, dict[int, tuple[float, ...]], DetectionFrame]] = deque(
            maxlen=2 * window + 1
        )
        self._pending: list[int] = []  # indexes into world.crossings, waiting for frames after
        self._known = 0
        self.boxes: dict[int, tuple[tuple[int, float, float, float, float], ...]] = {}
        self.detections: dict[int, DetectionFrame] = {}

    def add(self, reader: SimulatorReader, raw: Detections, labels: Sequence[str]) -> None:
        """Record the reader's latest frame and the raw detections made on it."""
        truth, world = reader.truth, reader.world
        assert world is not None
        objects: dict[int, tuple[float, ...]] = {}
        if truth is not None:
            for k in np.flatnonzero(truth.visible > 0):
                objects[int(truth.ids[k])] = tuple(
                    round(float(v), 1) for v in truth.visible_xyxy[k]
                )
        self._recent.append(
            (world.frame, objects, DetectionFrame.of(world.frame, world.t, raw, labels))
        )
        self._pending += range(self._known, len(world.crossings))
        self._known = len(world.crossings)
        due = [i for i in self._pending if world.crossings[i].frame + self.window <= world.frame]
        self._settle(world, due)

    def finish(self, reader: SimulatorReader) -> None:
        """Settle the crossings still waiting for frames (the run ended)."""
        assert reader.world is not None
        self._settle(reader.world, list(self._pending))

    def _settle(self, world: World, due: list[int]) -> None:
        for i in due:
            crossing = world.crossings[i]
            near = [r for r in self._recent if abs(r[0] - crossing.frame) <= self.window]
            boxes = []
            for frame, objects, dets in near:
                box = objects.get(crossing.object_id)
                if box is not None:
                    boxes.append((frame, box[0], box[1], box[2], box[3]))
                    self.detections[frame] = dets
            self.boxes[i] = tuple(boxes)
        self._pending = [i for i in self._pending if i not in set(due)]


class _ObjectLog:
    """Which simulator object each track's box was on, over the last ``OBJECT_LOG_S``.

    A crossing is reported a frame or more after the object passed the line (once a
    sighting past it confirms it), seconds later for one hidden while it crossed; by
    then the track's box may be on someone else (two people passing). The crossing
    belongs to the object the track was on when it crossed.
    """

    def __init__(self) -> None:
        self._frames: deque[tuple[float, dict[int, int]]] = deque()

    def add(self, t: float, tracked: Detections, reader: SimulatorReader) -> None:
        """Record the frame at media time ``t``."""
        truth = reader.truth
        on: dict[int, int] = {}
        if truth is not None and len(truth) and len(tracked):
            iou = box_iou(tracked.xyxy, truth.visible_xyxy)
            for row, best in enumerate(np.argmax(iou, axis=1)):
                if iou[row, best] >= OBJECT_IOU and tracked.tracker_id[row] >= 0:
                    on[int(tracked.tracker_id[row])] = int(truth.ids[best])
        self._frames.append((t, on))
        while self._frames and self._frames[0][0] < t - OBJECT_LOG_S:
            self._frames.popleft()

    def at(self, track_id: int, t: float) -> int | None:
        """The object ``track_id`` was on nearest to media time ``t`` (None: on none)."""
        seen = [(abs(ft - t), on[track_id]) for ft, on in self._frames if track_id in on]
        return min(seen)[1] if seen else None


def _records(
    crossings: list[LineCrossing], on_object: _ObjectLog, epoch: float, frame: int
) -> list[CrossingRecord]:
    """Crossing records, each with the simulator object its track was on when it crossed."""
    out = []
    for c in crossings:
        t = (c.timestamp if c.crossed_at is None else c.crossed_at) - epoch
        out.append(
            CrossingRecord(
                line_id=c.line_id,
                direction=c.direction,
                label=c.label,
                t=round(t, 4),
                frame=frame,
                track_id=c.track_id,
                object_id=on_object.at(c.track_id, t),
            )
        )
    return out
