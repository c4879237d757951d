"""``gateway bench held`` runs end to end: every mode stores the scene, only ``held`` writes rows.

Counts, not timings: what each mode stores and how many of its steps wrote rows hold on
any machine.
"""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


def test_bench_held_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "held", "--hours", "0.1", "--rounds", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    runs = {mode: rounds[0] for mode, rounds in result["per_round"].items()}
    assert set(runs) == {"raw", "full", "memory", "held"}
    events = result["events"]
    assert events == result["crossings"] + result["readings"] + runs["held"]["stored"] > 0
    assert runs["raw"]["stored"] == runs["full"]["stored"] == events  # nothing held at full
    # 0.1 h: no summary closes (900 s): what the degraded modes store are the aggregates
    assert runs["memory"]["stored"] == runs["held"]["stored"] < events / 10
    assert runs["raw"]["writes"] == runs["full"]["writes"] == runs["memory"]["writes"] == 0
    assert runs["held"]["writes"] == events  # each held event, aggregate or summary: a row
    assert result["gate_alone_at_full_cpu_us_per_event"] > 0
