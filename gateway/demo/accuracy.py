"""Counting accuracy against the simulator's exact ground truth.

Every frame of a seeded simulated run goes through the same
:class:`~gateway.vision.pipeline.CameraPipeline` the live gateway uses (detector,
tracker, line counter), as fast as the machine allows. After ``seconds`` of traffic
no new objects enter and the run continues until the street is empty, so every
object that crossed the line in the ground truth had its chance to be counted.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from gateway.config.vision import CameraConfig
from gateway.demo.scenario import LINE, Condition, Counts, camera_config
from gateway.sources.frame import Frame

DRAIN_MAX_S = 60.0


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
    from gateway.vision.detector import load_detector
    from gateway.vision.pipeline import CameraPipeline
    from simulators.camera.lines import Line
    from simulators.camera.source import SimulatorReader

    camera: CameraConfig = camera_config(seed, condition, realtime=False)
    assert camera.detector is not None
    pipeline = CameraPipeline(camera, load_detector(camera.detector))
    (x1, y1), (x2, y2) = LINE.points
    reader = SimulatorReader(camera.source, (Line(LINE.id, (x1, y1), (x2, y2)),))  # type: ignore[arg-type]
    reader.open()
    world = reader.world
    assert world is not None
    start, epoch = time.monotonic(), time.time()
    frames = 0
    try:
        while world.t < seconds + DRAIN_MAX_S:
            if world.t >= seconds:
                world.spawning = False
                if not world.actors:
                    break
            item = reader.read()
            if item is None:
                break
            image, pts = item
            frames += 1
            pipeline.process(Frame(image=image, index=frames, timestamp=epoch + pts, pts_s=pts))
        # A few empty frames so the tracker and counter settle on the last objects.
        for _ in range(5):
            item = reader.read()
            if item is None:
                break
            frames += 1
            pipeline.process(
                Frame(image=item[0], index=frames, timestamp=epoch + item[1], pts_s=item[1])
            )
        truth: Counts = Counter((c.line_id, c.direction, c.cls) for c in world.crossings)
    finally:
        reader.close()
    engine = pipeline.analytics
    counted: Counts = Counter()
    if engine is not None:
        for line, dirs in engine.counts().items():
            for direction, labels in dirs.items():
                for label, n in labels.items():
                    counted[(line, direction, label)] += n
    return AccuracyReport(seconds, frames, time.monotonic() - start, counted, truth)
