"""A ByteTrack-style multi-object tracker.

Association runs in two stages (Zhang et al., "ByteTrack", 2022): detections at or
above ``high_thresh`` are matched first against every live track, then detections
between ``low_thresh`` and ``high_thresh`` are matched against the tracks that are
still unmatched and were seen on the previous update. Only unmatched high-score
detections start new tracks. A track is tentative until it has ``min_hits``
matches; a tentative track that misses an update is dropped, a confirmed one is
kept as lost for ``max_age_s`` seconds and then ends. Motion is a constant-velocity
Kalman filter over real timestamps, so skipped frames only lengthen the step, and an
update without detections (a skipped frame) is not a miss: it only lets time pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gateway.config.vision import TrackerConfig
from gateway.vision.boxes import box_iou, xyxy_to_cxcywh
from gateway.vision.detections import NO_TRACK, Detections
from gateway.vision.tracker.kalman import KalmanBank
from gateway.vision.tracker.matching import assign

# Added to the cost of a match whose class differs from the track's majority class.
CLASS_PENALTY = 0.25
# A timestamp this many seconds older than the previous one is a clock jump.
CLOCK_JUMP_S = 1.0
# Heading: a track moving at least this fast (box heights per second) after at least
# HEADING_MIN_HITS matches has a direction of travel. The heading is the velocity of the
# matched box centres smoothed over HEADING_TAU_S, not the Kalman velocity: a single
# inflated box (two people merged while one passes behind the other) jerks the Kalman
# velocity sideways for a frame or two, and a heading that turns with it would call the
# track's own object "behind" and hand it to the other one.
HEADING_MIN_SPEED = 0.25
HEADING_MIN_HITS = 5
HEADING_TAU_S = 1.0
# A detection behind the track's last matched box along that direction (a reversal),
# measured in widths of the narrower of the two boxes, costs REVERSE_PENALTY per width
# (up to one) and is no match at all beyond REVERSE_GATE. Objects rarely reverse, so
# where two objects pass each other in opposite directions each keeps its own track.
REVERSE_PENALTY = 1.0
REVERSE_GATE = 0.5


@dataclass(slots=True)
class _Track:
    """Bookkeeping of one track; its motion state is the same row in the Kalman bank."""

    track_id: int
    hits: int
    last_ts: float
    class_id: int
    lost: bool = False
    centre: tuple[float, float] = (0.0, 0.0)  # centre of the last matched box
    width: float = 1.0  # width of the last matched box
    heading: tuple[float, float] = (0.0, 0.0)  # smoothed centre velocity, pixels per second
    votes: dict[int, float] = field(default_factory=dict)
    first: tuple[tuple[float, float, float, float], float] | None = None  # first box, when

    def vote(self, class_id: int, score: float) -> None:
        """Add a score-weighted class vote and update the majority class."""
        self.votes[class_id] = self.votes.get(class_id, 0.0) + max(score, 1e-3)
        self.class_id = max(self.votes, key=self.votes.__getitem__)


class ByteTracker:
    """Two-stage IoU tracker with Kalman motion; see the module docstring."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self._tracks: list[_Track] = []
        self._kf = KalmanBank()
        self._last_ts: float | None = None
        self._next_id = 1
        self.dropped = 0  # detections not tracked because the track cap was full
        # Tracks confirmed by the latest update: id -> their first (tentative) box and
        # when it was seen. Where a track began is where the object was first detected,
        # min_hits updates before it was reported.
        self.births: dict[int, tuple[tuple[float, float, float, float], float]] = {}

    @property
    def live_tracks(self) -> int:
        """Tracks held in memory (tentative, confirmed and lost)."""
        return len(self._tracks)

    def reset(self) -> None:
        """Forget every track.

        Ids keep increasing: a new track never reuses the id of one that analytics may
        still remember (ids are unique for the tracker's lifetime).
        """
        self._tracks = []
        self._kf = KalmanBank()
        self._last_ts = None

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """Associate ``detections`` taken at ``timestamp`` (epoch seconds) with the tracks.

        Returns the detections matched to confirmed tracks, with ``tracker_id`` set and
        ``class_id`` replaced by the track's class. Call with :meth:`Detections.empty`
        on frames that were not run through the detector so tracks still age.
        """
        cfg = self.cfg
        self.births = {}
        if self._last_ts is not None and timestamp < self._last_ts - CLOCK_JUMP_S:
            self.reset()  # the clock went back (e.g. a time sync): old tracks cannot age
        dt = 0.0 if self._last_ts is None else max(0.0, timestamp - self._last_ts)
        self._last_ts = timestamp if self._last_ts is None else max(self._last_ts, timestamp)
        self._kf.predict(dt)

        score = detections.score
        high = np.flatnonzero(score >= cfg.high_thresh)
        low = np.flatnonzero((score >= cfg.low_thresh) & (score < cfg.high_thresh))
        predicted = self._kf.boxes_xyxy()
        det_of_track = np.full(len(self._tracks), -1, dtype=np.int64)

        # Stage 1: high-score detections against every live track.
        all_rows = np.arange(len(self._tracks), dtype=np.int64)
        free_rows, free_high = self._match(
            detections, predicted, all_rows, high, min_iou=cfg.match_iou, det_of_track=det_of_track
        )
        # Stage 2: low-score detections against tracks matched on the previous update
        # that had detections (not lost).
        recent = np.array([r for r in free_rows if not self._tracks[r].lost], dtype=np.int64)
        self._match(
            detections, predicted, recent, low, min_iou=cfg.low_match_iou, det_of_track=det_of_track
        )

        matched = np.flatnonzero(det_of_track >= 0)
        self._kf.update(matched, detections.xyxy[det_of_track[matched]])
        out: list[tuple[int, int, int]] = []  # (detection index, track id, class id)
        for row in matched:
            track = self._tracks[row]
            i = int(det_of_track[row])
            self._hit(track, detections, i, timestamp)
            if track.track_id != NO_TRACK:
                out.append((i, track.track_id, track.class_id))

        self._age(det_of_track, timestamp, informative=bool(len(high) or len(low)))
        for i, track in self._start(detections, free_high, timestamp):
            if track.track_id != NO_TRACK:
                out.append((i, track.track_id, track.class_id))
        return _select(detections, out)

    def _match(
        self,
        detections: Detections,
        predicted: NDArray[np.float64],
        rows: NDArray[np.int64],
        dets: NDArray[np.int64],
        *,
        min_iou: float,
        det_of_track: NDArray[np.int64],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Match ``dets`` to track ``rows``; record matches; return the leftovers of each."""
        if not len(rows) or not len(dets):
            return rows, dets
        iou = box_iou(predicted[rows], detections.xyxy[dets])
        track_cls = np.array([self._tracks[r].class_id for r in rows], dtype=np.int64)
        same = track_cls[:, None] == detections.class_id[dets][None, :]
        feasible = iou >= min_iou
        if self.cfg.class_match == "strict":
            feasible &= same
        cost = 1.0 - iou + np.where(same, 0.0, CLASS_PENALTY)
        back = self._reverse(rows, detections.xyxy[dets])
        feasible &= back <= REVERSE_GATE
        cost += REVERSE_PENALTY * np.minimum(back, 1.0)
        pairs, free_r, free_d = assign(cost, feasible)
        det_of_track[rows[pairs[:, 0]]] = dets[pairs[:, 1]]
        return rows[free_r], dets[free_d]

    def _reverse(self, rows: NDArray[np.int64], boxes: NDArray[np.float32]) -> NDArray[np.float64]:
        """``(len(rows), len(boxes))`` backward offsets of the boxes, in box widths.

        For a track with a heading, how far each box centre lies behind the centre of
        the track's last matched box, measured against the direction of travel in widths
        of the narrower box (a merged box of two passing objects is wide); zero for boxes
        ahead or beside, and for tracks without a heading (new, slow or stopped).
        """
        tracks = [self._tracks[r] for r in rows]
        v = np.array([t.heading for t in tracks], dtype=np.float64).reshape(-1, 2)
        speed = np.hypot(v[:, 0], v[:, 1])
        height = np.maximum(self._kf.mean[rows, 3], 1.0)
        hits = np.array([t.hits for t in tracks], dtype=np.int64)
        heading = (speed >= HEADING_MIN_SPEED * height) & (hits >= HEADING_MIN_HITS)
        unit = v / np.where(speed > 0, speed, 1.0)[:, None]
        z = xyxy_to_cxcywh(boxes)
        centre = np.array([t.centre for t in tracks], dtype=np.float64).reshape(-1, 2)
        width = np.array([t.width for t in tracks], dtype=np.float64)
        along = np.einsum("rdk,rk->rd", z[None, :, :2] - centre[:, None, :], unit)
        narrow = np.maximum(np.minimum(width[:, None], z[None, :, 2]), 1.0)
        out: NDArray[np.float64] = np.where(heading[:, None], np.maximum(-along / narrow, 0.0), 0.0)
        return out

    def _hit(self, track: _Track, detections: Detections, i: int, timestamp: float) -> None:
        """Record a match of ``track`` with detection ``i``; confirm it after ``min_hits``."""
        dt = timestamp - track.last_ts
        track.hits += 1
        track.last_ts = timestamp
        track.lost = False
        track.vote(int(detections.class_id[i]), float(detections.score[i]))
        x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        if dt > 0 and track.hits >= 2:
            seen = ((centre[0] - track.centre[0]) / dt, (centre[1] - track.centre[1]) / dt)
            # The first step sets the heading; later ones move it by their share of the
            # smoothing time.
            a = 1.0 if track.hits == 2 else 1.0 - float(np.exp(-dt / HEADING_TAU_S))
            hx, hy = track.heading
            track.heading = (hx + a * (seen[0] - hx), hy + a * (seen[1] - hy))
        track.centre, track.width = centre, max(x2 - x1, 1.0)
        if track.first is None:
            track.first = ((x1, y1, x2, y2), timestamp)
        if track.track_id == NO_TRACK and (
            track.hits >= self.cfg.min_hits
            or (
                track.hits >= 2
                and self.cfg.confirm_s > 0
                and timestamp - track.first[1] >= self.cfg.confirm_s
            )
        ):
            track.track_id = self._next_id
            self._next_id += 1
            self.births[track.track_id] = track.first

    def _age(self, det_of_track: NDArray[np.int64], timestamp: float, informative: bool) -> None:
        """Age unmatched tracks; every track ends ``max_age_s`` after its last match.

        Only an update that brought usable detections counts as a miss: it marks
        unmatched tracks lost and ends unmatched tentative ones. An update without any
        (a frame the detector skipped) just lets time pass.
        """
        keep = np.ones(len(self._tracks), dtype=bool)
        for row, track in enumerate(self._tracks):
            if det_of_track[row] >= 0:
                continue
            if informative:
                track.lost = True
                if track.track_id == NO_TRACK:
                    keep[row] = False
            if timestamp - track.last_ts > self.cfg.max_age_s:
                keep[row] = False
        self._keep(keep)

    def _keep(self, keep: NDArray[np.bool_]) -> None:
        """Remove the tracks whose ``keep`` entry is False, with their motion state."""
        if keep.all():
            return
        self._tracks = [t for t, k in zip(self._tracks, keep, strict=True) if k]
        self._kf.keep(keep)

    def _start(
        self, detections: Detections, free_high: NDArray[np.int64], timestamp: float
    ) -> list[tuple[int, _Track]]:
        """Start tracks from unmatched high-score detections, best first, within the cap.

        A detection overlapping a live track, or a better new detection, by at least
        ``duplicate_iou`` is a duplicate (the same vehicle reported as both car and
        truck, for instance) and starts nothing; with strict class matching only
        overlaps within the same class count.
        """
        order = free_high[np.argsort(-detections.score[free_high], kind="stable")]
        if not len(order):
            return []
        limit = self.cfg.duplicate_iou
        boxes = detections.xyxy[order]
        live = box_iou(boxes, self._kf.boxes_xyxy())
        fresh = box_iou(boxes, boxes)
        if self.cfg.class_match == "strict":  # other classes are other objects
            cls = detections.class_id[order]
            live *= cls[:, None] == np.array([t.class_id for t in self._tracks], dtype=np.int64)
            fresh *= cls[:, None] == cls[None, :]
        accepted: list[int] = []
        for k in range(len(order)):
            if (live.shape[1] and live[k].max() >= limit) or (
                accepted and fresh[k, accepted].max() >= limit
            ):
                continue
            accepted.append(k)
        started: list[tuple[int, _Track]] = []
        for i in (int(v) for v in order[accepted]):
            if len(self._tracks) >= self.cfg.max_tracks and not self._evict_lost():
                self.dropped += 1
                continue
            self._kf.add(detections.xyxy[i : i + 1])
            track = _Track(
                track_id=NO_TRACK, hits=0, last_ts=timestamp, class_id=int(detections.class_id[i])
            )
            self._tracks.append(track)
            self._hit(track, detections, i, timestamp)
            started.append((i, track))
        return started

    def _evict_lost(self) -> bool:
        """Make room by ending the longest-lost track; False when no track is lost."""
        lost = [r for r, t in enumerate(self._tracks) if t.lost]
        if not lost:
            return False
        keep = np.ones(len(self._tracks), dtype=bool)
        keep[min(lost, key=lambda r: self._tracks[r].last_ts)] = False
        self._keep(keep)
        return True


def _select(detections: Detections, out: list[tuple[int, int, int]]) -> Detections:
    """Pick detections by index (in detection order), setting track ids and classes."""
    if not out:
        return Detections.empty()
    out.sort()
    idx = np.array([o[0] for o in out], dtype=np.int64)
    picked = detections[idx]
    return Detections(
        xyxy=picked.xyxy,
        score=picked.score,
        class_id=np.array([o[2] for o in out], dtype=np.int64),
        tracker_id=np.array([o[1] for o in out], dtype=np.int64),
    )
