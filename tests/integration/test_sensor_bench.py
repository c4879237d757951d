"""``gateway bench sensors`` runs and reports consistent figures (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from gateway.bench.sensors import SCAN_BYTE, make_stream
from gateway.cli import main
from gateway.sensors.registry import make_decoder


@pytest.mark.parametrize("protocol", sorted(SCAN_BYTE))
def test_generated_bench_streams_decode_exactly(protocol: str) -> None:
    data, good = make_stream(protocol, 20_000, seed=3)
    decoder = make_decoder(protocol)
    assert len(decoder.feed(data)) == good
    assert good > 0


def test_bench_sensors_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sensors", "--json", "--mb", "0.02", "--idle-seconds", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {row["protocol"] for row in report["decode"]} == set(SCAN_BYTE)
    for row in report["decode"]:
        assert row["readings"] == row["expected_readings"] > 0
        assert row["decode_mb_s"] > 0
    assert report["idle"]["reader_opens"] == 1
    assert report["idle"]["idle_reader_cpu_pct"] >= 0
