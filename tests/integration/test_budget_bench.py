"""``gateway bench budget`` runs end to end and reports bytes per hour for every mode.

Bytes are not timings: the orders asserted here hold on any machine (batches compress
what is repeated, the degraded unit sends aggregates and summaries instead of events).
"""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


@pytest.mark.slow
def test_bench_budget_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "budget", "--hours", "0.1", "--rounds", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    per_hour = result["bytes_per_hour"]
    assert set(per_hour) == {"json", "compact", "degraded", "degraded_compact", "negotiated"}
    assert per_hour["negotiated"] < per_hour["json"] / 3  # batches once the declaration came
    assert result["batches"]["negotiated"] > 0
    assert per_hour["compact"] < per_hour["json"] / 3
    assert per_hour["degraded"] < per_hour["json"] / 5
    assert per_hour["degraded_compact"] > 0
    assert result["batches"]["compact"] > 0 and result["batches"]["json"] == 0
    (json_run,) = result["runs"]["json"]
    # Every event on the wire costs at least its payload and topic.
    assert json_run["wire_sent"] > json_run["stored_bytes"]
    assert 0 <= json_run["events_published"] - json_run["events"] <= 2  # + the start health


def test_bench_budget_bad_option() -> None:
    assert main(["bench", "budget", "--hours", "0"]) == 2
