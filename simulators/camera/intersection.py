"""A signalised four-arm intersection in metres, with turning traffic and exact truth.

Ground coordinates: ``X`` east, ``Y`` north, metres, the centre of the junction at the
origin. Each arm (``N``, ``E``, ``S``, ``W``) has one inbound and one outbound lane
(right-hand traffic, 3.5 m wide); the stop line of an inbound lane is ``BOX`` metres
from the centre. Vehicles arrive on each arm at random (Poisson, ``rate_vph``), choose
left, through or right, follow their lane with the Intelligent Driver Model (Treiber et
al., 2000) behind the vehicle ahead, stop at the stop line on amber (if they can) and
red, and turn along smooth curves. The signal gives each arm its own green in turn
(split phasing: N, E, S, W), so movements of different arms never conflict.

The world records its own truth, never derived from pictures: every stop-line, gate and
count-line crossing (time, speed, class), and per frame, per arm, whether the presence
zone before the stop line holds a vehicle and how long the queue is
(:class:`ArmSnapshot`). :mod:`simulators.camera.flow_truth` turns these into the flow
measures per interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

ARMS: tuple[str, ...] = ("N", "E", "S", "W")
OUT: dict[str, tuple[float, float]] = {"N": (0, 1), "E": (1, 0), "S": (0, -1), "W": (-1, 0)}
LANE_W = 3.5
BOX = 9.0  # stop lines and gates: metres from the centre
GATE = 11.0  # where the movement gates are drawn, metres from the centre
COUNT_OUT = 20.0  # outbound count lines, metres from the centre
SPAWN = 75.0  # vehicles appear and vanish this far out (beyond the camera's view)
PRESENCE_M = 6.0  # presence zone: this long, ending at the stop line
STOPPED_MS = 8.0 / 3.6  # queued below this speed (the analytics' default stopped_kmh)
MAX_SPACING_M = 15.0
# The camera's queue areas reach this far from the centre: the queue is measured on
# that stretch (a longer queue reads as reaching its end).
QUEUE_REACH = 42.0
MOVES: tuple[str, ...] = ("left", "through", "right")


@dataclass(frozen=True, slots=True)
class VehicleKind:
    """Footprint (metres), desired speed range (m/s) and share of arrivals."""

    length: float
    width: float
    speed: tuple[float, float]
    share: float


KINDS: dict[str, VehicleKind] = {
    "car": VehicleKind(4.5, 1.8, (10.0, 14.0), 0.8),
    "bus": VehicleKind(12.0, 2.5, (8.5, 11.0), 0.05),
    "truck": VehicleKind(8.0, 2.4, (8.5, 12.0), 0.08),
    "motorcycle": VehicleKind(2.2, 0.8, (11.0, 15.0), 0.07),
}
TURN_SPEED = 6.5  # m/s through a turn


def _right(d: tuple[float, float]) -> tuple[float, float]:
    """The right-hand normal of a direction of travel."""
    return (d[1], -d[0])


def destination(origin: str, move: str) -> str:
    """The arm a vehicle from ``origin`` leaves by when it goes ``move``."""
    ox, oy = OUT[origin]
    travel = (-ox, -oy)
    if move == "through":
        want = travel
    elif move == "right":
        want = _right(travel)
    else:
        r = _right(travel)
        want = (-r[0], -r[1])
    return next(arm for arm, d in OUT.items() if d == (round(want[0]), round(want[1])))


def inbound_point(arm: str, s: float) -> tuple[float, float]:
    """A point of ``arm``'s inbound lane centre, ``s`` metres from the junction's centre."""
    d = OUT[arm]
    r = _right((-d[0], -d[1]))
    return (d[0] * s + r[0] * LANE_W / 2, d[1] * s + r[1] * LANE_W / 2)


def outbound_point(arm: str, s: float) -> tuple[float, float]:
    """A point of ``arm``'s outbound lane centre, ``s`` metres from the centre."""
    d = OUT[arm]
    r = _right(d)
    return (d[0] * s + r[0] * LANE_W / 2, d[1] * s + r[1] * LANE_W / 2)


def across(arm: str, s: float, lanes: str = "both") -> tuple[tuple[float, float], ...]:
    """The ends of a segment across ``arm`` at ``s`` metres: ``inbound``, ``outbound`` or both.

    Points are ordered from the inbound side's kerb to the other, so crossing the
    segment inbound is always the same direction of the analytics' line convention for
    a given arm (see :func:`entry_direction`).
    """
    d = OUT[arm]
    r = _right((-d[0], -d[1]))  # towards the inbound kerb
    far_in = (d[0] * s + r[0] * LANE_W, d[1] * s + r[1] * LANE_W)
    mid = (d[0] * s, d[1] * s)
    far_out = (d[0] * s - r[0] * LANE_W, d[1] * s - r[1] * LANE_W)
    if lanes == "inbound":
        return (far_in, mid)
    if lanes == "outbound":
        return (mid, far_out)
    return (far_in, far_out)


@dataclass(slots=True)
class Path:
    """A polyline with cumulative arclength, and the arclengths of its markers."""

    points: F64  # (N, 2)
    cum: F64  # (N,)
    stop_s: float  # the stop line
    entry_s: float  # the origin's gate
    exit_s: float  # the destination's gate
    count_s: float  # the destination's outbound count line
    turn: tuple[float, float]  # arclengths where the curve begins and ends

    @property
    def length(self) -> float:
        """Total arclength."""
        return float(self.cum[-1])

    def at(self, s: float) -> tuple[float, float, float]:
        """Position ``(x, y)`` and heading (radians) at arclength ``s``."""
        s = min(max(s, 0.0), self.length)
        i = int(np.searchsorted(self.cum, s, side="right")) - 1
        i = min(max(i, 0), len(self.cum) - 2)
        seg = self.cum[i + 1] - self.cum[i]
        f = 0.0 if seg <= 0 else (s - self.cum[i]) / seg
        p, q = self.points[i], self.points[i + 1]
        return (
            float(p[0] + (q[0] - p[0]) * f),
            float(p[1] + (q[1] - p[1]) * f),
            math.atan2(float(q[1] - p[1]), float(q[0] - p[0])),
        )


def make_path(origin: str, move: str) -> Path:
    """The route from ``origin`` going ``move``: inbound lane, curve, outbound lane."""
    dest = destination(origin, move)
    start, p0 = inbound_point(origin, SPAWN), inbound_point(origin, BOX)
    p1, end = outbound_point(dest, BOX), outbound_point(dest, SPAWN)
    if move == "through":
        curve = [p0, p1]
    else:
        # Quadratic Bezier with its control point where the two lane lines meet.
        ox, oy = OUT[origin]
        u = (-ox, -oy)
        dx, dy = OUT[dest]
        # p0 + a * u == p1 - b * (dx, dy): solve for a.
        det = u[0] * (-dy) - u[1] * (-dx)
        a = ((p1[0] - p0[0]) * (-dy) - (p1[1] - p0[1]) * (-dx)) / det
        c = (p0[0] + a * u[0], p0[1] + a * u[1])
        ts = np.linspace(0.0, 1.0, 24)
        curve = [
            (
                (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * c[0] + t * t * p1[0],
                (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * c[1] + t * t * p1[1],
            )
            for t in ts.tolist()
        ]
    pts = np.array([start, *curve, end], dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    stop_s = SPAWN - BOX
    turn_end = float(cum[-2])
    return Path(
        points=pts,
        cum=cum,
        stop_s=stop_s,
        entry_s=SPAWN - GATE,
        exit_s=turn_end + (GATE - BOX),
        count_s=turn_end + (COUNT_OUT - BOX),
        turn=(stop_s, turn_end),
    )


@dataclass(frozen=True, slots=True)
class SignalPlan:
    """Split phasing: each arm in ``order`` gets ``green_s[arm]``, then amber, then all-red."""

    green_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ARMS, 14.0))
    amber_s: float = 3.0
    all_red_s: float = 3.0
    order: tuple[str, ...] = ARMS

    @property
    def cycle_s(self) -> float:
        """Length of one cycle."""
        return sum(self.green_s[a] + self.amber_s + self.all_red_s for a in self.order)

    def state(self, arm: str, t: float) -> str:
        """``green``, ``amber`` or ``red`` for ``arm`` at time ``t``."""
        tc = t % self.cycle_s
        for a in self.order:
            g = self.green_s[a]
            if a == arm:
                if tc < g:
                    return "green"
                if tc < g + self.amber_s:
                    return "amber"
                return "red"
            tc -= g + self.amber_s + self.all_red_s
            if tc < 0:
                return "red"
        return "red"


@dataclass(frozen=True, slots=True)
class IntersectionConfig:
    """One simulated junction: arrivals per arm, turning shares, signal, seed."""

    seed: int = 0
    fps: float = 10.0
    rate_vph: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ARMS, 420.0))
    turns: tuple[float, float, float] = (0.25, 0.5, 0.25)  # left, through, right
    signal: SignalPlan = field(default_factory=SignalPlan)
    warmup_s: float = 0.0


@dataclass(slots=True)
class Vehicle:
    """One vehicle on its path; ``pos`` is the arclength of its centre."""

    id: int
    cls: str
    origin: str
    move: str
    dest: str
    path: Path
    length: float
    width: float
    v0: float
    colour: tuple[int, int, int]
    pos: float
    v: float
    go: bool = False  # committed to pass the stop line (green, or too close on amber)

    def pose(self) -> tuple[float, float, float]:
        """Centre ``(x, y)`` in metres and heading in radians."""
        return self.path.at(self.pos)

    def footprint(self) -> F64:
        """The 4 corners of the footprint on the ground ``(4, 2)``: rear-left first."""
        x, y, h = self.pose()
        c, s = math.cos(h), math.sin(h)
        hl, hw = self.length / 2, self.width / 2
        local = np.array([[-hl, hw], [hl, hw], [hl, -hw], [-hl, -hw]])
        rot = np.array([[c, -s], [s, c]])
        out: F64 = local @ rot.T + np.array([x, y])
        return out


@dataclass(frozen=True, slots=True)
class Passage:
    """Truth: vehicle ``vid`` passed marker ``what`` of ``arm`` at ``t`` going ``speed`` m/s."""

    vid: int
    cls: str
    what: str  # "stop" (stop line), "entry" / "exit" (gates), "count" (outbound count line)
    arm: str
    t: float
    speed: float
    origin: str
    dest: str


@dataclass(frozen=True, slots=True)
class ArmSnapshot:
    """Truth for one frame and arm: presence zone held, queue length (m) and vehicles.

    Occupied: a vehicle's footprint overlaps the presence zone. Queue: vehicles slower
    than ``STOPPED_MS`` before the stop line, from the line back while each centre is
    within ``MAX_SPACING_M`` of the previous one; its length reaches the last one's rear,
    on the stretch up to ``QUEUE_REACH`` that the camera's queue area covers.
    """

    t: float
    arm: str
    occupied: bool
    queue_m: float
    queue_n: int


@dataclass(slots=True)
class Intersection:
    """The junction's vehicles, advanced one frame at a time; reproducible from the seed."""

    config: IntersectionConfig
    vehicles: list[Vehicle] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    snapshots: list[ArmSnapshot] = field(default_factory=list)
    frame: int = 0
    spawning: bool = True
    _rng: np.random.Generator = field(init=False)
    _next_id: int = 1
    _paths: dict[tuple[str, str], Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)
        self._paths = {(a, m): make_path(a, m) for a in ARMS for m in MOVES}
        for _ in range(round(self.config.warmup_s * self.config.fps)):
            self._advance(record=False)
        self.passages.clear()
        self.snapshots.clear()
        self.frame = 0

    @property
    def t(self) -> float:
        """Simulated time of the current frame, seconds."""
        return self.frame / self.config.fps

    def step(self) -> None:
        """Advance one frame and record the truth."""
        self._advance(record=True)

    def signal(self, arm: str) -> str:
        """The signal of ``arm`` now."""
        return self.config.signal.state(arm, self.t + self.config.warmup_s)

    # -- dynamics --------------------------------------------------------------------------

    def _advance(self, record: bool) -> None:
        dt = 1.0 / self.config.fps
        self.frame += 1
        t_prev = self.t - dt
        substeps = 2
        for k in range(substeps):
            h = dt / substeps
            self._move(h, t_prev + (k + 1) * h, record)
        self.vehicles = [v for v in self.vehicles if v.pos < v.path.length - 0.5]
        self._spawn(dt)
        if record:
            self._snapshot()

    def _move(self, h: float, t_end: float, record: bool) -> None:
        accels = [self._accel(v, t_end) for v in self.vehicles]
        for v, a in zip(self.vehicles, accels, strict=True):
            old_pos, old_v = v.pos, v.v
            v.v = max(0.0, v.v + a * h)
            v.pos += (old_v + v.v) / 2 * h
            if record:
                self._log(v, old_pos, old_v, t_end - h, h)

    def _accel(self, v: Vehicle, t: float) -> float:
        """IDM acceleration towards the leader, a red stop line or a turn's speed."""
        a_max, b, s0, headway = 1.8, 2.5, 2.0, 1.3
        v0 = v.v0
        on_turn = v.move != "through" and v.path.turn[0] - 25 < v.pos < v.path.turn[1]
        if on_turn:
            v0 = min(v0, TURN_SPEED)
        free = 1.0 - (v.v / v0) ** 4
        gap, dv = self._leader_gap(v)
        front = v.pos + v.length / 2
        state = self.config.signal.state(v.origin, t + self.config.warmup_s)
        if front < v.path.stop_s:
            if state == "green":
                v.go = True
            elif state == "red" or (v.v * v.v / (2 * 4.0) < v.path.stop_s - front - 0.5):
                v.go = False  # it can stop (or must): a stopped obstacle at the line
            stop_gap = v.path.stop_s - front
            if not v.go and stop_gap < gap:
                gap, dv = max(stop_gap, 0.01), v.v
        interaction = 0.0
        if gap < 200:
            s_star = s0 + max(0.0, v.v * headway + v.v * dv / (2 * math.sqrt(a_max * b)))
            interaction = (s_star / max(gap, 0.01)) ** 2
        return max(-8.0, a_max * (free - interaction))

    def _leader_gap(self, v: Vehicle) -> tuple[float, float]:
        """Bumper-to-bumper gap and closing speed to the nearest vehicle ahead in its path."""
        x, y, heading = v.pose()
        hx, hy = math.cos(heading), math.sin(heading)
        best, closing = 1e9, 0.0
        for other in self.vehicles:
            if other is v:
                continue
            ox, oy, oh = other.pose()
            ahead = (ox - x) * hx + (oy - y) * hy
            side = abs(-(ox - x) * hy + (oy - y) * hx)
            same_way = math.cos(oh - heading) > 0.3
            if ahead <= 0 or ahead > 60 or side > 1.6 or not same_way:
                continue
            gap = ahead - (v.length + other.length) / 2
            if gap < best:
                best, closing = gap, v.v - other.v
        return best, closing

    def _log(self, v: Vehicle, old: float, old_v: float, t0: float, h: float) -> None:
        p = v.path
        markers = (
            ("entry", p.entry_s, v.origin),
            ("stop", p.stop_s, v.origin),
            ("exit", p.exit_s, v.dest),
            ("count", p.count_s, v.dest),
        )
        for what, s, arm in markers:
            if old < s <= v.pos:
                f = (s - old) / (v.pos - old)
                speed = old_v + (v.v - old_v) * f
                self.passages.append(
                    Passage(v.id, v.cls, what, arm, t0 + f * h, speed, v.origin, v.dest)
                )

    def _spawn(self, dt: float) -> None:
        if not self.spawning:
            return
        rng = self._rng
        classes = list(KINDS)
        shares = np.array([KINDS[c].share for c in classes])
        for arm in ARMS:
            rate = self.config.rate_vph.get(arm, 0.0) / 3600.0
            if rate <= 0 or rng.random() >= rate * dt:
                continue
            cls = classes[int(rng.choice(len(classes), p=shares / shares.sum()))]
            kind = KINDS[cls]
            move = MOVES[int(rng.choice(3, p=np.array(self.config.turns)))]
            path = self._paths[(arm, move)]
            pos = kind.length / 2
            v0 = float(rng.uniform(*kind.speed))
            blocked = [
                o
                for o in self.vehicles
                if o.origin == arm and o.pos - o.length / 2 < pos + kind.length / 2 + 8.0
            ]
            if blocked:
                continue  # the lane is full back to the edge: the arrival waits (not logged)
            self.vehicles.append(
                Vehicle(
                    id=self._next_id,
                    cls=cls,
                    origin=arm,
                    move=move,
                    dest=destination(arm, move),
                    path=path,
                    length=kind.length,
                    width=kind.width,
                    v0=v0,
                    colour=_colour(rng),
                    pos=pos,
                    v=v0 * 0.8,
                )
            )
            self._next_id += 1

    # -- truth per frame -------------------------------------------------------------------

    def _snapshot(self) -> None:
        for arm in ARMS:
            mine = [v for v in self.vehicles if v.origin == arm]
            waiting = sorted(
                (v for v in mine if v.pos + v.length / 2 <= v.path.stop_s + 1e-9),
                key=lambda v: -v.pos,
            )
            # The footprint over the zone (what a loop before the stop line feels).
            occupied = any(
                v.pos - v.length / 2 < v.path.stop_s
                and v.pos + v.length / 2 > v.path.stop_s - PRESENCE_M
                for v in mine
            )
            reach, length, n = 0.0, 0.0, 0
            for v in waiting:
                if v.v >= STOPPED_MS:
                    continue
                dist = v.path.stop_s - v.pos
                if dist - reach > MAX_SPACING_M:
                    break
                if dist > QUEUE_REACH - BOX:
                    break  # beyond the observed stretch
                reach, length, n = dist, max(length, dist + v.length / 2), n + 1
            length = min(length, QUEUE_REACH - BOX)
            self.snapshots.append(ArmSnapshot(self.t, arm, occupied, length, n))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Body colour (BGR): greys and whites mostly, some paint."""
    if rng.random() < 0.5:
        v = int(rng.choice([35, 70, 150, 200, 235]))
        return (v, v, v)
    palette = [(40, 40, 190), (180, 90, 30), (40, 150, 40), (30, 180, 230), (130, 40, 120)]
    return palette[int(rng.integers(len(palette)))]
