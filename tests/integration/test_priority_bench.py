"""``gateway bench priority`` runs end to end and reports every latency (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


def test_bench_priority_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "priority", "--backlog", "2000", "--alerts", "2", "--rounds", "1"]
    assert main([*args, "--fifo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in result["rounds"]] == ["empty", "backlog", "fifo"]
    for mode, count in (("empty", 2), ("backlog", 2), ("fifo", 1)):
        assert result["summary"][mode]["n"] == count
    backlog = next(r for r in result["rounds"] if r["mode"] == "backlog")
    assert all(q > 1000 for q in backlog["queued_at_alert"])  # raised while queued
    assert all(w >= 32 for w in backlog["bulk_window_at_alert"])
    assert result["ratio_backlog_to_empty"] > 0
    assert result["load_1m"]["start"] >= 0


def test_bench_priority_bad_option() -> None:
    assert main(["bench", "priority", "--backlog", "5"]) == 2
