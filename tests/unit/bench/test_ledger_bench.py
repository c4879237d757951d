"""``gateway bench ledger`` runs and reports both sides next to their baselines."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


def test_bench_ledger_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "ledger", "--events", "1000", "--rounds", "1", "--hours", "0.1", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["outbox_cpu_median_us"]) == {"raw", "ledger"}
    assert out["outbox_cpu_ratio"] > 0
    assert out["reconcile_receipts"] == 300 * 20  # one 300 s manifest of 20 events/s
    assert {"load_start", "load_end"} <= out.keys()
