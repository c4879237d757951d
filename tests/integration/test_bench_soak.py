"""``gateway bench soak``: a short real run end to end, the trend figures, bad options."""

from __future__ import annotations

import json

import click
import pytest

from gateway.bench.soak import trend
from gateway.cli import main


def test_short_soak_finds_every_produced_seq_in_the_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--seconds", "20", "--rate", "50", "--sample-every", "2", "--warmup", "5"]
    code = main(["bench", "soak", *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["benchmark"] == "soak"
    assert result["exit_codes"] == {"gateway": 0, "ingest": 0}
    produced = result["events_produced"]
    assert produced > 0
    # The real end-to-end check: every seq the outbox allocated reached the database.
    assert result["missing"] == 0 and result["missing_first"] == []
    assert result["events_in_db"] == produced
    in_db = result["sensor_readings_in_db"] + result["health_in_db"] + result["manifests_in_db"]
    assert in_db == produced
    assert result["sensor_readings_in_db"] > 0 and result["health_in_db"] > 0
    assert result["manifests_in_db"] >= 1  # the delivery ledger's manifest at the clean stop
    assert result["outbox"]["depth_after_stop"] == 0
    assert result["outbox"]["dropped"] == 0
    assert result["outbox"]["depth_max_health"] is not None
    assert '"events_written"' in result["ingest_stats"]
    for name in ("gateway", "ingest"):
        fig = result["rss"][name]
        assert set(fig) == {
            "start_mib",
            "end_mib",
            "max_mib",
            "noise_mib",
            "slope_mib_per_h",
            "growth_over_run_mib",
            "samples",
            "all_samples_mib",
        }
        after_warmup = fig["all_samples_mib"][-fig["samples"] :]
        assert 2 <= fig["samples"] < len(fig["all_samples_mib"])
        assert fig["start_mib"] == after_warmup[0] and fig["end_mib"] == after_warmup[-1]
        assert fig["max_mib"] == max(after_warmup)
        assert 0 < min(after_warmup) <= fig["max_mib"]


def test_trend_slope_noise_and_growth() -> None:
    # 10 MiB at 0 s, 11 at 30 min, 12 at 1 h: 2 MiB/h exactly, 2 MiB over the run.
    fig = trend([(0.0, 10.0), (1800.0, 11.0), (3600.0, 12.0)])
    assert fig == {
        "start_mib": 10.0,
        "end_mib": 12.0,
        "max_mib": 12.0,
        "noise_mib": 2.0,
        "slope_mib_per_h": 2.0,
        "growth_over_run_mib": 2.0,
        "samples": 3,
    }
    flat = trend([(0.0, 50.0), (10.0, 51.0), (20.0, 50.0), (30.0, 51.0), (40.0, 50.0)])
    assert flat["slope_mib_per_h"] == 0.0 and flat["noise_mib"] == 1.0
    assert trend([(5.0, 7.0)])["slope_mib_per_h"] == 0.0  # one sample: no slope


def test_trend_without_samples_is_a_clear_error() -> None:
    with pytest.raises(click.ClickException, match="no RSS sample after the warm-up"):
        trend([])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "10", "--warmup", "10"], "--warmup must be shorter than --seconds"),
        (["--rate", "0"], "Invalid value for '--rate'"),
        (["--seconds", "1"], "Invalid value for '--seconds'"),
        (["--sample-every", "0"], "Invalid value for '--sample-every'"),
    ],
)
def test_bad_options_exit_2_before_starting_anything(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "soak", *args]) == 2
    assert message in capsys.readouterr().err
