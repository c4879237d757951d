"""The ``health`` event on the wire, pinned field by field for every part of the gateway.

Real parts (a camera runner, stream and polled sensor readers, the outbox, the MQTT
link) with known counters go through ``App.health_draft``; the data must be exactly the
JSON below and valid against the schema. A part whose health fails shows up as an error
entry instead of breaking the event.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.app import App
from gateway.config.sensors import SensorConfig
from gateway.config.vision import CameraConfig
from gateway.events import validate_event
from gateway.events.envelope import envelope
from gateway.events.health import camera as camera_entry
from gateway.localservers import free_port
from gateway.sensors.types import Reading
from gateway.serialports.reader import SensorReader
from gateway.vision.detections import Detections
from gateway.vision.runner import CameraRunner
from tests.support import health_builders
from tests.support.transport import settings_for


class _Detector:
    labels = ["person", "car"]
    input_size = (320, 320)
    last_inference_ms = 0.0

    def detect(self, image_bgr: NDArray[np.uint8]) -> Detections:
        return Detections.empty()


class _Broken:
    """A part whose health report itself fails."""

    def __init__(self, error: str) -> None:
        self.error = error

    def health(self) -> Any:
        raise RuntimeError(self.error)


def _camera() -> CameraRunner:
    camera = CameraConfig.model_validate(
        {"id": "cam-north", "source": {"type": "url", "url": "rtsp://admin:pw@10.0.0.9/h264"}}
    )
    runner = CameraRunner(camera, _Detector(), lambda events: None)
    stats = runner.pipeline.stats
    stats.frames, stats.events, stats.skipped_motion = 120, 7, 30
    stats.detector_calls, stats.inference_ms_total = 90, 90 * 15.25
    runner._errors = 2
    runner._last_error = "decode failed on rtsp://admin:pw@10.0.0.9/h264"
    return runner


def _nmea() -> SensorReader:
    reader = SensorReader(SensorConfig(id="gps", protocol="nmea", port="/dev/null"), lambda r: None)
    good = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
    assert reader._decoder is not None
    readings: list[Reading] = reader._decoder.feed(good + b"$GPGGA,garbage*00\r\n" + good)
    reader.readings = len(readings)
    reader.opens, reader.reopens, reader.silence_timeouts = 1, 1, 2
    reader.state, reader.last_error = "open", "read timeout on socket://user:pw@h:1"
    return reader


def _modbus() -> SensorReader:
    cfg = SensorConfig.model_validate(
        {
            "id": "soil",
            "protocol": "modbus",
            "port": "/dev/null",
            "modbus": {"registers": [{"name": "t", "address": 1}]},
        }
    )
    return SensorReader(cfg, lambda r: None)


EXPECTED_CAMERAS = {
    "cam-north": {
        "state": "idle",
        "fps": 0.0,
        "inference_ms": 15.25,
        "skipped_frames": 0,
        "reconnects": 0,
        "capture_fps": 0.0,
        "frames_captured": 0,
        "stalls": 0,
        "last_frame_age_s": None,
        "errors": 2,
        "pipeline_frames": 120,
        "pipeline_events": 7,
        "pipeline_skipped_motion": 30,
        "last_error": "decode failed on rtsp://admin:***@10.0.0.9/h264",
    },
    "cam-broken": {
        "state": "error",
        "fps": 0.0,
        "inference_ms": 0.0,
        "skipped_frames": 0,
        "reconnects": 0,
        "last_error": "health of rtsp://admin:***@10.0.0.9/h264 failed",
    },
}
EXPECTED_SENSORS = {
    "gps": {
        "bytes": 153,
        "frames": 3,
        "good": 2,
        "bad_checksum": 1,
        "resyncs": 0,
        "replies": 0,
        "ignored": 0,
        "bad_frames": 0,
        "skipped_bytes": 0,
        "overflows": 0,
        "timeouts": 2,
        "reopens": 1,
        "opens": 1,
        "open_failures": 0,
        "readings": 2,
        "callback_errors": 0,
        "decoder_errors": 0,
        "state": "open",
        "last_error": "read timeout on socket://user:***@h:1",
    },
    "soil": {  # a polled protocol: frames are its requests, bad_checksum its bad CRCs
        "bytes": 0,
        "frames": 0,
        "good": 0,
        "bad_checksum": 0,
        "resyncs": 0,
        "polls": 0,
        "requests": 0,
        "timeouts": 0,
        "exceptions": 0,
        "bad_crc": 0,
        "last_exception_code": 0,
        "reopens": 0,
        "opens": 0,
        "open_failures": 0,
        "readings": 0,
        "callback_errors": 0,
        "decoder_errors": 0,
        "state": "idle",
        "last_error": "",
    },
    "dead": {"state": "error", "last_error": "port gone"},
}
EXPECTED_OUTBOX = {
    "depth": 0,
    "bytes": 0,
    "oldest_age_s": 0.0,
    "inflight": 0,
    "dropped": 0,
    "lost_refused": 0,
    "accepted_unsubscribed": 0,
    "lost_store": 0,
    "lost_damaged": 0,
    "damaged": 0,
    "refused": 0,
    "held_topics": 0,
    "depth_alert": 0,
    "depth_control": 0,
    "depth_bulk": 0,
}
EXPECTED_MQTT = {
    "state": "disconnected",
    "protocol": None,
    "connects": 0,
    "last_error": None,
    "subscribed": False,
    "bytes_sent": 0,
    "bytes_received": 0,
    "ip_bytes_sent": 0,
    "ip_bytes_received": 0,
}


def test_health_event_data_is_pinned(tmp_path: Path) -> None:
    app = App(settings_for(tmp_path, free_port()))
    try:
        app.cameras["cam-north"] = _camera()
        app.cameras["cam-broken"] = _Broken("health of rtsp://admin:pw@10.0.0.9/h264 failed")  # type: ignore[assignment]
        app.sensors["gps"] = _nmea()
        app.sensors["soil"] = _modbus()
        app.sensors["dead"] = _Broken("port gone")  # type: ignore[assignment]
        draft = app.health_draft()
    finally:
        app.outbox.close()
    data = draft.data
    assert data["cameras"] == EXPECTED_CAMERAS
    assert data["sensors"] == EXPECTED_SENSORS
    outbox = dict(data["outbox"])
    sizes = outbox.pop("disk_bytes"), outbox.pop("limit_bytes")  # of this machine's volume
    assert all(isinstance(n, int) and n > 0 for n in sizes), sizes
    assert outbox == EXPECTED_OUTBOX
    assert data["mqtt"] == EXPECTED_MQTT
    assert data["dropped_events"] == 0
    assert set(data["system"]) == {
        "cpu_percent",
        "load_1m",
        "cpu_temp_c",
        "mem_used_bytes",
        "mem_total_bytes",
        "mem_percent",
        "disk_free_bytes",
    }
    assert data["uptime_s"] >= 0 and "rules" not in data
    validate_event(envelope(draft, seq=1, event_id="e" * 32, gateway="rsu-0001", site="s"))


def test_rule_counters_join_the_camera_entry() -> None:
    """Counters an alert rule reports (camera-shift checks) appear under their own names."""
    counters = {"drift_checks": 3, "drift_inconclusive": 1, "drift_alerts": 0}
    entry = camera_entry(replace(health_builders.camera(), analytics=counters))
    assert {k: entry[k] for k in counters} == counters
    assert entry["state"] == "streaming" and entry["pipeline_frames"] == 120
