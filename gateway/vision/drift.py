"""Camera-shift detection: whether the view has moved since the reference was taken.

Every ``interval_s`` one frame is compared with the camera's reference keyframe
(:mod:`gateway.vision.reference`), both grey at ``work_width`` pixels, contrast-equalised
(CLAHE, so day, dusk and headlights compare alike) and lightly blurred (rain streaks and
sensor noise). ORB features of the two are matched (Hamming distance, Lowe's ratio test)
and a similarity transform (rotation, uniform scale, translation) is fitted with RANSAC
(``cv2.estimateAffinePartial2D``): vehicles and people are outliers that move
differently from the background, and the reference is the median of several frames
taken a second apart, so passing traffic is not part of it.

The transform is applied to every point the analytics relies on (line ends, zone
corners, speed calibration points, flow polygons; the frame corners when nothing is
configured) and the largest displacement, in full-frame pixels, is the shift. The view
has *moved* when the shift exceeds ``max_shift_px`` or the rotation ``max_rotation_deg``;
after ``confirm`` consecutive checks that agree, one ``calibration_drift`` alert is
raised. It is raised again only after the view has been back (shift and rotation under
half the thresholds) for ``confirm`` checks, or after a new reference was taken. A check
with too few matches (view blocked, lens covered, night without lights) is
*inconclusive*: counted, and neither moved nor back.

The reference is taken at set-up: when the store has none, or it belongs to another
geometry config (re-drawing lines or zones, or changing ``drift.reference_epoch``,
means someone looked at the current view) or to another frame size.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.config.drift import DriftConfig
from gateway.config.vision import CameraConfig
from gateway.vision.analytics.geometry import to_pixels
from gateway.vision.analytics.types import Alert
from gateway.vision.reference import Reference, ReferenceStore, geometry_fingerprint

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]
MIN_MATCHES = 25  # good matches needed for a conclusive check
MIN_INLIERS = 15
RANSAC_PX = 3.0  # at the working width
RATIO = 0.8
ORB_FEATURES = 1000


def geometry_points(camera: CameraConfig, frame_size: tuple[int, int]) -> F64:
    """Every configured point in pixels (the frame corners when nothing is configured)."""
    pts: list[tuple[float, float]] = []
    for line in camera.lines:
        pts += line.points
    for zone in camera.zones:
        pts += zone.points
    if camera.speed is not None:
        pts += camera.speed.image_points
    if camera.flow is not None:
        for lane in camera.flow.lanes:
            for poly in (lane.area, lane.presence):
                pts += poly or []
            if lane.queue is not None:
                pts += lane.queue.area or []
                for zone_points in lane.queue.zones or []:
                    pts += zone_points
    if not pts:
        pts = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    return to_pixels(pts, frame_size)


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One comparison with the reference."""

    timestamp: float
    conclusive: bool
    shift_px: float = 0.0  # largest displacement of a configured point, full-frame pixels
    dx_px: float = 0.0  # translation of the frame centre
    dy_px: float = 0.0
    rotation_deg: float = 0.0
    scale: float = 1.0
    matches: int = 0
    inliers: int = 0


@dataclass(slots=True)
class DriftStats:
    """Counters of one camera's drift detector (bounded)."""

    checks: int = 0
    inconclusive: int = 0
    references_taken: int = 0
    alerts: int = 0
    last: DriftCheck | None = None

    def as_dict(self) -> dict[str, float | int]:
        """Numbers for health reports."""
        out: dict[str, float | int] = {
            "drift_checks": self.checks,
            "drift_inconclusive": self.inconclusive,
            "drift_alerts": self.alerts,
        }
        if self.last is not None and self.last.conclusive:
            out["drift_shift_px"] = round(self.last.shift_px, 1)
            out["drift_rotation_deg"] = round(self.last.rotation_deg, 2)
        return out


def _prepare(image: NDArray[np.uint8], width: int) -> NDArray[np.uint8]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    size = (width, max(1, round(h * width / w)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return np.asarray(cv2.GaussianBlur(clahe.apply(small), (3, 3), 0), dtype=np.uint8)


@dataclass(slots=True)
class _Features:
    points: F64
    descriptors: NDArray[np.uint8] | None


def _features(orb: Any, image: NDArray[np.uint8]) -> _Features:
    keypoints, descriptors = orb.detectAndCompute(image, None)
    pts = np.array([k.pt for k in keypoints], dtype=np.float64).reshape(-1, 2)
    return _Features(pts, descriptors)


@dataclass(slots=True)
class _Collecting:
    frames: list[NDArray[np.uint8]] = field(default_factory=list)
    next_ts: float = 0.0


class DriftDetector:
    """Compares one camera's view with its reference at a low rate."""

    def __init__(
        self,
        camera: CameraConfig,
        store: ReferenceStore,
        frame_size: tuple[int, int],
    ) -> None:
        """Set up for frames of ``frame_size``; the reference is loaded or taken on the way."""
        self.camera = camera
        self.cfg: DriftConfig = camera.drift
        self.store = store
        self.frame_size = frame_size
        self.fingerprint = geometry_fingerprint(camera)
        self.points = geometry_points(camera, frame_size)
        self.stats = DriftStats()
        self._orb = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._reference: Reference | None = None
        self._ref_features: _Features | None = None
        self._collecting: _Collecting | None = None
        self._next_check = -math.inf
        self._moved_streak = 0
        self._back_streak = 0
        self._alerted = False
        self._load()

    @property
    def reference(self) -> Reference | None:
        """The reference in use (None while it is being taken)."""
        return self._reference

    def _load(self) -> None:
        ref = self.store.load()
        if (
            ref is not None
            and ref.fingerprint == self.fingerprint
            and ref.frame_size == self.frame_size
        ):
            self._use(ref)
            return
        if ref is not None:
            log.info(
                "camera %s: the view's geometry or size changed since the reference was taken: "
                "taking a new reference",
                self.camera.id,
            )
        self._collecting = _Collecting()

    def _use(self, ref: Reference) -> None:
        self._reference = ref
        self._ref_features = _features(self._orb, ref.image)
        self._moved_streak = self._back_streak = 0
        self._alerted = False

    def _clock_check(self, timestamp: float) -> None:
        """A clock set back (time sync) must not postpone the next check by the step."""
        if self._collecting is not None:
            if self._collecting.next_ts - timestamp > self.cfg.reference_every_s:
                self._collecting.next_ts = timestamp
        elif self._next_check - timestamp > self.cfg.interval_s:
            self._next_check = timestamp

    def wants_frame(self, timestamp: float) -> bool:
        """Whether :meth:`update` would look at a frame taken at ``timestamp``."""
        if self._collecting is not None:
            return timestamp >= self._collecting.next_ts
        return timestamp >= self._next_check

    def update(self, image: NDArray[np.uint8], timestamp: float) -> list[Alert]:
        """Feed a frame (cheap unless a check or a reference frame is due)."""
        self._clock_check(timestamp)
        if self._collecting is not None:
            self._collect(image, timestamp)
            return []
        if timestamp < self._next_check:
            return []
        self._next_check = timestamp + self.cfg.interval_s
        check = self.check(image, timestamp)
        return self._decide(check)

    def _collect(self, image: NDArray[np.uint8], timestamp: float) -> None:
        state = self._collecting
        assert state is not None
        if timestamp < state.next_ts:
            return
        state.frames.append(_prepare(image, self.cfg.work_width))
        state.next_ts = timestamp + self.cfg.reference_every_s
        if len(state.frames) < self.cfg.reference_frames:
            return
        median = np.median(np.stack(state.frames), axis=0).astype(np.uint8)
        ref = Reference(median, self.fingerprint, self.frame_size, timestamp)
        try:
            self.store.save(ref)
        except (OSError, ValueError) as exc:  # still used; taken again after a restart
            self.store.errors += 1
            log.warning("camera %s: cannot store the reference view: %s", self.camera.id, exc)
        self.stats.references_taken += 1
        log.info("camera %s: reference view taken for camera-shift detection", self.camera.id)
        self._collecting = None
        self._use(ref)
        self._next_check = timestamp + self.cfg.interval_s

    def check(self, image: NDArray[np.uint8], timestamp: float) -> DriftCheck:
        """Compare ``image`` with the reference (the transform and the shift of the geometry)."""
        if self._ref_features is None:
            return DriftCheck(timestamp, conclusive=False)  # no reference yet
        self.stats.checks += 1
        current = _features(self._orb, _prepare(image, self.cfg.work_width))
        ref = self._ref_features
        check = DriftCheck(timestamp, conclusive=False)
        if ref.descriptors is None or current.descriptors is None or len(current.points) < 2:
            return self._inconclusive(check)
        pairs = self._matcher.knnMatch(ref.descriptors, current.descriptors, k=2)
        good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
        if len(good) < MIN_MATCHES:
            return self._inconclusive(DriftCheck(timestamp, False, matches=len(good)))
        src = ref.points[[m.queryIdx for m in good]].astype(np.float32)
        dst = current.points[[m.trainIdx for m in good]].astype(np.float32)
        matrix, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000
        )
        n_in = 0 if inliers is None else int(inliers.sum())
        if matrix is None or n_in < MIN_INLIERS:
            return self._inconclusive(DriftCheck(timestamp, False, matches=len(good), inliers=n_in))
        scale_to_work = self.cfg.work_width / self.frame_size[0]
        work_pts = self.points * scale_to_work
        moved = work_pts @ matrix[:, :2].T + matrix[:, 2]
        shift = float(np.hypot(*(moved - work_pts).T).max()) / scale_to_work
        centre = np.array(self.frame_size, dtype=np.float64) / 2 * scale_to_work
        c_moved = matrix[:, :2] @ centre + matrix[:, 2]
        dx, dy = (c_moved - centre) / scale_to_work
        result = DriftCheck(
            timestamp,
            conclusive=True,
            shift_px=shift,
            dx_px=float(dx),
            dy_px=float(dy),
            rotation_deg=math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])),
            scale=float(math.hypot(matrix[0, 0], matrix[1, 0])),
            matches=len(good),
            inliers=n_in,
        )
        self.stats.last = result
        return result

    def _inconclusive(self, check: DriftCheck) -> DriftCheck:
        self.stats.inconclusive += 1
        self.stats.last = check
        return check

    def _decide(self, check: DriftCheck) -> list[Alert]:
        if not check.conclusive:
            return []
        cfg = self.cfg
        moved = check.shift_px > cfg.max_shift_px or abs(check.rotation_deg) > cfg.max_rotation_deg
        back = (
            check.shift_px < cfg.max_shift_px / 2
            and abs(check.rotation_deg) < cfg.max_rotation_deg / 2
        )
        self._moved_streak = self._moved_streak + 1 if moved else 0
        self._back_streak = self._back_streak + 1 if back else 0
        if self._alerted and self._back_streak >= cfg.confirm:
            self._alerted = False
            log.info("camera %s: the view is back where the reference was taken", self.camera.id)
        if self._alerted or self._moved_streak < cfg.confirm:
            return []
        self._alerted = True
        self.stats.alerts += 1
        log.warning(
            "camera %s: the camera has moved (%.1f px, %.2f deg): lines, zones and speed "
            "calibration no longer match the view",
            self.camera.id,
            check.shift_px,
            check.rotation_deg,
        )
        return [
            Alert(
                camera_id=self.camera.id,
                kind="calibration_drift",
                timestamp=check.timestamp,
                details={
                    "shift_px": round(check.shift_px, 1),
                    "dx_px": round(check.dx_px, 1),
                    "dy_px": round(check.dy_px, 1),
                    "rotation_deg": round(check.rotation_deg, 2),
                    "scale": round(check.scale, 4),
                    "inliers": check.inliers,
                    "max_shift_px": cfg.max_shift_px,
                    "max_rotation_deg": cfg.max_rotation_deg,
                },
            )
        ]
