"""``gateway run`` as a real process: the simulated camera is knocked, the unit says so.

The road simulator (demo detector, real time) is moved 14 px down at 6 s of simulated
time; the live gateway, which took its reference view at start, publishes one
``calibration_drift`` alert through the outbox and a real Mosquitto, with the shift it
measured, and keeps the reference next to its data.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from gateway.config.patch import to_toml
from gateway.demo.scenario import detector_config
from gateway.events import validate_event
from gateway.localservers import Mosquitto
from tests.support.cli import start_gateway
from tests.support.transport import Collector

pytestmark = pytest.mark.slow
BASE = "city/test/rsu-drift"


def config(tmp_path: Path, port: int) -> Path:
    data: dict[str, Any] = {
        "gateway": {"id": "rsu-drift", "site": "test", "data_dir": str(tmp_path / "data")},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "events": {"health_interval_s": 2.0},
        "detector": detector_config().model_dump(mode="json"),
        "cameras": [
            {
                "id": "cam",
                "source": {
                    "type": "simulator",
                    "seed": 4,
                    "realtime": True,
                    "knock": {"at_s": 6.0, "shift_px": [0.0, 14.0]},
                },
                "lines": [{"id": "mid", "points": [[0.5, 0.98], [0.5, 0.38]]}],
                "drift": {
                    "interval_s": 1.5,
                    "confirm": 2,
                    "reference_frames": 3,
                    "reference_every_s": 1.0,
                },
            }
        ],
    }
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    return path


def test_a_knocked_camera_publishes_calibration_drift(tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector = Collector(mosquitto.port, [f"{BASE}/events/cam/alert", f"{BASE}/health"])
    proc = start_gateway(config(tmp_path, mosquitto.port))
    try:

        def drift() -> list[dict[str, Any]]:
            return [
                p for p in collector.payloads("/alert") if p["data"]["kind"] == "calibration_drift"
            ]

        assert collector.wait_for(lambda: bool(drift()), timeout=60.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    (alert,) = drift()
    validate_event(alert)
    assert alert["data"]["camera"] == "cam"
    assert alert["data"]["details"]["shift_px"] == pytest.approx(14.0, abs=1.5)
    assert alert["data"]["details"]["dy_px"] == pytest.approx(14.0, abs=1.5)
    assert (tmp_path / "data" / "reference" / "cam.png").exists()
    health = [
        h["data"]["cameras"]["cam"]
        for h in collector.payloads("/health")
        if "cam" in h["data"]["cameras"]
    ]
    assert max(h.get("drift_checks", 0) for h in health) >= 2
    assert "the camera has moved" in err.decode()
    collector.close()
