"""Scripted street scenes, each one a known way of getting a line count wrong.

A :class:`Scenario` is a short scripted world (no random traffic) with its counting
lines; the world logs the exact crossings of every actor's ground point, so a scenario
is a regression test for counting with exact ground truth. Lanes are indices into
:data:`~simulators.camera.world.LANES` (0/1 far sidewalk, 3/4 far carriageway going
left, 5/6 near carriageway going right, 8/9 near sidewalk right/left). The lines are
vertical and drawn bottom to top, so moving right in the picture is ``left_to_right``.

Registry: :data:`SCENARIOS` (name -> scenario).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.camera.lines import Line
from simulators.camera.world import KINDS, Spawn

MID = Line("mid", (0.5, 0.98), (0.5, 0.38))
WEST = Line("west", (0.03, 0.98), (0.03, 0.38))
EAST = Line("east", (0.97, 0.98), (0.97, 0.38))
FOREVER = ((0.0, 1e9),)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scripted scene: what happens, which lines count it, how long it runs."""

    name: str
    description: str
    spawns: tuple[Spawn, ...]
    lines: tuple[Line, ...]
    duration_s: float


def actor(
    cls: str,
    lane: int,
    x: float,
    *,
    t: float = 0.0,
    speed: float | None = None,
    y: float | None = None,
    stops: tuple[tuple[float, float], ...] = (),
    until: float | None = None,
    colour: tuple[int, int, int] = (60, 60, 110),
) -> Spawn:
    """A scripted actor of a class's middle size (speed: the class's middle by default)."""
    kind = KINDS[cls]
    return Spawn(
        t=t,
        cls=cls,
        lane=lane,
        x=x,
        speed=sum(kind.speed) / 2 if speed is None else speed,
        length=sum(kind.length) / 2,
        height=sum(kind.height) / 2,
        y=y,
        stops=stops,
        until=until,
        colour=colour,
    )


ALREADY_PAST = Scenario(
    "already_past",
    "Vehicles and people already past the line in the first frame, some waiting with "
    "their ground point inside its dead band (a queue at a stop line), drive and walk "
    "away: none of them crosses. Two cars arriving later cross once each.",
    (
        actor("car", 5, 0.506, stops=((0.0, 2.0),), colour=(200, 200, 200)),  # 3.8 px past
        actor("truck", 6, 0.56, colour=(40, 140, 40)),
        actor("car", 4, 0.495, stops=((0.0, 3.0),), colour=(40, 40, 180)),  # 3.2 px, going left
        actor("bus", 3, 0.40, colour=(30, 170, 220)),
        actor("person", 8, 0.505, stops=((0.0, 1.5),), colour=(170, 80, 30)),
        actor("person", 9, 0.496, stops=((0.0, 2.5),), colour=(120, 40, 110)),
        actor("car", 5, -0.1, t=2.0, speed=0.2, colour=(30, 30, 30)),
        actor("car", 4, 1.1, t=1.0, speed=0.2, colour=(240, 240, 240)),
    ),
    (MID,),
    10.0,
)

EDGES = Scenario(
    "edges",
    "Lines close to both frame sides: vehicles and people enter and leave the frame on "
    "them, their boxes cut by the frame edge while their ground point crosses.",
    (
        actor("person", 8, -0.02, speed=0.06, colour=(170, 80, 30)),  # enters left
        actor("person", 8, 0.90, speed=0.06, colour=(40, 40, 180)),  # leaves right
        actor("person", 9, 1.02, speed=0.06, colour=(120, 40, 110)),  # enters right
        actor("person", 9, 0.10, speed=0.06, colour=(30, 170, 220)),  # leaves left
        actor("car", 5, -0.08, t=0.5, speed=0.2, colour=(200, 200, 200)),
        actor("car", 4, 1.08, t=1.0, speed=0.2, colour=(40, 40, 180)),
        actor("bus", 6, -0.16, t=2.0, speed=0.14, colour=(30, 170, 220)),
    ),
    (WEST, MID, EAST),
    14.0,
)

BUS_OCCLUSION = Scenario(
    "bus_occlusion",
    "Cars overtake slow buses on the far side of them and cross the line while fully "
    "hidden for about two seconds (longer than the tracker keeps a lost track): each "
    "car and each bus crosses once.",
    (
        actor("bus", 6, 0.24, speed=0.10, colour=(30, 170, 220)),
        actor("car", 5, 0.02, speed=0.20, colour=(40, 40, 180)),
        actor("bus", 4, 0.743, speed=0.10, colour=(40, 140, 40)),
        actor("car", 3, 0.98, speed=0.22, colour=(200, 200, 200)),
    ),
    (MID,),
    10.0,
)

STANDING = Scenario(
    "standing",
    "A person stands just left of the line; one person walks past them leftwards "
    "across the line, later another rightwards. Then the standing person steps into a "
    "doorway and, a moment later, someone steps out of it right next to where they "
    "stood, just past the line, and walks away: two crossings. A second person stands "
    "just right of the line, and is swapped the same way from the other side.",
    (
        actor("person", 1, 0.485, y=0.90, stops=FOREVER, until=9.0, colour=(30, 30, 30)),
        actor("person", 9, 0.65, speed=0.05, colour=(40, 40, 180)),
        actor("person", 8, 0.35, t=3.0, speed=0.05, colour=(40, 140, 40)),
        actor("person", 8, 0.5035, t=9.3, y=0.90, speed=0.05, colour=(200, 160, 60)),
        actor("person", 0, 0.514, y=0.41, stops=FOREVER, until=4.0, colour=(30, 30, 30)),
        actor("person", 0, 0.4965, t=4.3, y=0.41, speed=0.05, colour=(170, 80, 30)),
    ),
    (MID,),
    14.0,
)

PEDESTRIAN_IN_ROADWAY = Scenario(
    "pedestrian_in_roadway",
    "A pedestrian walks along the near carriageway (off the sidewalk, on the road) from "
    "the left into the middle of the picture and on out of it; nothing else moves. A "
    "roadway zone over the middle of the near lanes sees them enter at about 3.5 s and "
    "leave at about 8 s (the local rules' beacon test).",
    (actor("person", 8, 0.25, speed=0.05, y=0.80, colour=(170, 80, 30)),),
    (),
    16.0,
)

BEHIND_STANDING = Scenario(
    "behind_standing",
    "A person stands on the line near the camera; someone steps out of a doorway just "
    "right of them, walks left behind them across the line (their box cut on the left by "
    "the standing person's from the moment they are tracked) and on: one crossing.",
    (
        actor("person", 9, 0.5, y=0.92, stops=FOREVER, colour=(30, 30, 30)),
        actor("person", 0, 0.535, t=1.0, y=0.84, speed=0.03, colour=(170, 80, 30)),
    ),
    (MID,),
    8.0,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        ALREADY_PAST,
        EDGES,
        BUS_OCCLUSION,
        STANDING,
        BEHIND_STANDING,
        PEDESTRIAN_IN_ROADWAY,
    )
}

# The far sidewalk of the demo road (seed 3) from 52 s: eight walkers, both ways, 30 px
# tall, passing each other on the line (positions, sizes, speeds and looks from that run).
_FAR = (
    (1, 0.6118, 0.4513, 0.0561, 0.1739, 0.0255, (158, 88, 19), 58940),
    (1, 0.5473, 0.4533, 0.0520, 0.1743, 0.0230, (55, 59, 102), 51),
    (0, 0.4790, 0.4083, 0.0513, 0.1706, 0.0276, (30, 49, 178), 38394),
    (1, 0.4845, 0.4522, 0.0458, 0.1515, 0.0426, (215, 215, 215), 6028),
    (0, 0.5423, 0.4029, 0.0539, 0.1720, 0.0249, (117, 31, 96), 54814),
    (1, 0.4192, 0.4555, 0.0557, 0.1566, 0.0325, (175, 91, 33), 7992),
    (0, 0.6068, 0.4055, 0.0590, 0.1789, 0.0224, (170, 170, 170), 2805),
    (1, 0.3546, 0.4541, 0.0535, 0.1554, 0.0418, (48, 40, 176), 26350),
)
FAR_SIDEWALK = Scenario(
    "far_sidewalk",
    "Walkers on the far sidewalk (about 30 px tall) pass each other on the line in both "
    "directions, a few pixels apart in depth: the tracker moves ids between them there.",
    tuple(
        Spawn(0.0, "person", lane, x, speed, length, height, y, colour=colour, style=style)
        for lane, x, y, length, height, speed, colour, style in _FAR
    ),
    (MID,),
    12.0,
)
SCENARIOS["far_sidewalk"] = FAR_SIDEWALK
