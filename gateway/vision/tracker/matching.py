"""One-to-one assignment for data association (box overlap: :mod:`gateway.vision.boxes`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

F64 = NDArray[np.float64]
Idx = NDArray[np.int64]

INFEASIBLE = 1e6


def assign(cost: F64, feasible: NDArray[np.bool_]) -> tuple[Idx, Idx, Idx]:
    """Minimum-cost one-to-one matching restricted to feasible pairs.

    Returns ``(matches (K, 2) of row/col indices, unmatched rows, unmatched cols)``.
    """
    n, m = cost.shape
    if n == 0 or m == 0 or not feasible.any():
        empty = np.empty((0, 2), dtype=np.int64)
        return empty, np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    rows, cols = linear_sum_assignment(np.where(feasible, cost, INFEASIBLE))
    ok = feasible[rows, cols]
    matches = np.stack([rows[ok], cols[ok]], axis=1).astype(np.int64)
    free_rows = np.setdiff1d(np.arange(n), matches[:, 0]).astype(np.int64)
    free_cols = np.setdiff1d(np.arange(m), matches[:, 1]).astype(np.int64)
    return matches, free_rows, free_cols
