"""`gateway bench ingest` runs end to end and reports every figure next to its baseline."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_ingest_json() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "bench",
            "ingest",
            "--count",
            "300",
            "--repeat",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "ingest"
    for key in ("bare_subscriber", "ingest_1", "bare_subscriber_2", "ingest_2"):
        figure = result[key]
        assert figure["events_per_s"] > 0
        assert sum(figure["per_consumer"]) == 300
        assert all(rss > 0 for rss in figure["rss_mb"])
    assert len(result["ingest_2"]["per_consumer"]) == 2
    assert len(result["bare_subscriber_2"]["per_consumer"]) == 2
    assert result["ratio_1_vs_bare"] > 0
    for key in ("1_vs_bare", "2_vs_1", "2_vs_bare_2"):
        ratio = result["round_ratios"][key]
        assert len(ratio["per_round"]) == 1
        assert ratio["min"] <= ratio["median"] <= ratio["max"]
    assert result["bare_subscriber"]["spread_pct"] == 0.0  # one round
    assert result["load_1m_before"] >= 0
    assert result["ratio_2_vs_1"] > 0
    assert result["ratio_2_vs_bare_2"] > 0
