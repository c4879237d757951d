"""Whether the detector saw an object at its crossing: raw detection logs and the test.

A missed true crossing is a counting error only where the detector saw the object: a
motorcycle the model never boxes, a car behind a bus, two people boxed as one are the
detector's (or the camera's) misses, which no counting rule can recover. To tell them
apart mechanically, a run writes the raw detector output (before tracking) of every
frame as a :class:`DetectionFrame` per JSON line (``gateway count --detections``,
``gateway demo --accuracy --crossings``), and a true crossing may carry ``boxes``: the
object's box in some frames around its crossing (the simulator writes its exact visible
box in every frame within :data:`SEEN_WINDOW_S`; hand-made truth has a few boxes drawn
by looking at the frames).

:func:`unseen` calls a true crossing *unseen* when in none of its boxed frames a raw
detection of its class matches it: IoU at least :data:`SEEN_IOU` (the PASCAL VOC
criterion), one detection per object. Within a frame, the detections of a class are
assigned one-to-one (optimal assignment on IoU, the counted crossings' objects first) to
all the true objects boxed in that frame, so one box around two people is one seen person
(the one counted, if either was) and one unseen; for hand-made truth, where which of two
people side by side was counted is not known, see :func:`unseen`. A true crossing
with an empty box list was hidden in every frame of its window (unseen); one without
``boxes`` at all is never called unseen: without evidence it stays a miss.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from gateway.errors import UsageError
from gateway.vision.boxes import box_iou
from gateway.vision.tracker.matching import assign

if TYPE_CHECKING:
    from gateway.vision.detections import Detections


class TrueCrossing(Protocol):
    """What the sight test reads of a true crossing (``score.CrossingRecord`` has it)."""

    @property
    def line_id(self) -> str:
        """The line crossed."""
        ...

    @property
    def direction(self) -> str:
        """The direction it was crossed in."""
        ...

    @property
    def label(self) -> str:
        """The object's class."""
        ...

    @property
    def t(self) -> float:
        """Seconds since the start of the clip."""
        ...

    @property
    def object_id(self) -> int | None:
        """The object's identity, when known."""
        ...

    @property
    def boxes(self) -> tuple[tuple[int, float, float, float, float], ...] | None:
        """``(frame, x1, y1, x2, y2)`` of the object around its crossing."""
        ...


R = TypeVar("R", bound=TrueCrossing)

SEEN_IOU = 0.5
# The simulator boxes each crossing object in the frames this close to its crossing.
SEEN_WINDOW_S = 0.5

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class DetectionFrame:
    """The raw detections of one frame: labels, corner boxes in pixels and scores."""

    frame: int
    t: float
    labels: tuple[str, ...]
    xyxy: tuple[Box, ...]
    scores: tuple[float, ...] = ()  # empty when unknown (files written without them)

    @classmethod
    def of(cls, frame: int, t: float, dets: Detections, labels: Sequence[str]) -> DetectionFrame:
        """From a :class:`Detections` and the model's label names."""
        names = tuple(labels[c] if 0 <= c < len(labels) else str(c) for c in dets.class_id.tolist())
        boxes = tuple(
            (round(a, 1), round(b, 1), round(c, 1), round(d, 1))
            for a, b, c, d in dets.xyxy.tolist()
        )
        scores = tuple(round(v, 3) for v in dets.score.tolist())
        return cls(frame, round(t, 4), names, boxes, scores)


def write_detections(path: Path, frames: Iterable[DetectionFrame]) -> int:
    """Write detection frames as JSON lines; the number written."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for f in frames:
            row = {
                "frame": f.frame,
                "t": f.t,
                "labels": list(f.labels),
                "xyxy": f.xyxy,
                "scores": f.scores,
            }
            fh.write(json.dumps(row) + "\n")
            n += 1
    return n


def read_detections(path: Path) -> dict[int, DetectionFrame]:
    """Detection frames by frame index; a clear :class:`UsageError` on a bad file.

    Blank lines and ``#`` comment lines (a header saying where the boxes came from) are
    skipped, as in the crossing logs.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read detections: {exc.strerror or exc}") from None
    out: dict[int, DetectionFrame] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(raw)
            if not isinstance(row, dict):
                raise TypeError("not an object")
            labels = tuple(str(x) for x in row["labels"])
            boxes = tuple(parse_box(b) for b in row["xyxy"])
            scores = tuple(float(x) for x in row.get("scores", ()))
            if len(labels) != len(boxes) or len(scores) not in (0, len(boxes)):
                raise ValueError(
                    f"{len(labels)} labels, {len(scores)} scores for {len(boxes)} boxes"
                )
            frame = row["frame"]
            if isinstance(frame, bool) or not isinstance(frame, int):
                raise TypeError(f"frame must be an integer, got {frame!r}")
            out[frame] = DetectionFrame(frame, float(row["t"]), labels, boxes, scores)
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{path}:{n}: not a detection frame ({exc})") from None
    return out


def parse_box(value: object) -> Box:
    """``[x1, y1, x2, y2]`` (finite numbers, x2 >= x1, y2 >= y1) as a tuple."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2], got {value!r}")
    x1, y1, x2, y2 = (float(v) for v in value)
    if not np.isfinite([x1, y1, x2, y2]).all() or x2 < x1 or y2 < y1:
        raise ValueError(f"a box is [x1, y1, x2, y2] with x1 <= x2, y1 <= y2, got {value!r}")
    return (x1, y1, x2, y2)


def unseen(
    misses: Sequence[R],
    truth: Sequence[R],
    detections: dict[int, DetectionFrame],
    tolerance_s: float,
    iou: float = SEEN_IOU,
) -> list[R]:
    """The ``misses`` (rows of ``truth``) that no raw detection matched in any boxed frame.

    A frame missing from ``detections`` had no detections. True crossings of one line,
    direction and class within ``tolerance_s`` of each other, of objects not known apart
    (no object id on one of them), are *interchangeable*: which of two people crossing
    side by side was the counted one is not known. For each group of them, as many of
    its misses are seen as, at most in one frame, its members the detector boxed apart
    less its counted members boxed in that frame (those were seen: a track needs boxes).
    """
    index = {id(r): i for i, r in enumerate(truth)}
    missed = {index[id(r)] for r in misses if id(r) in index}
    matched = _matched_per_frame(truth, detections, missed, iou)
    group = _groups(truth, tolerance_s)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(group):
        members[g].append(i)
    seen: set[int] = set()
    for rows in members.values():
        wanted = [i for i in rows if i in missed and truth[i].boxes is not None]
        if not wanted:
            continue
        mine = set(rows)
        # Per frame: members matched, less the counted members boxed in that frame.
        n = max(
            (len(m & mine) - len((b & mine) - missed) for b, m in matched),
            default=0,
        )
        frames = {i: sum(1 for _, m in matched if i in m) for i in wanted}
        seen.update(sorted(wanted, key=lambda i: -frames[i])[: max(n, 0)])
    return [
        r for r in misses if r.boxes is not None and id(r) in index and index[id(r)] not in seen
    ]


def _matched_per_frame(
    truth: Sequence[TrueCrossing],
    detections: dict[int, DetectionFrame],
    missed: set[int],
    iou: float,
) -> list[tuple[set[int], set[int]]]:
    """Per boxed frame, the truth rows boxed in it and the ones matched.

    Matched: a raw detection of their class was assigned to them.
    """
    boxed: dict[int, list[tuple[int, Box]]] = defaultdict(list)  # frame -> (truth row, box)
    for i, record in enumerate(truth):
        for frame, *box in record.boxes or ():
            boxed[frame].append((i, (box[0], box[1], box[2], box[3])))
    out = []
    for frame, objects in boxed.items():
        dets = detections.get(frame)
        got: set[int] = set()
        for label in {truth[i].label for i, _ in objects} if dets is not None else ():
            assert dets is not None
            rows = [(i, b) for i, b in objects if truth[i].label == label]
            mine = [b for lab, b in zip(dets.labels, dets.xyxy, strict=True) if lab == label]
            if not mine:
                continue
            overlap = box_iou(np.array([b for _, b in rows]), np.array(mine))
            # Counted crossings first: a box that two objects share went to the counted one.
            later = np.array([[2.0 if i in missed else 0.0] for i, _ in rows])
            pairs, _, _ = assign(1.0 - overlap + later, overlap >= iou)
            got.update(rows[r][0] for r, _ in pairs)
        out.append(({i for i, _ in objects}, got))
    return out


def _groups(truth: Sequence[TrueCrossing], tolerance_s: float) -> list[int]:
    """A group number per truth row: rows joined when interchangeable (see :func:`unseen`)."""
    parent = list(range(len(truth)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(truth)), key=lambda i: truth[i].t)
    for a, i in enumerate(order):
        for j in order[a + 1 :]:
            r, q = truth[i], truth[j]
            if q.t - r.t > tolerance_s:
                break
            same = (r.line_id, r.direction, r.label) == (q.line_id, q.direction, q.label)
            if same and (r.object_id is None or q.object_id is None):
                parent[root(j)] = root(i)
    return [root(i) for i in range(len(truth))]
