"""``gateway bench flow`` on a short run: every measure compared, the cost figures there."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway.bench.flow import command


@pytest.mark.slow
def test_short_flow_bench_prints_errors_and_costs() -> None:
    args = [
        "--seconds",
        "25",
        "--interval",
        "10",
        "--scenario",
        "queueing-lane",
        "--rounds",
        "2",
        "--json",
    ]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # logs go to stderr
    (acc,) = out["accuracy"]
    assert acc["intervals"] == 2
    assert {"volume", "occupancy", "queue_max_m", "movement"} <= set(acc["measures"])
    assert acc["measures"]["volume"]["mean_abs"] <= 0.5
    engine = out["cost"]["engine_ms_per_frame"]
    assert len(engine["baseline"]) == len(engine["with_flow"]) == 2
    assert out["cost"]["drift_check_ms"]["n"] > 0
    assert "load" in out["load_before"]


def test_bad_options_are_refused() -> None:
    result = CliRunner().invoke(command, ["--seconds", "5"])
    assert result.exit_code == 2
    assert "--seconds" in result.output
