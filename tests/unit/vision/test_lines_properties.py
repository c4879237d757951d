"""Line invariants over random walks with id switches (hypothesis)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.vision import LineConfig
from gateway.vision.analytics.lines import LineCounter
from tests.support.analytics_builders import FRAME, LABELS, frame

DT = 0.1
LINE = LineConfig.model_validate({"id": "l", "points": [[0.1, 0.5], [0.9, 0.5]]})
MAX_SPEED = 0.03  # normalised per frame: 30 px per 0.1 s for a 40 px wide box


def positions(accelerations: list[float]) -> list[float]:
    """A smooth up-and-down walk: bounded acceleration and speed, may stop and turn back."""
    y, v, out = 0.4, 0.0, []
    for a in accelerations:
        v = min(MAX_SPEED, max(-MAX_SPEED, v + a))
        y = min(0.95, max(0.05, y + v))
        out.append(y)
    return out


def true_crossings(ys: list[float], band: float) -> int:
    """How often the walk went from clearly one side of y = 0.5 to clearly the other."""
    sides = [1 if y > 0.5 + band else -1 for y in ys if abs(y - 0.5) > band]
    return sum(a != b for a, b in pairwise(sides))


@settings(max_examples=300, deadline=None)
@given(
    accelerations=st.lists(st.floats(-0.006, 0.006), min_size=2, max_size=80),
    switches=st.sets(st.integers(1, 79), max_size=5),
)
def test_one_object_is_counted_at_most_once_per_crossing(
    accelerations: list[float], switches: set[int]
) -> None:
    """One object wandering over the line under changing ids.

    It is counted at most once per time it really crossed, and at most once in all when
    it never turned back; when it ended up on the other side it was counted. (An id
    switch followed by a turn back over the line is taken for another object, so a walk
    that crosses, switches id and comes back may count twice.) The walk ends standing
    still for a moment so that hand-overs still on trial are decided.
    """
    counter = LineCounter(LINE, FRAME, LABELS)
    ys = positions(accelerations)
    ys += [ys[-1]] * 6
    tid, total = 1, 0
    for k, y in enumerate(ys):
        if k in switches:
            tid += 1  # the tracker gave the same object a new id
        l2r, r2l = counter.trigger(frame((tid, 0.5, y, "car")), k * DT)
        total += int(l2r.sum() + r2l.sum())
    band = 0.01 * (FRAME[0] ** 2 + FRAME[1] ** 2) ** 0.5 / FRAME[1]
    steps = [b - a for a, b in pairwise(ys)]
    assert total <= true_crossings(ys, band + 1e-6)
    if all(d >= 0 for d in steps) or all(d <= 0 for d in steps):
        assert total <= 1
    if ys[-1] > 0.5 + band + 1e-6:  # started clearly above, ended clearly below
        assert total >= 1
