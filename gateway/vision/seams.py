"""Merging tiled detections across tile seams, before tracking.

A tile sees only its part of an object that straddles a seam: each of two neighbouring
tiles reports a partial box, neither of which overlaps the other enough for NMS, so
the tracker gets two objects (counted twice at a line on the seam), or one half-box whose
visible part "grows" across a line as the object moves into the tile. The whole-frame
pass (``full_frame``) usually sees the object whole but less sharply.
:func:`merge_tiles` merges in three steps:

1. **Stitch** partial boxes across seams. A side of a tile box within ``SEAM_MARGIN_PX``
   of an inner tile edge (one that is not the frame's edge) is cut by the seam. A part
   cut by a seam that lies ``NESTED_SHARE`` inside a box of its class from another tile
   is that box's object (it ends inside the overlap, where the other tile saw it whole)
   and is dropped. Two boxes of one class from different tiles are two parts of one
   object when both are cut on the sides facing each other, they overlap (or touch)
   across the seam, and their extents along it agree (see :func:`_continues`: two people
   side by side or one behind the other are not stitched); the best-aligned part
   across each side is taken, and stitched parts become their union (an object at the
   corner of four tiles is stitched from four).
2. **Reconcile with the whole frame.** A whole-frame box gives way to the tiles when a
   whole tile box (no side cut by a seam) of its class matches it (IoU above ``iou``)
   or contains it (``NESTED_SHARE``): the tile saw the object sharper; or when two or
   more whole tile boxes inside it span ``GROUP_COVER`` of its width: a group (people
   walking together) that the tiles resolved. Otherwise it stands, and the tile boxes
   inside it or matching it give way: parts cut by a seam, or a torso box, are not
   another object.
3. A box still cut by a seam that lies ``PART_SHARE`` inside whole boxes of its class
   is a part of them and is dropped; class-aware NMS removes what is left of
   duplicates in the overlap of two tiles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.vision.boxes import areas, box_iou, intersections
from gateway.vision.detections import Detections
from gateway.vision.nms import nms

Box = tuple[int, int, int, int]
# A box side this close to an inner tile edge (this share of the tile's size, at least
# SEAM_MARGIN_PX) is cut by the seam there: a detector's box of a truncated object
# often stops a few pixels short of the edge.
SEAM_MARGIN_SHARE = 0.03
SEAM_MARGIN_PX = 3.0
# How well two parts across a seam must agree along it (see ``_continues``).
ALIGN_SHARE = 0.6
# A box this share of whose area lies inside another of its class is the same object.
NESTED_SHARE = 0.7
# A box still cut by a seam at the end, this share of whose area lies inside whole boxes
# of its class, is a part of those objects (the tile saw it next to something else).
PART_SHARE = 0.5
# A whole-frame box is a group the tiles resolved when two or more whole tile boxes
# inside it span this share of its width.
GROUP_COVER = 0.7

F64 = NDArray[np.float64]


def seam_cuts(
    xyxy: NDArray[np.floating], tile: Box, frame_size: tuple[int, int]
) -> NDArray[np.bool_]:
    """``(N, 4)`` left, top, right, bottom: which sides of boxes found in ``tile`` a seam cuts."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    tx1, ty1, tx2, ty2 = tile
    fw, fh = frame_size
    mx = max(SEAM_MARGIN_PX, SEAM_MARGIN_SHARE * (tx2 - tx1))
    my = max(SEAM_MARGIN_PX, SEAM_MARGIN_SHARE * (ty2 - ty1))
    inner = (tx1 > 0, ty1 > 0, tx2 < fw, ty2 < fh)
    near = (
        boxes[:, 0] <= tx1 + mx,
        boxes[:, 1] <= ty1 + my,
        boxes[:, 2] >= tx2 - mx,
        boxes[:, 3] >= ty2 - my,
    )
    out: NDArray[np.bool_] = np.stack([n & flag for n, flag in zip(near, inner, strict=True)], 1)
    return out


def merge_tiles(
    parts: Sequence[Detections],
    tiles: Sequence[Box],
    frame_size: tuple[int, int],
    full: Detections | None,
    iou: float,
) -> Detections:
    """One set of detections from per-tile ones (frame pixels) and the whole-frame pass."""
    if not parts:
        return full if full is not None else Detections.empty()
    stitched, cut = _stitch(parts, tiles, frame_size)
    if full is not None and len(full):
        stitched, cut = _reconcile(stitched, cut, full, iou)
    return nms(_drop_parts(stitched, cut), iou, class_aware=True)


def _drop_parts(dets: Detections, cut: NDArray[np.bool_]) -> Detections:
    """Drop boxes still cut by a seam that lie ``PART_SHARE`` inside whole ones."""
    if not cut.any():
        return dets
    boxes = dets.xyxy.astype(np.float64)
    share = intersections(boxes, boxes) / np.maximum(areas(boxes), 1e-9)[:, None]
    same = (dets.class_id[:, None] == dets.class_id[None, :]) & ~cut[None, :]
    np.fill_diagonal(same, False)
    # (the sum over whole boxes: a part seen across two neighbours is covered by both)
    part = cut & ((share * same).sum(axis=1) >= PART_SHARE)
    return dets[~part]


def _stitch(
    parts: Sequence[Detections], tiles: Sequence[Box], frame_size: tuple[int, int]
) -> tuple[Detections, NDArray[np.bool_]]:
    """Union the parts of objects cut by seams; the boxes and whether each is still cut."""
    dets = Detections.concat(list(parts))
    n = len(dets)
    if n == 0:
        return dets, np.zeros(n, dtype=bool)
    tile_of = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    cuts = np.concatenate(
        [seam_cuts(p.xyxy, tiles[k], frame_size) for k, p in enumerate(parts)], axis=0
    )
    boxes = dets.xyxy.astype(np.float64)
    area = areas(boxes)
    inside = intersections(boxes, boxes) / np.maximum(area, 1e-9)[:, None]
    same_class = dets.class_id[:, None] == dets.class_id[None, :]
    other = (tile_of[:, None] != tile_of[None, :]) & same_class
    # A part cut by a seam that lies inside a box the neighbouring tile saw whole (the
    # object ends inside the overlap of the two tiles), or inside a box of its own tile
    # cut by the same seams (a wheel boxed apart from its bicycle): the larger box
    # stands for it.
    same_cuts = (cuts[:, None, :] == cuts[None, :, :]).all(axis=2) & ~other & same_class
    np.fill_diagonal(same_cuts, False)
    larger = area[None, :] >= area[:, None]
    is_cut = np.asarray(cuts.any(axis=1), dtype=bool)
    holder = (other & ~is_cut[None, :]) | same_cuts
    nested = is_cut & ((inside >= NESTED_SHARE) & larger & holder).any(axis=1)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = [
        (align, i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if other[i, j]
        and not nested[i]
        and not nested[j]
        and (align := _continues(boxes[i], cuts[i], boxes[j], cuts[j])) > 0
    ]
    used: set[tuple[int, int]] = set()
    for _, i, j in sorted(pairs, reverse=True):
        # one continuation per side: the best-aligned part across each seam
        si, sj = _facing(boxes[i], boxes[j]), _facing(boxes[j], boxes[i])
        if (i, si) in used or (j, sj) in used:
            continue
        used |= {(i, si), (j, sj)}
        parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for k in np.flatnonzero(~nested).tolist():
        groups.setdefault(find(k), []).append(k)
    rows, out_cut = [], []
    for members in groups.values():
        b = boxes[members]
        union = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
        best = max(members, key=lambda k: float(dets.score[k]))
        rows.append((union, float(dets.score[members].max()), int(dets.class_id[best])))
        out_cut.append(len(members) == 1 and bool(cuts[members[0]].any()))
    merged = Detections.from_arrays(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    )
    return merged, np.asarray(out_cut, dtype=bool)


def _facing(a: F64, b: F64) -> int:
    """Which side of ``a`` faces ``b`` (0 left, 1 top, 2 right, 3 bottom), by centres."""
    dx = float(b[0] + b[2] - a[0] - a[2]) / 2
    dy = float(b[1] + b[3] - a[1] - a[3]) / 2
    if abs(dx) >= abs(dy):
        return 2 if dx > 0 else 0
    return 3 if dy > 0 else 1


def _continues(a: F64, cut_a: NDArray[np.bool_], b: F64, cut_b: NDArray[np.bool_]) -> float:
    """How well ``b`` continues ``a`` across a seam (0: it does not).

    Both are cut on the sides facing each other, they overlap across the seam, and their
    extents along it agree: across a vertical seam the two parts of one object have its
    top and bottom (IoU of the y extents at least ``ALIGN_SHARE``: a person behind
    another is shorter); across a horizontal one the shorter x extent lies mostly within
    the other (a person's torso is narrower than their stride). The IoU of the extents
    ranks the candidates.
    """
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    side = _facing(a, b)
    if not (cut_a[side] and cut_b[(side + 2) % 4]):
        return 0.0
    if side in (0, 2):  # a vertical seam: they meet along x, agree along y
        meet = min(ax2, bx2) - max(ax1, bx1)
        both = min(ay2, by2) - max(ay1, by1)
        iou = both / max(max(ay2, by2) - min(ay1, by1), 1e-9)
        ok = iou >= ALIGN_SHARE
    else:
        meet = min(ay2, by2) - max(ay1, by1)
        both = min(ax2, bx2) - max(ax1, bx1)
        iou = both / max(max(ax2, bx2) - min(ax1, bx1), 1e-9)
        ok = both / max(min(ax2 - ax1, bx2 - bx1), 1e-9) >= ALIGN_SHARE
    return iou if ok and iou > 0 and meet >= -SEAM_MARGIN_PX else 0.0


def _reconcile(
    tiled: Detections, cut: NDArray[np.bool_], full: Detections, iou: float
) -> tuple[Detections, NDArray[np.bool_]]:
    """Decide, per whole-frame box, between it and the tile boxes of its object."""
    tb = tiled.xyxy.astype(np.float64)
    fb = full.xyxy.astype(np.float64)
    same = full.class_id[:, None] == tiled.class_id[None, :]
    overlap = box_iou(fb, tb, areas(fb), areas(tb)) * same
    inter = intersections(fb, tb) * same
    in_full = inter / np.maximum(areas(tb), 1e-9)[None, :]  # share of each tile box inside
    in_tile = inter / np.maximum(areas(fb), 1e-9)[:, None]  # share of each full box inside
    keep_full = np.ones(len(full), dtype=bool)
    keep_tile = np.ones(len(tiled), dtype=bool)
    for f in range(len(full)):
        alike = np.flatnonzero((overlap[f] > iou) & ~cut)
        around = np.flatnonzero((in_tile[f] >= NESTED_SHARE) & ~cut)
        inside = np.flatnonzero(in_full[f] >= NESTED_SHARE)
        members = [t for t in inside if not cut[t]]
        group = len(members) >= 2 and _covered(fb[f], tb[members]) >= GROUP_COVER
        if len(alike) or len(around) or group:
            keep_full[f] = False  # the tiles saw this object (or these objects) whole
            keep_tile[[t for t in inside if cut[t]]] = False
        else:
            # The tiles saw parts of it (cut by seams, or a torso box): the whole one wins.
            keep_tile[inside] = False
            keep_tile[np.flatnonzero(overlap[f] > iou)] = False
    merged = Detections.concat([tiled[keep_tile], full[keep_full]])
    return merged, np.concatenate([cut[keep_tile], np.zeros(int(keep_full.sum()), dtype=bool)])


def _covered(box: F64, parts: F64) -> float:
    """Share of ``box``'s width covered by the union of ``parts``' x extents."""
    x1, x2 = float(box[0]), float(box[2])
    spans = sorted((max(x1, float(p[0])), min(x2, float(p[2]))) for p in parts)
    covered, end = 0.0, x1
    for lo, hi in spans:
        start = max(lo, end)
        if hi > start:
            covered, end = covered + hi - start, hi
    return covered / max(x2 - x1, 1e-9)
