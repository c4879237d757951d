"""A short fixed-seed fault campaign through the real CLI: every fault, nothing unexplained.

``gateway bench chaos`` runs three units (synthetic events, one with a stepped wall
clock, one with the simulated camera), Mosquitto with the generated ACL, two ingest
workers and VictoriaMetrics, injects every kind of fault, and reconciles. Longer runs
and their figures are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.bench.chaos.plan import KINDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_campaign_with_every_fault_reconciles_with_nothing_unexplained(
    tmp_path: Path,
) -> None:
    work = tmp_path / "campaign"
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "chaos", "--minutes", "1.5", "--seed", "3",
         "--rate", "15", "--keep", str(work), "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["problems"] == [], done.stderr[-3000:]
    assert done.returncode == 0
    root = os.geteuid() == 0
    expected = set(KINDS) if root else set(KINDS) - {"disk_full"}
    assert set(result["faults_played"]) == expected
    assert result["disk_fault"] is root
    totals = result["totals"]
    assert totals["unexplained"] == 0
    assert totals["produced"] > 1000
    assert (
        totals["stored"]
        + totals["dead_lettered"]
        + totals["waiting_in_outbox"]
        + (totals["missing"])
        == totals["produced"]
    )
    assert all(u["produced"] > 0 and u["stored"] > 0 for u in result["units"])
    assert not result["processes"]["unexpected_exits"]
    assert set(result["processes"]["exit_codes_at_stop"].values()) == {0}
    hostile = result["hostile"]
    assert (
        hostile["poison_acknowledged"]
        == hostile["poison_dead_lettered"] + (hostile["poison_lost_in_broker_faults"])
    )
    assert set(hostile["forged_answers"]) <= {"reason 135", "no answer"}
