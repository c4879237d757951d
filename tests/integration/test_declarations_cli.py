"""``gateway ingest declarations`` on a real Mosquitto: shown, checked, withdrawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.events.capabilities import encode_declaration
from gateway.localservers import Mosquitto
from tests.support.ingest import Publisher


def test_declarations_are_listed_checked_and_withdrawn(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n')
    args = ["ingest", "declarations", "-c", str(config), "--wait-s", "0.3"]
    assert main(args) == 0
    assert "no declaration retained" in capsys.readouterr().out
    publisher = Publisher(mosquitto.port)
    good = encode_declaration(
        "ingest", "city", "2026-12-01T16:00:00Z", ["aggregate"], max_bytes=4096, max_events=50
    )
    for topic, payload in (("ingest", good), ("dash", b'{"schema": 2}')):
        info = publisher.client.publish(f"city/central/capabilities/{topic}", payload, 1, True)
        publisher.infos.append(info)
    publisher.wait_all()
    publisher.close()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "dash: REFUSED by units: schema 2 (this unit reads 1)" in out
    assert "ingest (2026-12-01T16:00:00Z): zlib-json-array/1: aggregate (max 50 events" in out
    assert "batches off (declaration of dash refused" in out
    assert main([*args, "--withdraw", "dash", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [d["consumer"] for d in result["declarations"]] == ["ingest"]
    assert result["units"]["batch_state"] == "on" and result["units"]["batch_types"] == "aggregate"


def test_bad_withdraw_name_and_unreachable_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = 1\n')
    assert main(["ingest", "declarations", "-c", str(config), "--withdraw", "batch"]) == 2
    assert "not a consumer name" in capsys.readouterr().err
    assert main(["ingest", "declarations", "-c", str(config)]) != 0
    assert "cannot connect to MQTT broker 127.0.0.1:1" in capsys.readouterr().err
