"""The [ingest] configuration: the shipped example, readable errors, CLI exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.settings import load_settings, validate_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "deploy" / "ingest.example.toml")
    assert settings.ingest.share_group == "ingest"
    assert settings.ingest.spool_path is not None
    assert settings.ingest.influx.batch_size == 1000


@pytest.mark.parametrize(
    ("ingest", "problem"),
    [
        ({"topics": ["$share/g/city/#"]}, "without $share"),
        ({"topics": []}, "ingest.topics"),
        ({"dead_letter_topic": "city/#"}, "wildcards"),
        ({"share_group": "a/b"}, "ingest.share_group"),
        ({"receive_maximum": 70000}, "ingest.receive_maximum"),
        ({"validation": "paranoid"}, "ingest.validation"),
        ({"influx": {"retry_min_s": 5, "retry_max_s": 1}}, "retry_min_s must not exceed"),
        ({"influx": {"batch_size": 0}}, "ingest.influx.batch_size"),
        ({"colour": "red"}, "ingest.colour: unknown key"),
        ({"batch_types": ["Line-Crossing"]}, "ingest.batch_types[0]"),
        ({"batch_types": ["x"] * 65}, "ingest.batch_types"),
        ({"declare": "maybe"}, "ingest.declare"),
    ],
)
def test_bad_ingest_settings_are_named(ingest: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"ingest": ingest})
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_cli_reports_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_cli_reports_an_unusable_spool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = tmp_path / "ingest.toml"
    config.write_text(f'[ingest]\nspool_path = "{blocker / "spool.sqlite3"}"\n')
    assert main(["ingest", "--config", str(config)]) == 1
    assert "cannot open the ingest spool" in capsys.readouterr().err
