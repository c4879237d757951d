"""``gateway bench outbox`` runs end to end and reports both figures (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


def test_bench_outbox_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "outbox", "--count", "300", "--rounds", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bare_paho"]["count"] == 300
    assert result["bare_paho"]["payload_bytes"] == 158
    assert result["outbox"]["count"] == 300 and result["outbox"]["published"] >= 300
    assert result["ratio"] == pytest.approx(
        result["outbox"]["per_s"] / result["bare_paho"]["per_s"], abs=0.001
    )
    assert result["outbox"]["rss_mb"] > 0
    assert len(result["rounds"]["bare_paho"]) == len(result["rounds"]["outbox"]) == 2
    pair = result["ratio_per_pair"]
    assert pair["min"] <= pair["median"] <= pair["max"]
    assert result["spread"]["outbox"]["min"] <= result["spread"]["outbox"]["max"]
    assert result["load_1m"]["start"] >= 0


def test_bench_outbox_bad_option() -> None:
    assert main(["bench", "outbox", "--count", "5"]) == 2
