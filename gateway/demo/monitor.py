"""A subscriber that watches what the demo gateway publishes (what a dashboard would see)."""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.errors import TransportError

RATE_WINDOW = 4096  # arrival times kept for the events/s figure
MAX_SENSORS = 64  # sensor ids remembered; further ids are counted but not shown


class Monitor:
    """Counts messages by type and keeps the latest sensor values (bounded state)."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.host, self.port, self.filter = host, port, topic_filter
        self.by_type: collections.Counter[str] = collections.Counter()
        self.sensors: dict[str, dict[str, Any]] = {}  # one entry per configured sensor id
        self.invalid = 0
        self._arrivals: collections.deque[float] = collections.deque(maxlen=RATE_WINDOW)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="demo-monitor", protocol=mqtt.MQTTv311
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raise :class:`TransportError` when the broker is unreachable."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            self._client._reset_sockets()
            raise TransportError(
                f"cannot connect to the broker at {self.host}:{self.port}: {exc}"
            ) from exc
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TransportError(f"no SUBACK from the broker at {self.host}:{self.port}")

    def stop(self) -> None:
        """Disconnect (safe to call twice)."""
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        client.subscribe(self.filter, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            event = json.loads(msg.payload)
            kind = str(event["type"])
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.invalid += 1
            return
        with self._lock:
            self.by_type[kind] += 1
            if kind != "availability":
                self._arrivals.append(time.monotonic())
            if kind == "sensor_reading":
                data = event.get("data", {})
                sensor = str(data.get("sensor"))
                if sensor in self.sensors or len(self.sensors) < MAX_SENSORS:
                    self.sensors[sensor] = dict(data.get("values", {}))

    @property
    def events(self) -> int:
        """Events received (availability messages not included)."""
        with self._lock:
            return sum(n for k, n in self.by_type.items() if k != "availability")

    def rate(self, window_s: float = 5.0) -> float:
        """Events per second over the last ``window_s``."""
        now = time.monotonic()
        with self._lock:
            recent = sum(1 for t in self._arrivals if now - t <= window_s)
        return recent / window_s

    def snapshot(self) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
        """Copies of the counts by type and the latest sensor values."""
        with self._lock:
            return dict(self.by_type), {k: dict(v) for k, v in self.sensors.items()}
