"""Score counted line crossings against ground truth, crossing by crossing.

Totals hide errors: a false count and a miss cancel out. :func:`score` matches each
counted crossing to at most one true crossing of the same line and direction, within
``tolerance_s`` of it (and, when both sides know the object, of the same object), with
an optimal assignment that prefers the nearest in time. Matched pairs are true
positives; the rest of the counted ones are false counts, the rest of the truth misses.
Precision and recall come per line and direction (any class: did we count the right
crossings?) and per line, direction and class (the class must match too).

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
from gateway.vision.tracker.matching import assign

DEFAULT_TOLERANCE_S = 1.5


@dataclass(frozen=True, slots=True)
class CrossingRecord:
    """One line crossing: counted by the pipeline or true (simulator, hand-made).

    ``t`` is seconds since the start of the clip (media time). ``track_id`` is the
    tracker's id (counted rows); ``object_id`` the object's identity when known (the
    simulator's actor id; for counted rows, the actor the track was on then).
    """

    line_id: str
    direction: str
    label: str
    t: float
    frame: int | None = None
    track_id: int | None = None
    object_id: int | None = None


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

    def rows(self) -> list[tuple[str, str, str, Tally]]:
        """``(line, direction, label or '*', tally)`` sorted, direction rows first."""
        out = [(ln, d, "*", t) for (ln, d), t in sorted(self.by_direction.items())]
        out += [(ln, d, c, t) for (ln, d, c), t in sorted(self.by_class.items())]
        return out

    def worst(self) -> tuple[float, float]:
        """Lowest precision and lowest recall over the direction rows."""
        tallies = list(self.by_direction.values()) or [Tally()]
        return min(t.precision for t in tallies), min(t.recall for t in tallies)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly: one entry per row, plus the unmatched crossings."""
        return {
            "rows": [
                {
                    "line": ln,
                    "direction": d,
                    "label": c,
                    "tp": t.tp,
                    "fp": t.fp,
                    "fn": t.fn,
                    "precision": round(t.precision, 4),
                    "recall": round(t.recall, 4),
                }
                for ln, d, c, t in self.rows()
            ],
            "false_counts": [asdict(r) for r in self.false_counts],
            "misses": [asdict(r) for r in self.misses],
        }

    def table(self) -> str:
        """A plain-text table of the rows."""
        lines = [
            f"{'line':<8}{'direction':<15}{'class':<12}{'tp':>4}{'fp':>4}{'fn':>4}"
            f"{'precision':>11}{'recall':>8}"
        ]
        for ln, d, c, t in self.rows():
            lines.append(
                f"{ln:<8}{d:<15}{c:<12}{t.tp:>4}{t.fp:>4}{t.fn:>4}"
                f"{t.precision:>11.3f}{t.recall:>8.3f}"
            )
        return "\n".join(lines)


def score(
    counted: Sequence[CrossingRecord],
    truth: Sequence[CrossingRecord],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> Score:
    """Match counted crossings to true ones; see the module docstring."""
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
            row = {k: v for k, v in asdict(record).items() if v is not None}
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            n += 1
    return n


def read_records(path: Path) -> list[CrossingRecord]:
    """Read JSON-lines crossing records; a clear :class:`UsageError` on a bad file.

    Each line is an object with ``line_id``, ``direction``, ``label`` (or ``class``, as
    the simulator writes it) and ``t`` (seconds); ``frame``, ``track_id`` and
    ``object_id`` are optional. Blank lines and lines starting with ``#`` are skipped.
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
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{path}:{n}: not a crossing record ({exc})") from None
        if not np.isfinite(record.t):
            raise UsageError(f"{path}:{n}: not a crossing record (t must be finite)")
        out.append(record)
    return out


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
