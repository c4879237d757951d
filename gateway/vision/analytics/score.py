"""Score counted line crossings against ground truth, crossing by crossing.

Totals hide errors: a false count and a miss cancel out. :func:`score` matches each
counted crossing to at most one true crossing of the same line and direction, within
``tolerance_s`` of it (and, when both sides know the object, of the same object), with
an optimal assignment that prefers the nearest in time. Matched pairs are true
positives; the rest of the counted ones are false counts, the rest of the truth misses.
Precision and recall come per line and direction (any class: did we count the right
crossings?) and per line, direction and class (the class must match too).

With the run's raw detections (:mod:`gateway.vision.analytics.sight`), each miss is also
classified: *unseen* when no raw detection of its class matched the object around its
crossing (the detector never saw it there: no counting rule could count it). Recall
over the seen crossings is reported next to the raw recall; unseen misses are listed,
never dropped.

Both sides are :class:`CrossingRecord` rows, read from and written to JSON lines by
:func:`read_records` and :func:`write_records` (``gateway count --crossings``,
``gateway demo --accuracy --crossings``, the simulator's ``--truth``, hand-made files).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gateway.errors import UsageError
from gateway.vision.analytics.sight import DetectionFrame, parse_box, unseen
from gateway.vision.tracker.matching import assign

DEFAULT_TOLERANCE_S = 1.5


@dataclass(frozen=True, slots=True)
class CrossingRecord:
    """One line crossing: counted by the pipeline or true (simulator, hand-made).

    ``t`` is seconds since the start of the clip (media time). ``track_id`` is the
    tracker's id (counted rows); ``object_id`` the object's identity when known (the
    simulator's actor id; for counted rows, the actor the track was on then). ``boxes``
    (true rows) are the object's box in some frames around its crossing, each
    ``(frame, x1, y1, x2, y2)`` in pixels: the evidence :func:`score` tests raw detections
    against to tell an unseen object from a counting miss.
    """

    line_id: str
    direction: str
    label: str
    t: float
    frame: int | None = None
    track_id: int | None = None
    object_id: int | None = None
    boxes: tuple[tuple[int, float, float, float, float], ...] | None = None


@dataclass(slots=True)
class Tally:
    """True positives, false counts and misses of one group."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        """Share of counted crossings that are real (1.0 when nothing was counted)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of real crossings that were counted (1.0 when there were none)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass(slots=True)
class Score:
    """Tallies per ``(line, direction)`` and per ``(line, direction, label)``."""

    by_direction: dict[tuple[str, str], Tally] = field(default_factory=dict)
    by_class: dict[tuple[str, str, str], Tally] = field(default_factory=dict)
    false_counts: list[CrossingRecord] = field(default_factory=list)  # any class
    misses: list[CrossingRecord] = field(default_factory=list)  # any class
    # With raw detections: the misses no raw detection matched (a subset of ``misses``).
    unseen: list[CrossingRecord] | None = None

    def seen(self, key: tuple[str, ...]) -> Tally:
        """A row's tally with its unseen misses left out (equal to it without detections)."""
        tally = self.by_direction[key] if len(key) == 2 else self.by_class[key]  # type: ignore[index]
        if self.unseen is None:
            return tally
        n = sum(1 for r in self.unseen if (r.line_id, r.direction, r.label)[: len(key)] == key)
        return Tally(tally.tp, tally.fp, tally.fn - n)

    def rows(self) -> list[tuple[str, str, str, Tally]]:
        """``(line, direction, label or '*', tally)`` sorted, direction rows first."""
        out = [(ln, d, "*", t) for (ln, d), t in sorted(self.by_direction.items())]
        out += [(ln, d, c, t) for (ln, d, c), t in sorted(self.by_class.items())]
        return out

    def worst(self, *, seen: bool = False) -> tuple[float, float]:
        """Lowest precision and lowest recall over the direction rows (seen crossings)."""
        tallies = [self.seen(k) if seen else t for k, t in self.by_direction.items()]
        tallies = tallies or [Tally()]
        return min(t.precision for t in tallies), min(t.recall for t in tallies)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly: one entry per row, plus the unmatched crossings."""
        rows: list[dict[str, object]] = []
        for ln, d, c, t in self.rows():
            row: dict[str, object] = {
                "line": ln,
                "direction": d,
                "label": c,
                "tp": t.tp,
                "fp": t.fp,
                "fn": t.fn,
                "precision": round(t.precision, 4),
                "recall": round(t.recall, 4),
            }
            if self.unseen is not None:
                s = self.seen((ln, d) if c == "*" else (ln, d, c))
                row["fn_unseen"] = t.fn - s.fn
                row["recall_seen"] = round(s.recall, 4)
            rows.append(row)
        out: dict[str, object] = {
            "rows": rows,
            "false_counts": [_plain(r) for r in self.false_counts],
            "misses": [_plain(r) for r in self.misses],
        }
        if self.unseen is not None:
            out["unseen"] = [_plain(r) for r in self.unseen]
        return out

    def table(self) -> str:
        """A plain-text table of the rows."""
        sight = self.unseen is not None
        head = f"{'line':<8}{'direction':<15}{'class':<12}{'tp':>4}{'fp':>4}{'fn':>4}"
        head += f"{'precision':>11}{'recall':>8}"
        lines = [head + (f"{'unseen':>8}{'seen recall':>13}" if sight else "")]
        for ln, d, c, t in self.rows():
            text = (
                f"{ln:<8}{d:<15}{c:<12}{t.tp:>4}{t.fp:>4}{t.fn:>4}"
                f"{t.precision:>11.3f}{t.recall:>8.3f}"
            )
            if sight:
                s = self.seen((ln, d) if c == "*" else (ln, d, c))
                text += f"{t.fn - s.fn:>8}{s.recall:>13.3f}"
            lines.append(text)
        return "\n".join(lines)


def score(
    counted: Sequence[CrossingRecord],
    truth: Sequence[CrossingRecord],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    detections: dict[int, DetectionFrame] | None = None,
) -> Score:
    """Match counted crossings to true ones; see the module docstring.

    With ``detections`` (the run's raw detector output by frame), the misses are also
    classified (:attr:`Score.unseen`).
    """
    result = Score()
    keys = {(r.line_id, r.direction) for r in (*counted, *truth)}
    for key in sorted(keys):
        c = [r for r in counted if (r.line_id, r.direction) == key]
        t = [r for r in truth if (r.line_id, r.direction) == key]
        pairs = _match(c, t, tolerance_s, same_label=False)
        result.by_direction[key] = Tally(len(pairs), len(c) - len(pairs), len(t) - len(pairs))
        used_c = {i for i, _ in pairs}
        used_t = {j for _, j in pairs}
        result.false_counts += [r for i, r in enumerate(c) if i not in used_c]
        result.misses += [r for j, r in enumerate(t) if j not in used_t]
        for label in sorted({r.label for r in (*c, *t)}):
            cl = [r for r in c if r.label == label]
            tl = [r for r in t if r.label == label]
            n = len(_match(cl, tl, tolerance_s, same_label=True))
            result.by_class[(*key, label)] = Tally(n, len(cl) - n, len(tl) - n)
    if detections is not None:
        result.unseen = unseen(result.misses, truth, detections, tolerance_s)
    return result


def _match(
    counted: Sequence[CrossingRecord],
    truth: Sequence[CrossingRecord],
    tolerance_s: float,
    *,
    same_label: bool,
) -> list[tuple[int, int]]:
    """Optimal one-to-one pairs ``(counted index, truth index)`` within the tolerance."""
    if not counted or not truth:
        return []
    dt = np.abs(np.array([r.t for r in counted])[:, None] - np.array([r.t for r in truth])[None])
    feasible = dt <= tolerance_s
    for i, c in enumerate(counted):
        for j, t in enumerate(truth):
            other = c.object_id is not None and t.object_id is not None
            if (other and c.object_id != t.object_id) or (same_label and c.label != t.label):
                feasible[i, j] = False
    # A small penalty for another class keeps same-class pairs first when times tie.
    labels = np.array([[c.label != t.label for t in truth] for c in counted], dtype=float)
    pairs, _, _ = assign(dt / max(tolerance_s, 1e-9) + 0.01 * labels, feasible)
    return [(int(i), int(j)) for i, j in pairs]


def write_records(path: Path, records: Iterable[CrossingRecord]) -> int:
    """Write records as JSON lines (fields left out when unknown); the number written."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            row = _plain(record)
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            n += 1
    return n


def read_records(path: Path) -> list[CrossingRecord]:
    """Read JSON-lines crossing records; a clear :class:`UsageError` on a bad file.

    Each line is an object with ``line_id``, ``direction``, ``label`` (or ``class``, as
    the simulator writes it) and ``t`` (seconds); ``frame``, ``track_id``,
    ``object_id`` and ``boxes`` are optional. Blank lines and lines starting with ``#`` are skipped.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read crossings: {exc.strerror or exc}") from None
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError("not an object")
            label = row.get("label", row.get("class"))
            record = CrossingRecord(
                line_id=_text(row["line_id"]),
                direction=_direction(row["direction"]),
                label=_text(label),
                t=float(row["t"]),
                frame=_int(row.get("frame")),
                track_id=_int(row.get("track_id")),
                object_id=_int(row.get("object_id")),
                boxes=_boxes(row.get("boxes")),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{path}:{n}: not a crossing record ({exc})") from None
        if not np.isfinite(record.t):
            raise UsageError(f"{path}:{n}: not a crossing record (t must be finite)")
        out.append(record)
    return out


def _plain(record: CrossingRecord) -> dict[str, object]:
    """A record as a JSON object, fields left out when unknown."""
    row = {k: v for k, v in asdict(record).items() if v is not None}
    if record.boxes is not None:
        row["boxes"] = [list(b) for b in record.boxes]
    return row


def _boxes(value: object) -> tuple[tuple[int, float, float, float, float], ...] | None:
    """``[[frame, x1, y1, x2, y2], ...]`` (pixels) or None."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"boxes must be a list of [frame, x1, y1, x2, y2], got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, list) or len(item) != 5:
            raise TypeError(f"a box is [frame, x1, y1, x2, y2], got {item!r}")
        frame = _int(item[0])
        assert frame is not None
        out.append((frame, *parse_box(item[1:])))
    return tuple(out)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a non-empty string, got {value!r}")
    return value


def _direction(value: object) -> str:
    if value not in ("left_to_right", "right_to_left"):
        raise ValueError(f"direction {value!r} is not left_to_right or right_to_left")
    return str(value)


def _int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
