"""``gateway bench priority`` runs end to end and reports every latency (no timing asserted)."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
    assert all(w >= 1 for w in backlog["bulk_window_at_alert"])
    assert result["ratio_backlog_to_empty"] > 0
    assert result["load_1m"]["start"] >= 0


def test_bench_priority_bad_option() -> None:
    assert main(["bench", "priority", "--backlog", "5"]) == 2


def test_bench_priority_trace_stamps_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "priority", "--backlog", "2000", "--alerts", "2", "--rounds", "1"]
    assert main([*args, "--trace", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"].startswith("verdict: ")
    assert isinstance(result["target_met"], bool)
    for mode in ("empty", "backlog"):
        entry = next(r for r in result["rounds"] if r["mode"] == mode)
        assert len(entry["trace"]) == 2
        for alert in entry["trace"]:
            stamps = alert["stamps"]
            # every stage stamped, none before the emit
            assert set(stamps) == {"emit", "stored", "fetched", "published", "written", "arrived"}
            assert all(stamps[k] >= stamps["emit"] for k in stamps)
        assert set(result["trace"][mode]["stage_median_ms"]) == {
            "stored",
            "fetched",
            "published",
            "written",
            "arrived",
        }


def test_bench_priority_link_rate_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    args = ["bench", "priority", "--backlog", "2000", "--rounds", "1", "--link-rate", "2mbit"]
    assert main(args) == 2
    assert "--link-rate needs root" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_bench_priority_on_a_shaped_uplink(capfd: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "priority", "--backlog", "2000", "--alerts", "2", "--rounds", "1"]
    args += ["--link-rate", "4mbit", "--raise-every", "200", "--json"]
    assert main(args) == 0
    result = json.loads(capfd.readouterr().out)  # printed by the bench inside the namespace
    assert result["link_rate"] == "4mbit"
    assert result["summary"]["backlog"]["n"] == 2
    assert "tbf" in result["link_qdisc"]
    assert not Path(f"/run/netns/gw-bench-{os.getpid()}").exists()  # the namespace is gone
