"""A short fixed-seed fault campaign through the real CLI: every fault, nothing unexplained.

``gateway bench chaos`` runs three units (synthetic events, one with a stepped wall
clock, one with the simulated camera), Mosquitto with the generated ACL, two ingest
workers and VictoriaMetrics, injects every kind of fault, and reconciles. Longer runs
and their figures are in docs/reliability.md.

One minute of faults (about 75 s in all); seed 556's plan has every kind, a broker
killed and restarted with its store and one stopped and restarted without it (nobody
subscribed: the units must hold), a unit killed inside a write to its outbox (a torn
write), the wall clock stepped 2 days ahead (dead letters),
and a poison burst into a live broker, large enough for the 2 MiB message over its
packet limit.
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
        [sys.executable, "-m", "gateway", "bench", "chaos", "--minutes", "1", "--seed", "556",
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
    torn = [d.get("note") for d in result["faults"] if d.get("torn_write")]
    assert sum(result["processes"]["killed_inside_an_outbox_write"].values()) == 1, torn
    assert set(result["processes"]["exit_codes_at_stop"].values()) == {0}
    hostile = result["hostile"]
    assert (
        hostile["poison_acknowledged"]
        == hostile["poison_dead_lettered"] + (hostile["poison_lost_in_broker_faults"])
    )
    assert set(hostile["forged_answers"]) <= {"reason 135", "no answer"}
    # what seed 556 is chosen for (a changed plan must pick another seed, not lose these)
    restarts = {
        (d["kind"], bool(d.get("persistence")))
        for d in result["faults"]
        if d["kind"] in ("broker_kill", "broker_stop")
    }
    assert ("broker_kill", True) in restarts and ("broker_stop", False) in restarts
    steps = [d["offset_s"] for d in result["faults"] if d["kind"] == "clock_step"]
    assert max(steps) > 86400
    assert any("out_of_range" in u["dead_letter_reasons"] for u in result["units"])
    assert hostile["poison_acknowledged"] >= 10  # it reached the workers
    assert hostile["over_packet_limit_answers"]
