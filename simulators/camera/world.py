"""The simulated street: lanes, actors, their motion and the line-crossing log.

Coordinates are normalised to the frame (x right, y down, both 0..1) so the
same world renders at any resolution. An actor's position is the bottom-centre
of its box (where it touches the ground); its size shrinks with distance
through :func:`perspective_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.camera.lines import Line, crossing_direction

# Class names in model index order (COCO names, so the default class filter keeps them).
CLASSES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "bus", "truck")

# Ground-contact y of the scene's bands (normalised).
FAR_WALK = (0.405, 0.455)
ROAD = (0.46, 0.86)
NEAR_WALK = (0.875, 0.965)
HORIZON_Y, NEAR_Y = 0.40, 0.97


def perspective_scale(y: float) -> float:
    """Apparent size factor of an object standing at ground height ``y`` (0.5 far .. 1 near)."""
    return 0.5 + 0.5 * (y - HORIZON_Y) / (NEAR_Y - HORIZON_Y)


@dataclass(frozen=True, slots=True)
class Kind:
    """Size (fraction of frame height, at scale 1) and speed range of one actor class."""

    length: tuple[float, float]
    height: tuple[float, float]
    speed: tuple[float, float]  # frame widths per second at scale 1


KINDS: dict[str, Kind] = {
    "car": Kind((0.27, 0.33), (0.10, 0.13), (0.14, 0.24)),
    "bus": Kind((0.58, 0.66), (0.22, 0.25), (0.10, 0.16)),
    "truck": Kind((0.45, 0.55), (0.19, 0.23), (0.10, 0.17)),
    "motorcycle": Kind((0.12, 0.14), (0.12, 0.14), (0.15, 0.25)),
    "bicycle": Kind((0.11, 0.13), (0.13, 0.15), (0.06, 0.09)),
    "person": Kind((0.045, 0.06), (0.15, 0.18), (0.025, 0.045)),
}


@dataclass(frozen=True, slots=True)
class Lane:
    """A path actors follow: ground y, direction (+1 right, -1 left), who uses it, spawn rate."""

    y: float
    direction: int
    mix: dict[str, float]
    rate: float  # spawns per second at density 1
    jitter: float = 0.0  # random ground-y offset per actor


VEHICLE_MIX = {"car": 0.62, "truck": 0.12, "bus": 0.09, "motorcycle": 0.17}
LANES: tuple[Lane, ...] = (
    Lane(0.405, -1, {"person": 1.0}, 0.16, jitter=0.004),
    Lane(0.452, +1, {"person": 1.0}, 0.16, jitter=0.004),
    Lane(0.500, -1, {"bicycle": 1.0}, 0.05),
    Lane(0.555, -1, VEHICLE_MIX, 0.22),
    Lane(0.640, -1, VEHICLE_MIX, 0.22),
    Lane(0.720, +1, VEHICLE_MIX, 0.22),
    Lane(0.800, +1, VEHICLE_MIX, 0.22),
    Lane(0.850, +1, {"bicycle": 1.0}, 0.05),
    Lane(0.885, +1, {"person": 1.0}, 0.18, jitter=0.006),
    Lane(0.952, -1, {"person": 1.0}, 0.18, jitter=0.006),
)


@dataclass(slots=True)
class Actor:
    """One moving object (vehicle or pedestrian)."""

    id: int
    cls: str
    lane: int
    x: float
    y: float
    direction: int
    length: float  # frame heights at scale 1
    height: float
    speed: float  # desired speed, frame widths per second at scale 1
    colour: tuple[int, int, int]
    style: int  # renderer variation (shape detail, accent colour)
    phase: float  # walking / pedalling phase
    v: float = 0.0  # current speed
    stops: tuple[tuple[float, float], ...] = ()  # (from, to) times it stands still
    until: float | None = None  # leaves the scene then (into a doorway, a vehicle)

    def standing(self, t: float) -> bool:
        """Whether a scripted stop holds the actor still at time ``t``."""
        return any(a <= t < b for a, b in self.stops)

    def size(self, aspect: float) -> tuple[float, float]:
        """Box width and height in normalised units for a frame of ``width / height = aspect``."""
        s = perspective_scale(self.y)
        return self.length * s / aspect, self.height * s

    def box(self, aspect: float) -> tuple[float, float, float, float]:
        """Full (unclipped) box ``x1, y1, x2, y2`` in normalised units."""
        w, h = self.size(aspect)
        return self.x - w / 2, self.y - h, self.x + w / 2, self.y


@dataclass(frozen=True, slots=True)
class Crossing:
    """Ground truth: actor ``object_id`` crossed ``line_id`` at time ``t`` (frame ``frame``)."""

    object_id: int
    cls: str
    line_id: str
    direction: str
    t: float
    frame: int


@dataclass(frozen=True, slots=True)
class Spawn:
    """A scripted actor: enters at time ``t`` at ``x`` (normalised ground position).

    ``t = 0`` places it before the first frame (it is already there in frame 1 and has
    crossed nothing yet). ``lane`` picks the path (index into :data:`LANES`) and its
    direction; ``y`` overrides the lane's ground height. Sizes are fractions of the
    frame height at scale 1 (see :data:`KINDS`); ``speed`` is frame widths per second
    at scale 1. During each ``stops`` interval the actor stands still; at ``until`` it
    leaves the scene where it is (into a doorway or a vehicle).
    """

    t: float
    cls: str
    lane: int
    x: float
    speed: float
    length: float
    height: float
    y: float | None = None
    stops: tuple[tuple[float, float], ...] = ()
    until: float | None = None
    colour: tuple[int, int, int] = (60, 60, 110)
    style: int = 0


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Parameters of one simulated street."""

    seed: int = 0
    fps: float = 10.0
    aspect: float = 16 / 9
    density: float = 1.0
    lines: tuple[Line, ...] = ()
    warmup_s: float = 0.0
    script: tuple[Spawn, ...] | None = None  # scripted actors instead of random traffic


@dataclass(slots=True)
class World:
    """Actors on the street, advanced one frame at a time; reproducible from the seed."""

    config: WorldConfig
    actors: list[Actor] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)
    frame: int = 0
    spawning: bool = True  # False: no new actors (let the street empty at the end of a run)
    _rng: np.random.Generator = field(init=False)
    _pending: list[Spawn] = field(init=False)
    _next_id: int = 1

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)
        self._pending = sorted(self.config.script or (), key=lambda sp: sp.t)
        self._release(0.0)
        warm = round(self.config.warmup_s * self.config.fps)
        for _ in range(warm):
            self._advance(record=False)
        self.crossings.clear()
        self.frame = 0

    @property
    def t(self) -> float:
        """Simulated time of the current frame, seconds."""
        return self.frame / self.config.fps

    def step(self) -> None:
        """Advance one frame: move actors, log crossings, spawn and retire actors."""
        self._advance(record=True)

    def _advance(self, record: bool) -> None:
        dt = 1.0 / self.config.fps
        self.frame += 1
        aspect = self.config.aspect
        by_lane: dict[int, list[Actor]] = {}
        for actor in self.actors:
            by_lane.setdefault(actor.lane, []).append(actor)
        for lane_actors in by_lane.values():
            # Front-most first, so followers see their leader's new position.
            lane_actors.sort(key=lambda a: -a.x * a.direction)
            leader: Actor | None = None
            for actor in lane_actors:
                actor.v = 0.0 if actor.standing(self.t) else actor.speed
                if leader is not None:
                    gap = (
                        abs(leader.x - actor.x)
                        - (leader.size(aspect)[0] + actor.size(aspect)[0]) / 2
                    )
                    near = 0.05 if actor.cls == "person" else 0.06
                    if gap < near:
                        actor.v = min(actor.speed, leader.v * 0.9)
                    if gap < near / 2.5:
                        actor.v = 0.0
                old = (actor.x, actor.y)
                actor.x += actor.direction * actor.v * perspective_scale(actor.y) * dt
                actor.phase += actor.v * dt * 40.0
                if record:
                    self._log_crossings(actor, old)
                leader = actor
        self.actors = [a for a in self.actors if not self._gone(a)]
        self._spawn(dt)

    def _log_crossings(self, actor: Actor, old: tuple[float, float]) -> None:
        for line in self.config.lines:
            direction = crossing_direction(line, old, (actor.x, actor.y))
            if direction is not None:
                self.crossings.append(
                    Crossing(actor.id, actor.cls, line.id, direction, self.t, self.frame)
                )

    def _gone(self, actor: Actor) -> bool:
        if actor.until is not None and self.t >= actor.until:
            return True
        w = actor.size(self.config.aspect)[0]
        return actor.x - w / 2 > 1.02 if actor.direction > 0 else actor.x + w / 2 < -0.02

    def _release(self, t: float) -> None:
        """Add the scripted actors due by time ``t``."""
        while self._pending and self._pending[0].t <= t + 1e-9:
            sp = self._pending.pop(0)
            lane = LANES[sp.lane]
            self.actors.append(
                Actor(
                    id=self._next_id,
                    cls=sp.cls,
                    lane=sp.lane,
                    x=sp.x,
                    y=lane.y if sp.y is None else sp.y,
                    direction=lane.direction,
                    length=sp.length,
                    height=sp.height,
                    speed=sp.speed,
                    colour=sp.colour,
                    style=sp.style,
                    phase=0.0,
                    stops=sp.stops,
                    until=sp.until,
                )
            )
            self._next_id += 1

    def _spawn(self, dt: float) -> None:
        if self.config.script is not None:
            if self.spawning:
                self._release(self.t)
            return
        if not self.spawning:
            return
        rng = self._rng
        aspect = self.config.aspect
        for index, lane in enumerate(LANES):
            if rng.random() >= lane.rate * self.config.density * dt:
                continue
            names = list(lane.mix)
            cls = names[int(rng.choice(len(names), p=np.array(list(lane.mix.values()))))]
            kind = KINDS[cls]
            y = lane.y + (rng.uniform(-lane.jitter, lane.jitter) if lane.jitter else 0.0)
            length = float(rng.uniform(*kind.length))
            scale = perspective_scale(y)
            w = length * scale / aspect
            x = -w / 2 - 0.01 if lane.direction > 0 else 1 + w / 2 + 0.01
            if not self._room(index, x, w, 0.05):
                continue
            self.actors.append(
                Actor(
                    id=self._next_id,
                    cls=cls,
                    lane=index,
                    x=x,
                    y=y,
                    direction=lane.direction,
                    length=length,
                    height=float(rng.uniform(*kind.height)),
                    speed=float(rng.uniform(*kind.speed)),
                    colour=_colour(rng),
                    style=int(rng.integers(0, 1 << 16)),
                    phase=float(rng.uniform(0, 2 * np.pi)),
                )
            )
            self._next_id += 1

    def _room(self, lane: int, x: float, w: float, gap: float) -> bool:
        aspect = self.config.aspect
        for other in self.actors:
            if other.lane == lane and abs(other.x - x) < (other.size(aspect)[0] + w) / 2 + gap:
                return False
        return True


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Pick a body colour (BGR): mostly greys, whites and blacks, some saturated paint."""
    if rng.random() < 0.45:
        v = int(rng.choice([30, 60, 120, 170, 215, 240]))
        return (v, v, v)
    palette = [
        (40, 40, 180),
        (170, 80, 30),
        (40, 140, 40),
        (30, 170, 220),
        (120, 40, 110),
        (20, 90, 150),
        (200, 160, 60),
        (60, 60, 110),
    ]
    b, g, r = palette[int(rng.integers(len(palette)))]
    return (
        min(255, b + int(rng.integers(-15, 16))) if b > 15 else b,
        min(255, g + int(rng.integers(-15, 16))) if g > 15 else g,
        min(255, r + int(rng.integers(-15, 16))) if r > 15 else r,
    )
