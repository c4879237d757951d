"""The crossing-by-crossing scorer and ``gateway score``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.errors import UsageError
from gateway.vision.analytics.score import (
    CrossingRecord,
    Tally,
    read_records,
    score,
    write_records,
)

L2R, R2L = "left_to_right", "right_to_left"


def rec(t: float, direction: str = L2R, label: str = "car", **kw: int) -> CrossingRecord:
    return CrossingRecord(line_id="l", direction=direction, label=label, t=t, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counted", "truth", "tp_fp_fn"),
    [
        ([rec(1.0)], [rec(1.4)], (1, 0, 0)),
        ([rec(1.0)], [rec(2.6)], (0, 1, 1)),  # beyond the 1.5 s tolerance
        # A miss and a false count do not cancel out: totals agree, the score does not.
        ([rec(1.0), rec(9.0)], [rec(1.1), rec(5.0)], (1, 1, 1)),
        # Two counts of one crossing: one of them is false.
        ([rec(1.0), rec(1.2)], [rec(1.1)], (1, 1, 0)),
        # Optimal, not greedy: 1.0 -> 0.2 would leave 2.0 unmatched.
        ([rec(1.0), rec(2.0)], [rec(0.2), rec(1.1)], (2, 0, 0)),
        # The other direction is never a match (its count is false there).
        ([rec(1.0, R2L)], [rec(1.0, L2R)], (0, 0, 1)),
        # Known object ids must agree.
        ([rec(1.0, object_id=3)], [rec(1.0, object_id=4)], (0, 1, 1)),
        ([rec(1.0, object_id=3)], [rec(1.2, object_id=3)], (1, 0, 0)),
        ([rec(1.0)], [rec(1.2, object_id=3)], (1, 0, 0)),  # unknown on one side: time only
        ([], [], (0, 0, 0)),
    ],
)
def test_matching(
    counted: list[CrossingRecord], truth: list[CrossingRecord], tp_fp_fn: tuple[int, int, int]
) -> None:
    result = score(counted, truth)
    got = result.by_direction.get(("l", L2R), Tally())
    assert (got.tp, got.fp, got.fn) == tp_fp_fn
    assert len(result.false_counts) == sum(t.fp for t in result.by_direction.values())
    assert len(result.misses) == sum(t.fn for t in result.by_direction.values())


def test_class_rows_and_rates() -> None:
    counted = [rec(1.0, label="truck"), rec(5.0), rec(9.0)]
    truth = [rec(1.0), rec(5.0), rec(20.0)]
    result = score(counted, truth)
    direction = result.by_direction[("l", L2R)]
    assert (direction.tp, direction.fp, direction.fn) == (2, 1, 1)
    assert direction.precision == pytest.approx(2 / 3)
    assert direction.recall == pytest.approx(2 / 3)
    car = result.by_class[("l", L2R, "car")]
    truck = result.by_class[("l", L2R, "truck")]
    assert (car.tp, car.fp, car.fn) == (1, 1, 2)  # the truck count is no car match
    assert (truck.tp, truck.fp, truck.fn) == (0, 1, 0)
    assert result.worst() == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert "precision" in result.table()
    assert result.as_dict()["rows"][0]["label"] == "*"


def test_records_round_trip(tmp_path: Path) -> None:
    rows = [rec(1.25, frame=12, track_id=3), rec(2.0, R2L, "person", object_id=9)]
    path = tmp_path / "c.jsonl"
    assert write_records(path, rows) == 2
    assert read_records(path) == rows
    assert "object_id" not in path.read_text().splitlines()[0]  # unknown fields left out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"line_id": "l", "direction": "up", "label": "car", "t": 1}', "direction"),
        ('{"line_id": "l", "direction": "left_to_right", "label": "car"}', "'t'"),
        ('{"line_id": "", "direction": "left_to_right", "label": "car", "t": 1}', "string"),
        ('{"line_id": "l", "direction": "left_to_right", "label": "car", "t": "x"}', "float"),
        ('{"line_id": "l", "direction": "left_to_right", "label": "car", "t": NaN}', "finite"),
        (
            '{"line_id": "l", "direction": "left_to_right", "class": "car", "t": 1, "frame": 1.5}',
            "integer",
        ),
        ("[1, 2]", "not an object"),
        ("{not json", "Expecting"),
    ],
)
def test_bad_records_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("# a comment\n\n" + text + "\n")
    with pytest.raises(UsageError, match=rf"bad.jsonl:3: .*{message}"):
        read_records(path)


def test_simulator_truth_lines_read(tmp_path: Path) -> None:
    # The simulator's --truth file names the class "class" and has an object id.
    path = tmp_path / "truth.jsonl"
    path.write_text(
        json.dumps(
            {
                "object_id": 4,
                "class": "bus",
                "line_id": "mid",
                "direction": L2R,
                "t": 1.5,
                "frame": 15,
            }
        )
        + "\n"
    )
    (record,) = read_records(path)
    assert (record.label, record.object_id, record.frame) == ("bus", 4, 15)


def test_score_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counted, truth = tmp_path / "c.jsonl", tmp_path / "t.jsonl"
    write_records(counted, [rec(1.0), rec(4.0)])
    write_records(truth, [rec(1.1)])
    assert main(["score", str(counted), str(truth)]) == 0
    out = capsys.readouterr().out
    assert "false count" in out
    assert main(["score", str(counted), str(truth), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"][0]["precision"] == 0.5
    assert main(["score", str(counted), str(truth), "--min-precision", "0.9"]) == 1
    assert "worst precision 0.500" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.jsonl"), str(truth)]) == 2
    assert "cannot read crossings" in capsys.readouterr().err
