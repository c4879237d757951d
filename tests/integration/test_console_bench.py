"""``gateway bench console``: a short fixed-seed run prints the three kinds of round as JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_short_run_reports_off_idle_and_viewer_with_load() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "console", "--rounds", "1", "--seconds", "3",
         "--warm-up", "1", "--seed", "7", "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "console" and out["cores"] >= 1
    off, idle, viewer = out["rounds"]
    assert [r["kind"] for r in (off, idle, viewer)] == ["off", "idle", "viewer"]  # interleaved
    for row in (off, idle, viewer):
        assert row["frames"] > 0 and row["fps"] > 0
        assert row["load_1m_before"] >= 0 and row["load_1m_after"] >= 0
    # nobody watches: nothing is encoded; a viewer gets frames, capped at view_fps (4)
    assert off["encodes_per_s"] == 0 and idle["encodes_per_s"] == 0
    assert 0 < viewer["encodes_per_s"] <= 4.5
    assert viewer["viewer"]["frames"] > 0 and viewer["viewer"]["errors"] == 0
    summary = out["summary"]
    assert {"off", "idle", "viewer", "idle_ratio", "viewer_ratio", "targets_met", "load_1m"} <= set(
        summary
    )
