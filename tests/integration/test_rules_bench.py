"""``gateway bench rules``: a short fixed-seed run prints both latencies as JSON."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run_cli


@pytest.mark.slow
def test_short_run_reports_write_and_event_latency_with_load() -> None:
    proc = run_cli(
        "gateway",
        "bench",
        "rules",
        "--rounds",
        "1",
        "--seconds",
        "8",
        "--seed",
        "9",
        "--json",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "rules" and out["cores"] >= 1
    baseline, rules = out["rounds"]
    assert baseline["rules"] is False and rules["rules"] is True  # interleaved A B
    for row in (baseline, rules):
        assert row["frames"] > 0 and row["event_p99_ms"] is not None
        assert row["load_1m_before"] >= 0 and row["load_1m_after"] >= 0
    assert baseline["switch_on_writes"] == 0
    assert rules["switch_on_writes"] > 0 and rules["failed"] == 0
    assert rules["write_p50_ms"] > 0 and rules["device_p50_ms"] is not None
    summary = out["summary"]
    assert {"baseline", "rules", "write_minus_event_p99_ms", "target_met"} <= set(summary)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--rounds", "0"], "--rounds"), (["--seconds", "1"], "--seconds")],
)
def test_bad_options(args: list[str], message: str) -> None:
    proc = run_cli("gateway", "bench", "rules", *args)
    assert proc.returncode == 2 and message in proc.stderr
