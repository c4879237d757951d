"""Zone invariants over random walks (hypothesis): events alternate, dwell adds up."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.vision import ZoneConfig
from gateway.vision.analytics.types import ZoneTransition
from gateway.vision.analytics.zones import ZoneTracker
from gateway.vision.detections import Detections
from tests.support.analytics_builders import FRAME, LABELS, frame

DT = 0.1
ZONE = ZoneConfig.model_validate(
    {"id": "z", "points": [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]], "min_frames": 2}
)

step = st.tuples(st.floats(-0.08, 0.08), st.floats(-0.08, 0.08), st.booleans())


@settings(max_examples=60, deadline=None)
@given(walks=st.lists(st.lists(step, min_size=1, max_size=60), min_size=1, max_size=4))
def test_enter_and_exit_alternate_and_close(walks: list[list[tuple[float, float, bool]]]) -> None:
    """Per track: enter, exit, enter, ... and every enter is closed once the track is gone."""
    tracker = ZoneTracker("cam", ZONE, FRAME, LABELS, forget_s=1.0)
    pos = [[0.5, 0.5] for _ in walks]
    events: list[ZoneTransition] = []
    n = max(len(w) for w in walks)
    for k in range(n):
        objs = []
        for tid, walk in enumerate(walks):
            if k >= len(walk):
                continue
            dx, dy, visible = walk[k]
            pos[tid][0] = min(1.0, max(0.0, pos[tid][0] + dx))
            pos[tid][1] = min(1.0, max(0.0, pos[tid][1] + dy))
            if visible:
                objs.append((tid + 1, pos[tid][0], pos[tid][1], "car"))
        events += tracker.update(frame(*objs), k * DT)
        assert sum(tracker.occupancy().values()) == len(tracker.inside_ids())
    events += tracker.update(Detections.empty(), n * DT + 5.0)
    for tid in range(1, len(walks) + 1):
        mine = [e for e in events if e.track_id == tid]
        kinds = [e.kind for e in mine]
        assert kinds == ["enter", "exit"] * (len(kinds) // 2)
        for enter, leave in zip(mine[::2], mine[1::2], strict=True):
            assert leave.dwell_s is not None
            assert leave.dwell_s >= 0
            assert leave.dwell_s == round(leave.timestamp - enter.timestamp, 3)
    assert tracker.occupancy() == {}
    assert len(tracker) == 0
