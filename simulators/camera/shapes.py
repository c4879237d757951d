"""Actors as drawing primitives (polygons, circles, lines) in pixel coordinates.

Each actor becomes a list of :data:`Prim`; the renderer draws them once in
colour onto the frame and once with the actor id onto an id map, so ground-truth
visibility is exact. Every primitive stays inside the actor's box.
"""

from __future__ import annotations

import math

import numpy as np

from simulators.camera.world import Actor

Colour = tuple[int, int, int]
# ("poly", points (K, 2) int32, colour) | ("circle", (cx, cy, r), colour)
# | ("line", (x1, y1, x2, y2, thickness), colour)
Prim = tuple[str, object, Colour]

SKIN: tuple[Colour, ...] = ((140, 170, 220), (90, 120, 170), (60, 80, 120), (170, 195, 235))
DARK: Colour = (25, 25, 28)
GLASS: Colour = (95, 70, 55)


def _shade(c: Colour, f: float) -> Colour:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


class _Frame:
    """Local actor frame: ``u`` along the heading (-0.5 rear .. 0.5 front), ``v`` up (0..1)."""

    def __init__(self, x: float, y: float, w: float, h: float, direction: int) -> None:
        self.x, self.y, self.w, self.h, self.d = x, y, w, h, direction

    def pt(self, u: float, v: float) -> tuple[int, int]:
        return round(self.x + self.d * u * self.w), round(self.y - v * self.h)

    def poly(self, uv: list[tuple[float, float]]) -> np.ndarray:
        return np.array([self.pt(u, v) for u, v in uv], dtype=np.int32)

    def rect(self, u0: float, v0: float, u1: float, v1: float) -> np.ndarray:
        return self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)])

    def circle(self, u: float, v: float, r: float) -> tuple[int, int, int]:
        cx, cy = self.pt(u, v)
        return cx, cy, max(1, round(r * self.h))


def actor_prims(actor: Actor, width: int, height: int, dusk: bool) -> list[Prim]:
    """Primitives for one actor in a ``width x height`` frame."""
    w_n, h_n = actor.size(width / height)
    f = _Frame(
        actor.x * width, actor.y * height - 1, w_n * width, h_n * height - 1, actor.direction
    )
    draw = _DRAWERS[actor.cls]
    return draw(f, actor, dusk)


def _wheel(f: _Frame, u: float, r: float) -> list[Prim]:
    return [
        ("circle", f.circle(u, r, r), DARK),
        ("circle", f.circle(u, r, r * 0.45), (150, 150, 150)),
    ]


def _lights(f: _Frame, v: float, r: float, dusk: bool) -> list[Prim]:
    head = (200, 245, 255) if dusk else (190, 210, 215)
    tail = (40, 40, 255) if dusk else (30, 30, 150)
    return [("circle", f.circle(0.47, v, r), head), ("circle", f.circle(-0.47, v, r), tail)]


def _car(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    body = a.colour
    lower = f.poly(
        [
            (-0.5, 0.2),
            (-0.5, 0.5),
            (-0.45, 0.58),
            (0.45, 0.6),
            (0.5, 0.5),
            (0.5, 0.22),
            (0.46, 0.15),
            (-0.46, 0.15),
        ]
    )
    back = -0.34 if a.style % 3 else -0.44  # hatchback or saloon
    cabin = f.poly([(back, 0.58), (back + 0.08, 0.98), (0.12, 0.98), (0.3, 0.6)])
    win = f.poly([(back + 0.05, 0.62), (back + 0.1, 0.9), (0.1, 0.9), (0.24, 0.62)])
    pillar = f.rect(-0.06, 0.62, -0.02, 0.92)
    prims: list[Prim] = [
        ("poly", lower, body),
        ("poly", cabin, _shade(body, 0.85)),
        ("poly", win, GLASS),
        ("poly", pillar, _shade(body, 0.85)),
    ]
    prims += _wheel(f, -0.3, 0.18) + _wheel(f, 0.3, 0.18) + _lights(f, 0.42, 0.05, dusk)
    return prims


def _bus(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    body = a.colour if a.style % 2 else (30, 190, 230)
    prims: list[Prim] = [
        ("poly", f.rect(-0.5, 0.1, 0.5, 1.0), body),
        ("poly", f.rect(-0.5, 0.1, 0.5, 0.28), _shade(body, 0.7)),
    ]
    n = 6 + a.style % 3
    for i in range(n):
        u0 = -0.46 + i * 0.88 / n
        prims.append(("poly", f.rect(u0, 0.55, u0 + 0.88 / n - 0.02, 0.88), GLASS))
    prims.append(("poly", f.rect(0.36, 0.12, 0.44, 0.85), _shade(GLASS, 0.8)))  # door
    prims += _wheel(f, -0.33, 0.12) + _wheel(f, 0.3, 0.12) + _lights(f, 0.3, 0.04, dusk)
    return prims


def _truck(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    cargo = (200, 200, 200) if a.style % 3 == 0 else _shade(a.colour, 1.1)
    cab = a.colour if a.style % 3 else (40, 40, 170)
    prims: list[Prim] = [
        ("poly", f.rect(-0.5, 0.14, 0.26, 1.0), cargo),
        ("poly", f.rect(-0.5, 0.14, 0.5, 0.2), DARK),
        ("poly", f.poly([(0.28, 0.14), (0.28, 0.78), (0.42, 0.78), (0.5, 0.5), (0.5, 0.14)]), cab),
        ("poly", f.poly([(0.33, 0.5), (0.33, 0.72), (0.41, 0.72), (0.47, 0.5)]), GLASS),
    ]
    prims += _wheel(f, -0.36, 0.14) + _wheel(f, -0.2, 0.14) + _wheel(f, 0.36, 0.14)
    prims += _lights(f, 0.3, 0.04, dusk)
    return prims


def _rider(f: _Frame, a: Actor, u: float, lean: float) -> list[Prim]:
    shirt = _shade(a.colour, 0.9)
    skin = SKIN[a.style % len(SKIN)]
    torso = f.poly(
        [(u - 0.12, 0.52), (u + 0.05, 0.52), (u + lean + 0.08, 0.84), (u + lean - 0.1, 0.84)]
    )
    helmet = (30, 30, 30) if a.cls == "motorcycle" else skin
    return [("poly", torso, shirt), ("circle", f.circle(u + lean, 0.9, 0.09), helmet)]


def _motorcycle(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    body = a.colour if a.style % 2 else (20, 20, 160)
    prims: list[Prim] = [*_wheel(f, -0.32, 0.19), *_wheel(f, 0.32, 0.19)]
    prims.append(
        ("poly", f.poly([(-0.35, 0.3), (-0.1, 0.5), (0.25, 0.55), (0.38, 0.35), (0.0, 0.25)]), body)
    )
    prims += _rider(f, a, -0.05, 0.08)
    prims.append(
        ("circle", f.circle(0.43, 0.42, 0.05), (200, 245, 255) if dusk else (180, 200, 200))
    )
    return prims


def _bicycle(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    frame_c = a.colour
    t = max(1, round(f.h * 0.035))
    rear, front = f.circle(-0.3, 0.19, 0.19), f.circle(0.3, 0.19, 0.19)
    prims: list[Prim] = []
    for cx, cy, r in (rear, front):
        prims.append(("circle", (cx, cy, -r), DARK))  # negative radius: ring
    hub_r, hub_f, seat, bar = f.pt(-0.3, 0.19), f.pt(0.3, 0.19), f.pt(-0.1, 0.5), f.pt(0.22, 0.52)
    crank = f.pt(0.0, 0.19)
    for p, q in (
        (hub_r, seat),
        (seat, crank),
        (crank, hub_r),
        (seat, bar),
        (bar, hub_f),
        (crank, bar),
    ):
        prims.append(("line", (*p, *q, t), frame_c))
    pedal = 0.09 * math.sin(a.phase)
    knee = f.pt(0.02 + pedal, 0.4)
    prims.append(("line", (*f.pt(-0.08, 0.53), *knee, t + 1), _shade(a.colour, 0.5)))
    prims += _rider(f, a, -0.06, 0.12)
    return prims


def _person(f: _Frame, a: Actor, dusk: bool) -> list[Prim]:
    shirt, trousers = (
        a.colour,
        ((60, 40, 30), (90, 90, 90), (40, 40, 40), (120, 90, 40))[a.style % 4],
    )
    skin = SKIN[(a.style >> 2) % len(SKIN)]
    t = max(1, round(f.w * 0.28))
    swing = 0.32 * math.sin(a.phase)
    hip = f.pt(0.0, 0.48)
    prims: list[Prim] = [
        ("line", (*hip, *f.pt(swing, 0.03), t), trousers),
        ("line", (*hip, *f.pt(-swing, 0.03), t), _shade(trousers, 0.8)),
        ("poly", f.poly([(-0.45, 0.45), (0.45, 0.45), (0.4, 0.83), (-0.4, 0.83)]), shirt),
        ("circle", f.circle(0.0, 0.9, 0.08), skin),
    ]
    if a.style % 5 == 0:  # a bag
        prims.append(("poly", f.rect(-0.5, 0.5, -0.15, 0.68), (30, 60, 90)))
    return prims


_DRAWERS = {
    "car": _car,
    "bus": _bus,
    "truck": _truck,
    "motorcycle": _motorcycle,
    "bicycle": _bicycle,
    "person": _person,
}
