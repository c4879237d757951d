"""Flow scenarios with exact truth: a signalised intersection, and a lane that queues.

:func:`camera_config` writes the gateway camera config a site engineer would draw for
the simulated junction (lines, presence zones, queue areas, gates, the speed
calibration), from the geometry in metres and the renderer's homography at set-up
(before any :class:`~simulators.camera.mount.Mount` move). :func:`run` renders the
scenario, feeds the frames through the gateway's real :class:`CameraPipeline`
(tracker, lines, zones, flow measures) with :meth:`TruthDetector.noisy`, and returns
the flow reports next to the world; :func:`compare` pairs every measure with the truth
(:mod:`simulators.camera.flow_truth`) of the same interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.config.flow import CongestionConfig
from gateway.config.vision import CameraConfig
from gateway.sources.frame import Frame
from gateway.vision.analytics.lanes import congestion_level
from gateway.vision.analytics.types import AnalyticsEvent, FlowReport
from gateway.vision.detections import Detections
from gateway.vision.pipeline import CameraPipeline
from simulators.camera.flow_truth import IntervalTruth, LaneTruth, truth
from simulators.camera.intersection import (
    ARMS,
    BOX,
    COUNT_OUT,
    GATE,
    LANE_W,
    OUT,
    PRESENCE_M,
    QUEUE_REACH,
    Intersection,
    IntersectionConfig,
    SignalPlan,
    across,
    inbound_point,
)
from simulators.camera.mount import FIXED, Mount
from simulators.camera.oracle import TruthDetector
from simulators.camera.render import GroundTruth
from simulators.camera.topdown import TopDownRenderer, project
from simulators.camera.world import CLASSES

T0 = 1_800_000_000.0  # epoch of simulated time 0
CHAIN, CHAIN_M = 4, 7.5  # queue detector zones from the stop line back


@dataclass(frozen=True, slots=True)
class Scenario:
    """A junction, how it is seen and for how long."""

    name: str
    world: IntersectionConfig
    interval_s: float = 60.0
    condition: str = "day"
    mount: Mount = FIXED
    size: tuple[int, int] = (640, 640)
    # (level at 0 s, level at ``fade_s``): a day fading into dusk, say (1.0, 0.45)
    fade: tuple[float, float] | None = None
    fade_s: float = 60.0
    drift: dict[str, Any] = field(default_factory=dict)  # [cameras.drift] overrides

    def light(self, t: float) -> float:
        """The brightness at simulated time ``t`` along ``fade`` (1.0 without one)."""
        a, b = self.fade or (1.0, 1.0)
        return a + (b - a) * min(1.0, max(0.0, t / self.fade_s))


def intersection(seed: int = 5, rate_vph: float = 180.0) -> Scenario:
    """Four arms, split phasing, a quarter of the traffic turning left, a quarter right."""
    cfg = IntersectionConfig(seed=seed, rate_vph=dict.fromkeys(ARMS, rate_vph), warmup_s=30.0)
    return Scenario("intersection", cfg)


def queueing_lane(seed: int = 3, rate_vph: float = 270.0) -> Scenario:
    """One busy approach (south) held at red for 48 s of every 68 s: it queues and clears."""
    plan = SignalPlan(green_s={"N": 8.0, "E": 8.0, "S": 20.0, "W": 8.0})
    rates = {"N": 0.0, "E": 0.0, "S": rate_vph, "W": 0.0}
    cfg = IntersectionConfig(seed=seed, rate_vph=rates, signal=plan, warmup_s=20.0)
    return Scenario("queueing-lane", cfg)


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "intersection": intersection,
    "queueing-lane": queueing_lane,
}


def _norm(matrix: np.ndarray, points: Any, size: tuple[int, int]) -> list[list[float]]:
    px = project(matrix, np.asarray(points, dtype=np.float64))
    norm = np.clip(px / np.array(size, dtype=np.float64), 0.0, 1.0)
    return [[round(float(x), 5), round(float(y), 5)] for x, y in norm]


def _direction(line: list[list[float]], before: list[float], after: list[float]) -> str:
    """The analytics' name for moving from ``before`` to ``after`` across ``line``."""
    (x1, y1), (x2, y2) = line
    side = (x2 - x1) * (before[1] - y1) - (y2 - y1) * (before[0] - x1)
    return "left_to_right" if side < 0 else "right_to_left"


def _lane_box(arm: str, s0: float, s1: float) -> list[tuple[float, float]]:
    """The inbound lane of ``arm`` between ``s0`` and ``s1`` metres from the centre."""
    d = OUT[arm]
    r = (-d[1], d[0])  # the right-hand side of inbound travel
    return [
        (d[0] * s + r[0] * o, d[1] * s + r[1] * o)
        for s, o in ((s0, 0.0), (s1, 0.0), (s1, LANE_W), (s0, LANE_W))
    ]


def camera_config(scenario: Scenario, renderer: TopDownRenderer) -> CameraConfig:
    """The gateway config for the scenario's camera, drawn on the set-up view."""
    size = scenario.size
    m = renderer.matrix(0.0) if scenario.mount.at_s > 0 else renderer.camera
    lines: list[dict[str, Any]] = []
    lanes: list[dict[str, Any]] = []
    gates: list[dict[str, Any]] = []
    for arm in ARMS:
        d = OUT[arm]
        outside = [float(v) for v in _norm(m, [inbound_point(arm, GATE + 3)], size)[0]]
        inside = [float(v) for v in _norm(m, [inbound_point(arm, BOX - 3)], size)[0]]
        stop = _norm(m, across(arm, BOX, "inbound"), size)
        gate = _norm(m, across(arm, GATE), size)
        out = _norm(m, across(arm, COUNT_OUT, "outbound"), size)
        far = [
            float(v) for v in _norm(m, [(d[0] * (COUNT_OUT + 3), d[1] * (COUNT_OUT + 3))], size)[0]
        ]
        near = [
            float(v) for v in _norm(m, [(d[0] * (COUNT_OUT - 3), d[1] * (COUNT_OUT - 3))], size)[0]
        ]
        lines += [
            {"id": f"stop-{arm}", "points": stop},
            {"id": f"gate-{arm}", "points": gate},
            {"id": f"out-{arm}", "points": out},
        ]
        inbound = _direction(gate, outside, inside)
        lanes.append(
            {
                "id": f"in-{arm}",
                "line": f"stop-{arm}",
                "direction": _direction(stop, outside, inside),
                "presence": _norm(m, _lane_box(arm, BOX, BOX + PRESENCE_M), size),
                "presence_extent": "box",
                "queue": {
                    "area": _norm(m, _lane_box(arm, BOX, QUEUE_REACH), size),
                    "extent": "box",
                },
            }
        )
        chain = [_lane_box(arm, BOX + CHAIN_M * i, BOX + CHAIN_M * (i + 1)) for i in range(CHAIN)]
        lanes.append(
            {
                "id": f"chain-{arm}",  # the same lane, its queue from a chain of zones
                "line": f"stop-{arm}",
                "direction": _direction(stop, outside, inside),
                "queue": {
                    "zones": [_norm(m, zone, size) for zone in chain],
                    "zone_lengths_m": [CHAIN_M] * CHAIN,
                    "extent": "box",
                },
            }
        )
        lanes.append(
            {
                "id": f"out-{arm}",
                "line": f"out-{arm}",
                "direction": _direction(out, near, far),
                "free_flow_kmh": 45.0,
            }
        )
        gates.append({"id": arm, "line": f"gate-{arm}", "entry": inbound})
    ground = [(-30.0, 30.0), (30.0, 30.0), (30.0, -30.0), (-30.0, -30.0)]
    return CameraConfig.model_validate(
        {
            "id": "junction",
            "source": {"type": "simulator"},
            "lines": lines,
            "speed": {"image_points": _norm(m, ground, size), "world_points": ground},
            "aggregate_interval_s": scenario.interval_s,
            "drift": scenario.drift,
            "flow": {"interval_s": scenario.interval_s, "lanes": lanes, "gates": gates},
        }
    )


@dataclass(slots=True)
class Run:
    """What one run produced: the gateway's flow reports and the world that was seen."""

    scenario: Scenario
    world: Intersection
    reports: list[FlowReport] = field(default_factory=list)
    events: list[AnalyticsEvent] = field(default_factory=list)
    frames: int = 0
    camera: CameraConfig | None = None
    # With ``record``: every frame's tracked detections and time, and every 20th image.
    tracks: list[tuple[Detections, float]] = field(default_factory=list)
    images: list[NDArray[np.uint8]] = field(default_factory=list)


@dataclass(slots=True)
class _Latest:
    truth: GroundTruth | None = None


def run(
    scenario: Scenario,
    seconds: float,
    *,
    detector: Callable[[Callable[[], GroundTruth | None]], Any] | None = None,
    on_frame: Callable[[Frame, list[AnalyticsEvent]], None] | None = None,
    reference_dir: Path | None = None,
    record: bool = False,
) -> Run:
    """Render ``seconds`` of the scenario through the gateway pipeline.

    With ``reference_dir`` the pipeline also checks the view for camera shifts.
    """
    world = Intersection(scenario.world)
    w, h = scenario.size
    light = scenario.light if scenario.fade is not None else None
    renderer = TopDownRenderer(
        w, h, scenario.condition, scenario.world.seed, mount=scenario.mount, light=light
    )
    camera = camera_config(scenario, renderer)
    latest = _Latest()
    make = detector or (
        lambda source: TruthDetector.noisy(source, size=(h, w), seed=scenario.world.seed)
    )
    pipeline = CameraPipeline(
        camera, make(lambda: latest.truth), labels=list(CLASSES), reference_dir=reference_dir
    )
    result = Run(scenario, world, camera=camera)
    for k in range(round(seconds * scenario.world.fps)):
        world.step()
        image, latest.truth = renderer.render(world)
        frame = Frame(image=image, index=k, timestamp=T0 + world.t, pts_s=world.t)
        events = pipeline.process(frame)
        result.reports += [e for e in events if isinstance(e, FlowReport)]
        result.events += [e for e in events if not isinstance(e, FlowReport)]
        if on_frame is not None:
            on_frame(frame, events)
        if record:
            result.tracks.append((pipeline.last_tracked, frame.timestamp))
            if k % 20 == 0:
                result.images.append(image)
        result.frames += 1
    return result


@dataclass(frozen=True, slots=True)
class Pair:
    """One measure of one lane (or movement cell) and interval: gateway vs truth."""

    measure: str
    lane: str
    interval: int
    measured: float | None
    true: float | None

    @property
    def error(self) -> float | None:
        """``measured - true`` when both are known."""
        if self.measured is None or self.true is None:
            return None
        return self.measured - self.true


def compare(result: Run) -> list[Pair]:
    """Pair every measure of every report with the truth of the same interval."""
    pairs: list[Pair] = []
    for k, report in enumerate(result.reports):
        t = truth(result.world, report.start - T0, report.end - T0)
        pairs += _lane_pairs(k, report, t)
        cells = {
            (o, d, c)
            for src in (report.movements, t.movements)
            for o, dests in src.items()
            for d, by in dests.items()
            for c in by
        }
        for o, d, c in sorted(cells):
            got = report.movements.get(o, {}).get(d, {}).get(c, 0)
            want = t.movements.get(o, {}).get(d, {}).get(c, 0)
            pairs.append(Pair("movement", f"{o}->{d}:{c}", k, float(got), float(want)))
    return pairs


LEVEL = {"free": 0.0, "heavy": 1.0, "congested": 2.0}
# Truth this close to a congestion threshold is not a fair test of the level.
OCCUPANCY_MARGIN, SPEED_MARGIN = 0.02, 0.05


def _true_level(lane: str, want: LaneTruth, cfg: CongestionConfig) -> float | None:
    free_flow = 45.0 if lane.startswith("out-") else None
    occ = want.occupancy
    speed = want.speed_mean_kmh
    if occ is not None and min(abs(occ - x) for x in cfg.occupancy) < OCCUPANCY_MARGIN:
        return None
    ratio = None if speed is None or free_flow is None else speed / free_flow
    if ratio is not None and min(abs(ratio - x) for x in cfg.speed_ratio) < SPEED_MARGIN:
        return None
    level = congestion_level(occ, speed, free_flow, cfg)
    return None if level is None else LEVEL[level]


def _lane_pairs(k: int, report: FlowReport, t: IntervalTruth) -> list[Pair]:
    pairs: list[Pair] = []
    cfg = CongestionConfig()
    for lane_id, lane in report.lanes.items():
        if lane_id.startswith("chain-"):
            want = t.lanes[lane_id.replace("chain-", "in-")]
            true_max = None if want.queue_max_m is None else min(want.queue_max_m, CHAIN * CHAIN_M)
            pairs.append(Pair("queue_chain_max_m", lane_id, k, lane.queue_max_m, true_max))
            continue
        want = t.lanes[lane_id]
        got = None if lane.congestion is None else LEVEL[lane.congestion]
        true_level = _true_level(lane_id, want, cfg)
        pairs.append(
            Pair(
                "congestion_level", lane_id, k, got if true_level is not None else None, true_level
            )
        )
        vol = float(sum(lane.volume.values()))
        pairs.append(Pair("volume", lane_id, k, vol, float(sum(want.volume.values()))))
        pairs.append(Pair("speed_mean_kmh", lane_id, k, lane.speed_mean_kmh, want.speed_mean_kmh))
        pairs.append(Pair("speed_p85_kmh", lane_id, k, lane.speed_p85_kmh, want.speed_p85_kmh))
        pairs.append(Pair("headway_mean_s", lane_id, k, lane.headway_mean_s, want.headway_mean_s))
        if lane_id.startswith("in-"):
            pairs.append(Pair("occupancy", lane_id, k, lane.occupancy, want.occupancy))
            pairs.append(Pair("queue_max_m", lane_id, k, lane.queue_max_m, want.queue_max_m))
            pairs.append(Pair("queue_mean_m", lane_id, k, lane.queue_mean_m, want.queue_mean_m))
            pairs.append(
                Pair(
                    "queue_max_vehicles",
                    lane_id,
                    k,
                    None if lane.queue_max_vehicles is None else float(lane.queue_max_vehicles),
                    None if want.queue_max_vehicles is None else float(want.queue_max_vehicles),
                )
            )
    return pairs
