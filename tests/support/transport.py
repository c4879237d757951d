"""Helpers for the transport tests: a reconnecting MQTT collector and config files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.patch import to_toml
from gateway.config.settings import GatewaySettings, validate_settings
from tests.support import polling


class Collector:
    """Subscribes (QoS 1) and keeps every message; reconnects and resubscribes on its own."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        client_id: str = "collector",
        tls: dict[str, Any] | None = None,
        protocol: int = mqtt.MQTTv5,
    ) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topics = topics
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if tls:
            self.client.tls_set(**tls)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_disconnect = lambda *_a: self.subscribed.clear()
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self.subscribed.wait(10), "collector did not subscribe"

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def payloads(self, suffix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            msgs = list(self.messages)
        return [json.loads(m.payload) for m in msgs if m.topic.endswith(suffix)]

    def wait_for(self, done: Callable[[], bool], timeout: float = 20.0) -> bool:
        return polling.wait_for(done, timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.client._reset_sockets()


def gateway_config(tmp_path: Path, port: int, **sections: Any) -> dict[str, Any]:
    """A config dict for a gateway with no cameras on the broker at ``port``."""
    data: dict[str, Any] = {
        "gateway": {"id": "rsu-0001", "site": "sejong-1", "data_dir": str(tmp_path / "data")},
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "events": {"health_interval_s": 3600},
        # These tests command the gateway without signatures (the signed path is covered by
        # tests/integration/test_signed_commands.py).
        "security": {"unsigned_commands": True},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:
            data[name] = values
    return data


def settings_for(tmp_path: Path, port: int, **sections: Any) -> GatewaySettings:
    return validate_settings(gateway_config(tmp_path, port, **sections))


def write_config(tmp_path: Path, port: int, **sections: Any) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(gateway_config(tmp_path, port, **sections)))
    return path


def sensor_draft(n: int) -> Any:
    from gateway.events import Draft

    return Draft(
        "sensor_reading",
        "pm-1",
        time.time(),
        {"sensor": "pm-1", "protocol": "test", "values": {"n": n}, "extra": {}},
    )
