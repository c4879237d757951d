"""``gateway bench ledger-read`` fills both databases, audits with both readers, reports."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main

# The bench starts VictoriaMetrics and InfluxDB and two audit processes (~10 s).
pytestmark = [pytest.mark.needs_db, pytest.mark.slow]


def test_bench_ledger_read_reports_both_readers(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "ledger-read", "--units", "1", "--hours", "0.1", "--interval-s", "60"]
    assert main([*args, "--rounds", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["receipts"] == 6 * 60 * 20  # six 60 s manifests of 20 events/s
    assert set(out["readers"]) == {"victoriametrics", "influxql"}
    for figures in out["readers"].values():
        (run,) = figures["audit"]
        assert run["complete"] == 1 and run["stored"] == out["receipts"]
        assert run["rss_mb"] > 0 and figures["download_mb"] > 0
    assert {"load_start", "load_end"} <= out.keys()
