"""End-to-end counting accuracy against the simulator's exact ground truth (offline, seeded)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from gateway.demo.accuracy import AccuracyReport, measure

ROOT = Path(__file__).resolve().parents[2]


VEHICLES = ("bicycle", "bus", "car", "motorcycle", "truck")


@pytest.mark.slow
def test_day_counts_against_ground_truth() -> None:
    # 90 s of seeded day traffic, every frame through the live pipeline. Measured
    # (docs/demo.md): vehicles 56 of 57, people 37 of 36, all 93 of 93, matched error
    # 4.3 %. Bounds with a margin of about one object: vehicles within 5 %, people within
    # 6 % (2 of 36), all within 4 %, matched error within 7 %.
    report = measure(90.0, seed=11, condition="day")
    truth, counted = report.by_label(report.truth), report.by_label(report.counted)
    assert sum(truth.values()) >= 80, "too little traffic to judge"
    t_veh, c_veh = sum(truth[k] for k in VEHICLES), sum(counted[k] for k in VEHICLES)
    assert abs(c_veh - t_veh) <= 0.05 * t_veh, report.as_dict()
    assert abs(counted["person"] - truth["person"]) <= 0.06 * truth["person"], report.as_dict()
    t_all, c_all = sum(truth.values()), sum(counted.values())
    assert abs(c_all - t_all) <= 0.04 * t_all, report.as_dict()
    assert report.matched_error <= 0.07, report.as_dict()


def test_report_arithmetic() -> None:
    truth = Counter(
        {
            ("l", "left_to_right", "car"): 10,
            ("l", "right_to_left", "car"): 10,
            ("l", "left_to_right", "person"): 5,
        }
    )
    counted = Counter(
        {
            ("l", "left_to_right", "car"): 11,
            ("l", "right_to_left", "car"): 9,
            ("l", "left_to_right", "person"): 5,
            ("l", "left_to_right", "truck"): 1,
        }
    )
    report = AccuracyReport(10.0, 100, 1.0, counted, truth)
    rows = {label: (t, c, e) for label, t, c, e in report.rows()}
    assert rows["car"] == (20, 20, 0.0)
    assert rows["truck"][:2] == (0, 1)
    assert rows["all"] == (25, 26, pytest.approx(0.04))
    assert report.matched_error == pytest.approx(3 / 25)


def test_accuracy_command_json() -> None:
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "gateway"),
            "demo",
            "--accuracy",
            "--seconds",
            "10",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["seconds"] == 10.0
    assert out["frames"] >= 100
    assert "all" in out["by_label"]
    # Recall over the crossings the detector saw, next to the raw recall, per line and
    # direction; the unseen misses are listed (with their boxes), never dropped.
    crossings = out["crossings"]
    unseen = [(r["line_id"], r["direction"]) for r in crossings["unseen"]]
    missed = [(r["line_id"], r["direction"]) for r in crossings["misses"]]
    assert all("boxes" in r for r in crossings["misses"])
    for row in crossings["rows"]:
        if row["label"] != "*":
            continue
        key = (row["line"], row["direction"])
        assert row["fn"] == missed.count(key)
        assert row["fn_unseen"] == unseen.count(key) <= row["fn"]
        assert row["recall_seen"] >= row["recall"]
