"""The firmware bridge benchmark command runs and reports consistent figures (no timing asserts)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gateway.bench.bridge import command, make_stream
from gateway.sensors.rsb import BridgeDecoder


def test_stream_decodes_to_every_reading() -> None:
    data, wire_frames = make_stream(300)
    assert wire_frames > 301  # HELLO, readings and retransmissions of the corrupted ones
    assert len(BridgeDecoder().feed(data)) == 300


def test_bench_json() -> None:
    result = CliRunner().invoke(command, ["--frames", "200", "--readings", "20", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["decode"]["readings_delivered"] == 200
    assert out["decode"]["decoder_frames_s"] > 0
    assert [row["frame_loss"] for row in out["link"]] == [0.0, 0.1, 0.2]
    assert all(row["readings"] == 20 for row in out["link"])
    assert out["link"][0]["retransmits_per_reading"] == 0.0
    assert out["link"][2]["retransmits_per_reading"] > 0


def test_bench_table() -> None:
    result = CliRunner().invoke(command, ["--frames", "200", "--readings", "20"])
    assert result.exit_code == 0, result.output
    assert "raw 0x00 scan" in result.output
    assert "(baseline)" in result.output
