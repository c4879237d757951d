"""ByteTrack-style tracker on synthetic detections."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.config.vision import CameraConfig, TrackerConfig
from gateway.vision.boxes import box_iou
from gateway.vision.detections import Detections
from gateway.vision.tracker import TRACKERS, ByteTracker, make_tracker
from gateway.vision.tracker.matching import assign

FPS = 10.0
CAR, TRUCK, PERSON = 2, 7, 0


def box(cx: float, cy: float, w: float = 40.0, h: float = 60.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(*objs: tuple[list[float], float, int]) -> Detections:
    """Detections from ``(box, score, class_id)`` tuples."""
    if not objs:
        return Detections.empty()
    return Detections.from_arrays([o[0] for o in objs], [o[1] for o in objs], [o[2] for o in objs])


def run(tracker: ByteTracker, frames: list[Detections]) -> list[Detections]:
    return [tracker.update(d, i / FPS) for i, d in enumerate(frames)]


def id_near(out: Detections, x: float) -> int:
    """Track id of the output box whose centre x is nearest ``x``."""
    cx = (out.xyxy[:, 0] + out.xyxy[:, 2]) / 2
    return int(out.tracker_id[int(np.argmin(np.abs(cx - x)))])


def test_single_object_confirmed_after_min_hits_and_keeps_id() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    outs = run(tracker, [dets((box(50 + 8 * i, 200), 0.9, CAR)) for i in range(20)])
    assert [len(o) for o in outs[:3]] == [0, 0, 1]
    ids = {int(o.tracker_id[0]) for o in outs[2:]}
    assert ids == {1}
    assert all(int(o.class_id[0]) == CAR for o in outs[2:])


@pytest.mark.parametrize(
    ("fps", "confirm_s", "reported_from"),
    [
        (10.0, 0.18, 2),  # two matches 0.1 s apart: min_hits decides, as before
        (5.0, 0.18, 1),  # two matches 0.2 s apart: confirmed at the second
        (10 / 3, 0.18, 1),
        (5.0, 0.0, 2),  # off: min_hits only
        (30.0, 0.18, 2),
    ],
)
def test_a_few_frames_a_second_confirm_a_track_over_confirm_s(
    fps: float, confirm_s: float, reported_from: int
) -> None:
    """A unit processing 5 frames a second would take 0.6 s to confirm a track with
    min_hits = 3, and a person stepping out of a crowd is lost before that: two matches
    over ``confirm_s`` confirm it, with its first box as its birth."""
    tracker = ByteTracker(TrackerConfig(min_hits=3, confirm_s=confirm_s))
    outs = []
    for i in range(4):
        outs.append(len(tracker.update(dets((box(50 + 8 * i, 200), 0.9, CAR)), i / fps)))
        if outs[-1]:
            assert tracker.births == {1: (tuple(box(50, 200)), 0.0)}
            break
    assert outs.index(1) == reported_from


def test_a_tentative_track_missed_once_still_ends_whatever_confirm_s() -> None:
    """confirm_s needs two matches in a row like min_hits does: one stray box confirms
    nothing, however long ago a box was there before."""
    tracker = ByteTracker(TrackerConfig(min_hits=3, confirm_s=0.18))
    assert not len(tracker.update(dets((box(50, 200), 0.9, CAR)), 0.0))
    assert not len(tracker.update(dets((box(400, 100), 0.9, PERSON)), 0.2))  # elsewhere
    assert not len(tracker.update(dets((box(58, 200), 0.9, CAR)), 0.4))  # starts afresh


def test_births_give_a_confirmed_track_its_first_box_once() -> None:
    """The track is reported from its third match on; where it began is its first box."""
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    births = []
    for i in range(5):
        tracker.update(dets((box(50 + 8 * i, 200), 0.9, CAR)), i / FPS)
        births.append(dict(tracker.births))
    assert births[:2] == [{}, {}]
    assert births[2] == {1: (tuple(box(50, 200)), 0.0)}
    assert births[3:] == [{}, {}]  # only the update that confirmed it


@pytest.mark.parametrize("speed", [6.0, 12.0, 20.0])
@pytest.mark.parametrize("class_match", ["vote", "strict"])
@pytest.mark.parametrize("same_class", [True, False])
def test_two_objects_crossing_paths_keep_their_ids(
    speed: float, class_match: str, same_class: bool
) -> None:
    tracker = ByteTracker(TrackerConfig(class_match=class_match))  # type: ignore[arg-type]
    n = int(400 / speed)
    cls_b = CAR if same_class else TRUCK
    frames = [
        dets(
            (box(50 + speed * i, 200), 0.9, CAR),
            (box(450 - speed * i, 215), 0.85, cls_b),
        )
        for i in range(n)
    ]
    outs = run(tracker, frames)
    first, last = outs[3], outs[-1]
    assert len(first) == 2
    assert len(last) == 2
    # The object that started on the left is now on the right, under the same id.
    assert id_near(first, 50 + speed * 3) == id_near(last, 50 + speed * (n - 1))
    assert id_near(first, 450 - speed * 3) == id_near(last, 450 - speed * (n - 1))
    seen = {int(t) for o in outs for t in o.tracker_id}
    assert seen == {1, 2}


@pytest.mark.parametrize(
    ("gap_frames", "same_id"),
    [(1, True), (4, True), (8, True), (20, False)],
)
def test_occlusion_gap(gap_frames: int, same_id: bool) -> None:
    tracker = ByteTracker(TrackerConfig(max_age_s=1.5))
    frames = []
    for i in range(40 + gap_frames):
        hidden = 15 <= i < 15 + gap_frames
        frames.append(Detections.empty() if hidden else dets((box(40 + 9 * i, 180), 0.9, CAR)))
    outs = run(tracker, frames)
    before = int(outs[14].tracker_id[0])
    after = outs[15 + gap_frames + 2]
    assert len(after) == 1
    assert (int(after.tracker_id[0]) == before) is same_id


def test_skipped_frames_use_timestamps() -> None:
    """After every frame for a while, only every fifth frame: the motion model uses real time.

    Each skipped step moves the box 50 px, more than its 40 px width, so only a
    prediction over the real elapsed time can still overlap the new detection.
    """
    tracker = ByteTracker()
    steps = list(range(10)) + list(range(10, 60, 5))
    outs = [tracker.update(dets((box(30 + 10 * i, 150), 0.9, CAR)), i / FPS) for i in steps]
    assert {int(t) for o in outs for t in o.tracker_id} == {1}
    assert len(outs[-1]) == 1


@pytest.mark.parametrize("low_score", [0.15, 0.3, 0.45])
def test_low_confidence_detections_extend_a_track(low_score: float) -> None:
    tracker = ByteTracker(TrackerConfig(high_thresh=0.5, low_thresh=0.1))
    frames = [dets((box(60 + 7 * i, 220), 0.9 if i < 8 else low_score, CAR)) for i in range(20)]
    outs = run(tracker, frames)
    assert all(len(o) == 1 and int(o.tracker_id[0]) == 1 for o in outs[2:])
    assert np.isclose(outs[-1].score[0], low_score)


def test_low_confidence_detections_never_start_tracks() -> None:
    tracker = ByteTracker()
    outs = run(tracker, [dets((box(100 + 5 * i, 100), 0.3, CAR)) for i in range(10)])
    assert all(len(o) == 0 for o in outs)
    assert tracker.live_tracks == 0


def test_below_low_threshold_ignored_even_for_existing_track() -> None:
    tracker = ByteTracker(TrackerConfig(low_thresh=0.2))
    frames = [dets((box(100 + 5 * i, 100), 0.9 if i < 5 else 0.05, CAR)) for i in range(10)]
    outs = run(tracker, frames)
    assert len(outs[4]) == 1
    assert all(len(o) == 0 for o in outs[5:])


def test_tracks_end_and_are_evicted() -> None:
    tracker = ByteTracker(TrackerConfig(max_age_s=1.0))
    run(tracker, [dets((box(100, 100), 0.9, CAR), (box(300, 100), 0.9, PERSON))] * 5)
    assert tracker.live_tracks == 2
    tracker.update(Detections.empty(), 0.9)
    assert tracker.live_tracks == 2  # lost, kept for max_age_s
    tracker.update(Detections.empty(), 1.35)
    assert tracker.live_tracks == 2
    tracker.update(Detections.empty(), 1.45)  # 1.05 s after the last match (t=0.4)
    assert tracker.live_tracks == 0


def test_tentative_track_dropped_after_one_miss() -> None:
    """A miss is an update with detections elsewhere; an empty (skipped) frame is not."""
    tracker = ByteTracker(TrackerConfig(min_hits=3, max_age_s=1.0))
    tracker.update(dets((box(100, 100), 0.9, CAR)), 0.0)
    assert tracker.live_tracks == 1
    tracker.update(Detections.empty(), 0.1)  # skipped frame: kept
    assert tracker.live_tracks == 1
    tracker.update(dets((box(400, 300), 0.2, CAR)), 0.2)  # a real miss
    assert tracker.live_tracks == 0


def test_tentative_track_ends_after_max_age_of_skipped_frames() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3, max_age_s=1.0))
    tracker.update(dets((box(100, 100), 0.9, CAR)), 0.0)
    tracker.update(Detections.empty(), 0.9)
    assert tracker.live_tracks == 1
    tracker.update(Detections.empty(), 1.1)
    assert tracker.live_tracks == 0


@pytest.mark.parametrize("stride", [2, 3])
def test_confirmation_and_low_scores_across_skipped_frames(stride: int) -> None:
    """The detector runs every ``stride``-th frame; empty updates in between."""
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    outs = []
    for i in range(40):
        if i % stride:
            frame_dets = Detections.empty()
        else:
            score = 0.9 if i < 15 else 0.3  # later only low-score detections
            frame_dets = dets((box(60 + 4 * i, 200), score, CAR))
        outs.append(tracker.update(frame_dets, i / FPS))
    detected = [o for i, o in enumerate(outs) if i % stride == 0]
    assert all(o.tracker_id.tolist() == [1] for o in detected[2:])


def test_track_cap_holds() -> None:
    cap = 5
    tracker = ByteTracker(TrackerConfig(max_tracks=cap, min_hits=1))
    for f in range(30):
        # 12 objects at new places every frame: each frame wants 12 new tracks.
        frame = dets(*[(box(30 + 45 * k, 40 + 11 * f), 0.9, CAR) for k in range(12)])
        out = tracker.update(frame, f / FPS)
        assert tracker.live_tracks <= cap
        assert len(out) <= cap
    assert tracker.dropped > 0


def test_cap_evicts_lost_tracks_for_new_ones() -> None:
    tracker = ByteTracker(TrackerConfig(max_tracks=2, min_hits=1, max_age_s=100))
    tracker.update(dets((box(100, 100), 0.9, CAR), (box(300, 100), 0.9, CAR)), 0.0)
    tracker.update(Detections.empty(), 0.1)  # both lost
    out = tracker.update(dets((box(500, 300), 0.9, CAR)), 0.2)
    assert tracker.live_tracks == 2
    assert out.tracker_id.tolist() == [3]


def test_class_vote_reports_majority_and_keeps_id() -> None:
    tracker = ByteTracker(TrackerConfig(class_match="vote"))
    frames = [dets((box(60 + 6 * i, 220), 0.8, TRUCK if i % 4 == 3 else CAR)) for i in range(20)]
    outs = run(tracker, frames)
    assert {int(t) for o in outs for t in o.tracker_id} == {1}
    assert {int(c) for o in outs for c in o.class_id} == {CAR}


def test_strict_class_match_splits_on_class_change() -> None:
    tracker = ByteTracker(TrackerConfig(class_match="strict"))
    frames = [dets((box(60 + 6 * i, 220), 0.8, CAR if i < 10 else TRUCK)) for i in range(20)]
    outs = run(tracker, frames)
    assert int(outs[9].tracker_id[0]) != int(outs[-1].tracker_id[0])


def test_reset_and_registry() -> None:
    assert TRACKERS["bytetrack"] is ByteTracker
    tracker = make_tracker(TrackerConfig(min_hits=1))
    assert isinstance(tracker, ByteTracker)
    assert tracker.update(dets((box(100, 100), 0.9, CAR)), 0.0).tracker_id.tolist() == [1]
    tracker.reset()
    assert tracker.live_tracks == 0
    # Ids are never reused, so analytics state of the old track 1 cannot leak.
    assert tracker.update(dets((box(400, 100), 0.9, CAR)), 5.0).tracker_id.tolist() == [2]
    assert isinstance(make_tracker(), ByteTracker)


def test_camera_has_tracker_defaults() -> None:
    cam = CameraConfig.model_validate({"id": "c", "source": {"type": "simulator"}})
    assert cam.tracker == TrackerConfig()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"low_thresh": 0.6, "high_thresh": 0.5}, "must not exceed high_thresh"),
        ({"min_hits": 0}, "greater than or equal to 1"),
        ({"max_tracks": 0}, "greater than or equal to 1"),
        ({"type": "sort"}, "bytetrack"),
        ({"bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_tracker_config_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrackerConfig.model_validate(fields)


def test_iou_and_assignment() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 101, 101]], dtype=np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[1].max() == 0.0
    matches, free_rows, free_cols = assign(1 - iou, iou > 0.1)
    assert matches.tolist() == [[0, 0]]
    assert free_rows.tolist() == [1]
    assert free_cols.tolist() == [1, 2]
    empty, rows, cols = assign(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool))
    assert empty.shape == (0, 2)
    assert rows.size == 0
    assert cols.tolist() == [0, 1, 2]


def test_empty_frames_are_fine() -> None:
    tracker = ByteTracker()
    for i in range(5):
        assert len(tracker.update(Detections.empty(), i / FPS)) == 0


@pytest.mark.parametrize(
    ("class_match", "tracks"),
    [("vote", {1}), ("strict", {1, 2})],
)
def test_same_box_as_car_and_truck_is_one_track(class_match: str, tracks: set[int]) -> None:
    """Per-class NMS lets one vehicle through as a car and a truck: vote mode tracks it once."""
    tracker = ByteTracker(TrackerConfig(class_match=class_match))  # type: ignore[arg-type]
    frames = []
    for i in range(20):
        b = box(80 + 6 * i, 200, w=90, h=70)
        jittered = [b[0] + 2, b[1] - 1, b[2] + 1, b[3] + 2]
        frames.append(dets((b, 0.8, CAR), (jittered, 0.55 + 0.01 * (i % 3), TRUCK)))
    outs = run(tracker, frames)
    assert {int(t) for o in outs for t in o.tracker_id} == tracks


@pytest.mark.parametrize(("iou_limit", "tracks"), [(0.7, 1), (0.95, 2)])
def test_duplicate_of_live_track_starts_nothing(iou_limit: float, tracks: int) -> None:
    """A second box over an already tracked object (IoU ~0.8) appears later."""
    tracker = ByteTracker(TrackerConfig(duplicate_iou=iou_limit, min_hits=1))
    for i in range(10):
        b = box(100 + 5 * i, 200, w=80, h=80)
        extra = [(box(100 + 5 * i + 5, 200, w=80, h=80), 0.6, TRUCK)] if i >= 5 else []
        tracker.update(dets((b, 0.9, CAR), *extra), i / FPS)
    assert tracker.live_tracks == tracks


def test_overlapping_different_objects_still_tracked() -> None:
    """A rider (person) over a motorcycle overlaps it far less than a duplicate does."""
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    moto = [100.0, 160.0, 160.0, 260.0]
    rider = [105.0, 110.0, 155.0, 210.0]
    out = tracker.update(dets((moto, 0.8, 3), (rider, 0.8, PERSON)), 0.0)
    assert sorted(out.tracker_id.tolist()) == [1, 2]


def test_clock_jump_back_ends_old_tracks() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1, max_age_s=1.0))
    tracker.update(dets((box(100, 100), 0.9, CAR)), 1000.0)
    tracker.update(Detections.empty(), 1000.5)
    assert tracker.live_tracks == 1
    # The clock is set back an hour: the old track would never age out otherwise.
    out = tracker.update(dets((box(400, 300), 0.9, CAR)), -2600.0)
    assert out.tracker_id.tolist() == [2]
    assert tracker.live_tracks == 1
    tracker.update(Detections.empty(), -2598.0)
    assert tracker.live_tracks == 0


def passing(occlusion: str, speed: float, frames: int = 40) -> list[Detections]:
    """Two walkers (40x100 px boxes) pass each other in opposite directions at x = 200.

    While they overlap the detector sees ``occlusion``: ``"none"`` (both boxes),
    ``"front"`` (only the walker going left, in front) or ``"merged"`` (one box around
    both).
    """
    out = []
    for i in range(frames):
        left = 200 - speed * (frames / 2) + speed * i  # walks right
        right = 200 + speed * (frames / 2) - speed * i  # walks left
        a, b = box(left, 300, 40, 100), box(right, 300, 40, 100)
        if abs(left - right) < 30 and occlusion == "front":
            out.append(dets((b, 0.8, PERSON)))
        elif abs(left - right) < 30 and occlusion == "merged":
            xyxy = [min(a[0], b[0]), a[1], max(a[2], b[2]), a[3]]
            out.append(dets((xyxy, 0.8, PERSON)))
        else:
            out.append(dets((a, 0.8, PERSON), (b, 0.8, PERSON)))
    return out


@pytest.mark.parametrize("occlusion", ["none", "front", "merged"])
@pytest.mark.parametrize("speed", [3.0, 8.0])
def test_walkers_passing_in_opposite_directions_keep_their_ids(
    occlusion: str, speed: float
) -> None:
    """A track is not handed the box of someone walking the other way (a reversal)."""
    tracker = ByteTracker(TrackerConfig())
    frames = passing(occlusion, speed)
    outs = run(tracker, frames)
    start, end = 200 - speed * 20, 200 + speed * 20
    first, last = outs[5], outs[-1]
    assert len(first) == 2
    assert len(last) == 2
    assert id_near(first, start + speed * 5) == id_near(last, end - speed)  # went right
    assert id_near(first, end - speed * 5) == id_near(last, start + speed)  # went left


def walk_then(step: float, last: list[float]) -> list[Detections]:
    """One 80x100 px walker moving ``step`` px per frame for 12 frames, then boxes at the
    given offsets from its last position (in the direction of travel when ``step > 0``)."""
    xs = [100 + step * i for i in range(12)]
    frames = [dets((box(x, 300, 80, 100), 0.9, PERSON)) for x in xs]
    frames.append(dets(*((box(xs[-1] + d, 300, 80, 100), 0.9, PERSON) for d in last)))
    return frames


@pytest.mark.parametrize(
    ("step", "offset", "same_id"),
    [
        (6.0, 6.0, True),  # on its way
        (6.0, -20.0, True),  # a quarter of a width back: box jitter
        (6.0, -48.0, False),  # 0.6 widths back: someone else
        (-6.0, 48.0, False),  # the same, walking the other way
        (0.0, -48.0, True),  # a standing object has no heading: anything near is it
    ],
)
def test_reversal_gate(step: float, offset: float, same_id: bool) -> None:
    """A moving track does not take a box well behind where it was last seen."""
    tracker = ByteTracker(TrackerConfig(match_iou=0.05))
    outs = run(tracker, walk_then(step, [offset]))
    assert len(outs[-1]) == (1 if same_id else 0)  # a new track is tentative at first
    if same_id:
        assert int(outs[-1].tracker_id[0]) == int(outs[-2].tracker_id[0])


@pytest.mark.parametrize(
    ("step", "behind", "ahead", "taken"),
    [
        (6.0, -10.0, 24.0, "ahead"),  # the box nearer the prediction is behind: reversing costs
        (-6.0, 10.0, -24.0, "ahead"),
        (0.0, -10.0, 24.0, "behind"),  # standing: simply the nearer box
    ],
)
def test_reversal_penalty(step: float, behind: float, ahead: float, taken: str) -> None:
    """Of two boxes near a moving track, the one on its way wins over a nearer one behind."""
    tracker = ByteTracker(TrackerConfig())
    outs = run(tracker, walk_then(step, [behind, ahead]))
    last_x = 100 + step * 11
    expected = last_x + (ahead if taken == "ahead" else behind)
    out = outs[-1]
    assert len(out) == 1  # the other box starts a tentative track
    assert float((out.xyxy[0, 0] + out.xyxy[0, 2]) / 2) == pytest.approx(expected)


def walkers_passing_with_a_merged_box() -> list[Detections]:
    """Two 18x57 px walkers on two rows 27 px apart pass each other at x = 318.

    As they meet, the far walker's box swallows part of the near one for a frame (the
    detector sees one tall box), then the far one is seen only in part and lags behind.
    Measured on the demo road: this is how people passing on a sidewalk swapped ids.
    """
    out = []
    for i in range(40):
        xf, xn = 278 + 2.0 * i, 358 - 2.0 * i  # far walks right, near walks left
        far, near = [xf - 9, 260, xf + 9, 317], [xn - 9, 286, xn + 9, 344]
        if i == 20:
            out.append(dets(([xf - 10, 266, xf + 10, 331], 0.94, PERSON), (near, 0.79, PERSON)))
        elif i == 21:
            out.append(
                dets(
                    ([xn - 8, 274, xn + 10, 341], 0.9, PERSON),
                    ([xf - 11, 261, xf + 7, 315], 0.54, PERSON),
                )
            )
        else:
            out.append(dets((far, 0.9, PERSON), (near, 0.9, PERSON)))
    return out


def test_one_merged_box_does_not_turn_the_heading() -> None:
    """The heading follows the smoothed path of the boxes, not a one-frame Kalman jerk.

    The tall merged box pulls the far walker's Kalman velocity down for a frame; a heading
    taken from that velocity called the far walker's next box "behind" and gave it to the
    near walker's track (both walkers then swapped ids right on the counting line).
    """
    outs = run(ByteTracker(TrackerConfig()), walkers_passing_with_a_merged_box())

    def by_id(out: Detections) -> dict[int, int]:
        return {int(t): round(float(b[3])) for t, b in zip(out.tracker_id, out.xyxy, strict=True)}

    assert by_id(outs[10]) == by_id(outs[-1]) == {1: 317, 2: 344}
