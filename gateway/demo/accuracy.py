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
from gateway.vision.analytics.types import LineCrossing
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.vision.protocols import Detector
    from simulators.camera.source import SimulatorReader

DRAIN_MAX_S = 60.0
# A counted crossing belongs to the simulator object its box overlaps at least this much.
OBJECT_IOU = 0.3
# How far back the object each track was on is remembered (longer than an object may be
# hidden and re-identified while it crosses, plus the confirmation).
OBJECT_LOG_S = 6.0
# An object at least this visible in a frame is "in sight" there (for telling which true
# crossings the camera could not see on one side of the line); objects remembered at most.
IN_SIGHT = 0.5
SIGHTINGS_MAX = 100_000
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
    # True crossings whose object was never in sight on one of the two sides of the line
    # (a car that entered behind a bus and came out past the line): no camera sees them.
    unseen: list[CrossingRecord] = field(default_factory=list)


def measure_run(seconds: float, seed: int = 7, condition: Condition = "day") -> CrossingRun:
    """Like :func:`measure`, with the per-crossing logs (counted and true)."""
    from gateway.vision.detector import load_detector
    from simulators.camera.lines import Line
    from simulators.camera.source import SimulatorReader

    camera: CameraConfig = camera_config(seed, condition, realtime=False)
    assert camera.detector is not None
    (x1, y1), (x2, y2) = LINE.points
    reader = SimulatorReader(camera.source, (Line(LINE.id, (x1, y1), (x2, y2)),))  # type: ignore[arg-type]
    return _play(camera, reader, load_detector(camera.detector), seconds)


def run_scenario(
    name: str,
    detector: ScenarioDetector = "truth",
    condition: Condition = "day",
    tiling: TilingConfig | None = None,
) -> CrossingRun:
    """Play a scripted scenario (:data:`simulators.camera.scenarios.SCENARIOS`) offline.

    ``detector`` is ``truth`` (the ideal detector: the visible part of every object;
    tiled, each tile sees the parts of objects inside it) or ``model`` (the demo's
    trained detector). ``tiling`` runs detection tiled.
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
    source = SimulatorSource(seed=1, condition=condition, realtime=False)
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
    sightings = _Sightings()

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
        sightings.add(reader)
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
        truth_log = [
            CrossingRecord(
                line_id=c.line_id,
                direction=c.direction,
                label=c.cls,
                t=round(c.t, 4),
                frame=c.frame,
                object_id=c.object_id,
            )
            for c in world.crossings
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
    unseen = [r for r in truth_log if not sightings.both_sides(r)]
    return CrossingRun(report, counted_log, truth_log, unseen)


@dataclass(frozen=True, slots=True)
class SightRecall:
    """Recall of one line and direction over the true crossings the camera could see."""

    line: str
    direction: str
    truth: int  # true crossings in sight on both sides of the line
    counted: int  # of those, matched by a counted crossing
    out_of_sight: int  # true crossings left out (never in sight on one side)
    out_of_sight_counted: int  # of those, matched all the same (entered at a frame edge)

    @property
    def recall(self) -> float:
        """Share of the crossings in sight that were counted (1.0 when there were none)."""
        return self.counted / self.truth if self.truth else 1.0


def recall_in_sight(run: CrossingRun, misses: Sequence[CrossingRecord]) -> list[SightRecall]:
    """Per line and direction, recall over ``run``'s true crossings in sight on both sides.

    ``misses`` are the scorer's unmatched true crossings (records of ``run.truth``).
    """
    unseen = {id(r) for r in run.unseen}
    missed = {id(r) for r in misses}
    out = []
    for line, direction in sorted({(r.line_id, r.direction) for r in run.truth}):
        mine = [r for r in run.truth if (r.line_id, r.direction) == (line, direction)]
        seen = [r for r in mine if id(r) not in unseen]
        counted = sum(1 for r in seen if id(r) not in missed)
        hidden = [r for r in mine if id(r) in unseen]
        hidden_counted = sum(1 for r in hidden if id(r) not in missed)
        out.append(SightRecall(line, direction, len(seen), counted, len(hidden), hidden_counted))
    return out


class _Sightings:
    """On which sides of each line each simulator object was ever in sight.

    In sight: at least ``IN_SIGHT`` of it visible; its side is that of the bottom-centre
    of its box (its ground point, as the world's crossings use). At most
    ``SIGHTINGS_MAX`` objects (the oldest first out): an offline run's own bound.
    """

    def __init__(self) -> None:
        self._sides: dict[int, set[tuple[str, bool]]] = {}

    def add(self, reader: SimulatorReader) -> None:
        """Record the objects in sight in the reader's latest frame."""
        from simulators.camera.lines import side

        truth, world = reader.truth, reader.world
        if truth is None or world is None or not len(truth):
            return
        h, w = (reader.cfg.height, reader.cfg.width)
        for k in np.flatnonzero(truth.visible >= IN_SIGHT):
            x1, _, x2, y2 = (float(v) for v in truth.xyxy[k])
            q = ((x1 + x2) / 2 / w, y2 / h)
            seen = self._sides.setdefault(int(truth.ids[k]), set())
            seen.update((ln.id, side(ln, q) > 0) for ln in world.config.lines)
        while len(self._sides) > SIGHTINGS_MAX:
            del self._sides[next(iter(self._sides))]

    def both_sides(self, crossing: CrossingRecord) -> bool:
        """Whether the crossing's object was in sight on both sides of its line."""
        seen = self._sides.get(crossing.object_id if crossing.object_id is not None else -1, set())
        return (crossing.line_id, True) in seen and (crossing.line_id, False) in seen


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
