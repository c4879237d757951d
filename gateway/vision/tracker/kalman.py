"""Constant-velocity Kalman filters for many boxes at once, as numpy arrays.

Each row is one box with the state ``cx, cy, w, h, vcx, vcy, vw, vh`` in pixels
and pixels per second. Time steps are real seconds, so a skipped frame is just
a longer step. Noise scales with the box height, as in SORT and ByteTrack.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

F64 = NDArray[np.float64]

# Measurement noise: standard deviation as a fraction of the box height.
MEAS_STD = 0.05
# Process noise per sqrt(second): position and velocity, as fractions of the height.
PROC_POS_STD = 0.1
PROC_VEL_STD = 1.0
# Initial velocity uncertainty, in box heights per second.
INIT_VEL_STD = 4.0

_H = np.hstack([np.eye(4), np.zeros((4, 4))])


def _diag(values: F64) -> F64:
    """``(N, K)`` to ``(N, K, K)`` diagonal matrices."""
    n, k = values.shape
    out = np.zeros((n, k, k))
    idx = np.arange(k)
    out[:, idx, idx] = values
    return out


class KalmanBank:
    """``N`` independent filters stored as ``mean (N, 8)`` and ``cov (N, 8, 8)``."""

    def __init__(self) -> None:
        self.mean: F64 = np.empty((0, 8))
        self.cov: F64 = np.empty((0, 8, 8))

    def __len__(self) -> int:
        return len(self.mean)

    def add(self, boxes_xyxy: NDArray[np.floating]) -> None:
        """Start one filter per box, at rest with an uncertain velocity."""
        z = xyxy_to_cxcywh(boxes_xyxy)
        if not len(z):
            return
        h = np.maximum(z[:, 3:4], 1.0)
        mean = np.hstack([z, np.zeros_like(z)])
        std = np.hstack(
            [np.repeat(2 * MEAS_STD * h, 4, axis=1), np.repeat(INIT_VEL_STD * h, 4, axis=1)]
        )
        self.mean = np.vstack([self.mean, mean])
        self.cov = np.concatenate([self.cov, _diag(std**2)])

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Drop the filters whose mask entry is False."""
        self.mean = self.mean[mask]
        self.cov = self.cov[mask]

    def predict(self, dt: float) -> None:
        """Advance every filter by ``dt`` seconds."""
        if not len(self.mean) or dt <= 0:
            return
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * dt
        h = np.maximum(self.mean[:, 3:4], 1.0)
        q_std = np.hstack(
            [np.repeat(PROC_POS_STD * h, 4, axis=1), np.repeat(PROC_VEL_STD * h, 4, axis=1)]
        )
        self.mean = self.mean @ f.T
        self.cov = f @ self.cov @ f.T + _diag(q_std**2 * dt)

    def update(self, rows: NDArray[np.integer], boxes_xyxy: NDArray[np.floating]) -> None:
        """Correct the filters at ``rows`` with the measured boxes (same order)."""
        if not len(rows):
            return
        z = xyxy_to_cxcywh(boxes_xyxy)
        mean = self.mean[rows]
        cov = self.cov[rows]
        r_std = MEAS_STD * np.maximum(mean[:, 3:4], 1.0)
        s = cov[:, :4, :4] + _diag(np.repeat(r_std, 4, axis=1) ** 2)
        # K = P H^T S^-1; with P and S symmetric, K^T = S^-1 (H P).
        gain = np.linalg.solve(s, cov[:, :4, :]).transpose(0, 2, 1)
        innovation = z - mean @ _H.T
        self.mean[rows] = mean + np.einsum("nij,nj->ni", gain, innovation)
        self.cov[rows] = cov - gain @ cov[:, :4, :]

    def boxes_xyxy(self) -> F64:
        """Return the current box estimates as ``(N, 4)`` corners."""
        return cxcywh_to_xyxy(self.mean[:, :4], min_size=1.0)
