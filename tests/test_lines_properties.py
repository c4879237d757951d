"""Line invariants over random walks with id switches (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.vision import LineConfig
from gateway.vision.analytics.lines import LineCounter
from tests.analytics_builders import FRAME, LABELS, frame

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


@settings(max_examples=300, deadline=None)
@given(
    accelerations=st.lists(st.floats(-0.006, 0.006), min_size=2, max_size=80),
    switches=st.sets(st.integers(1, 79), max_size=5),
)
def test_one_object_is_counted_at_most_once(accelerations: list[float], switches: set[int]) -> None:
    """One object wandering over the line under changing ids counts at most once."""
    counter = LineCounter(LINE, FRAME, LABELS)
    ys = positions(accelerations)
    tid, total = 1, 0
    for k, y in enumerate(ys):
        if k in switches:
            tid += 1  # the tracker gave the same object a new id
        l2r, r2l = counter.trigger(frame((tid, 0.5, y, "car")), k * DT)
        total += int(l2r.sum() + r2l.sum())
    assert total <= 1
    band = 0.01 * (FRAME[0] ** 2 + FRAME[1] ** 2) ** 0.5 / FRAME[1]
    if any(y > 0.5 + band + 1e-6 for y in ys):  # started clearly above, got clearly below
        assert total == 1
