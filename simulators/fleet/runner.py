"""Run N virtual gateways against an MQTT broker, one client connection each.

Each gateway connects with a last will (``offline``, retained on its status topic),
announces ``online``, and publishes its events with QoS 1. An outage really
disconnects the client; its backlog goes out when it reconnects.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import __version__
from gateway.errors import TransportError
from gateway.events import encode, envelope, new_id
from gateway.events.builder import availability
from simulators.fleet.gateway import Profile, VirtualGateway

log = logging.getLogger(__name__)
TICK_S = 0.1
INFLIGHT_MAX = 20_000  # unacknowledged publishes tracked per gateway before waiting


@dataclass
class FleetReport:
    """What the fleet generated and published, per gateway."""

    seconds: float = 0.0
    published: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    outages: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Events published by the whole fleet (availability messages not included)."""
        return sum(self.published.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "total": self.total,
            "published": self.published,
            "by_type": self.by_type,
            "outages": self.outages,
            "dropped": self.dropped,
        }


class _Link:
    """One gateway's MQTT connection (a fresh client per connection, as after a reboot)."""

    def __init__(self, vgw: VirtualGateway, host: str, port: int) -> None:
        self.vgw, self.host, self.port = vgw, host, port
        self.client: mqtt.Client | None = None
        self.pending: deque[mqtt.MQTTMessageInfo] = deque()

    @property
    def connected(self) -> bool:
        return self.client is not None

    def connect(self) -> None:
        vgw = self.vgw
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=vgw.gateway_id, protocol=mqtt.MQTTv5
        )
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.will_set(
            vgw.topics.status, encode(self._availability("offline")), qos=1, retain=True
        )
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            client._reset_sockets()
            raise TransportError(
                f"fleet: cannot connect to {self.host}:{self.port}: {exc}"
            ) from exc
        client.loop_start()
        self.client = client
        self._send(vgw.topics.status, self._availability("online"), retain=True)

    def disconnect(self, clean: bool = True) -> None:
        """Wait for acknowledgements and disconnect (``clean``: announce ``offline`` first)."""
        if self.client is None:
            return
        if clean:
            self._send(self.vgw.topics.status, self._availability("offline"), retain=True)
        try:
            self.wait()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.client._reset_sockets()
            self.client = None

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        self._send(topic, event, retain=False)
        while self.pending and self.pending[0].is_published():
            self.pending.popleft()
        if len(self.pending) > INFLIGHT_MAX:
            self.wait()

    def wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending:
            info = self.pending.popleft()
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TransportError(f"fleet: {self.vgw.gateway_id}: broker did not acknowledge")

    def _send(self, topic: str, event: dict[str, Any], retain: bool) -> None:
        assert self.client is not None
        self.pending.append(self.client.publish(topic, encode(event), qos=1, retain=retain))

    def _availability(self, state: Literal["online", "offline"]) -> dict[str, Any]:
        draft = availability(state, time.time(), __version__)
        return envelope(
            draft, seq=0, event_id=new_id(), gateway=self.vgw.gateway_id, site=self.vgw.site
        )


def run_fleet(
    *,
    gateways: int,
    profile: Profile,
    seconds: float,
    host: str,
    port: int,
    seed: int = 0,
    site: str = "fleet",
    prefix_id: str = "vgw",
) -> FleetReport:
    """Run the fleet for ``seconds`` of wall-clock time; returns what it published."""
    rng = np.random.default_rng(seed)
    start = time.time()
    vgws = [
        VirtualGateway(
            f"{prefix_id}-{i + 1:04d}",
            site,
            profile,
            np.random.default_rng(rng.integers(1 << 62)),
            start,
        )
        for i in range(gateways)
    ]
    links = [_Link(v, host, port) for v in vgws]
    try:
        for link in links:
            link.connect()
        t0 = time.monotonic()
        last = -TICK_S  # the first tick covers one tick, as every later one at least
        while (elapsed := time.monotonic() - t0) < seconds:
            # Each tick covers the time since the last one. A tick that took longer than
            # TICK_S (a slow broker) is not followed by a burst of catch-up ticks.
            now = start + elapsed
            for link in links:
                _step(link, link.vgw.tick(now, elapsed - last), now)
            last = elapsed
            time.sleep(max(0.0, t0 + elapsed + TICK_S - time.monotonic()))
        for link in links:
            if not link.connected:
                link.connect()
            for msg in link.vgw.flush():
                link.publish(msg.topic, msg.event)
        for link in links:
            link.disconnect()
    finally:
        for link in links:
            if link.connected:
                link.disconnect(clean=False)
    report = FleetReport(seconds=time.monotonic() - t0)
    for link in links:
        gid = link.vgw.gateway_id
        report.published[gid] = sum(link.vgw.counts.values()) - link.vgw.dropped
        report.by_type[gid] = dict(link.vgw.counts)
        report.outages[gid] = link.vgw.outages
        report.dropped[gid] = link.vgw.dropped
    return report


def _step(link: _Link, messages: list[Any], now: float) -> None:
    online = link.vgw.online(now)
    if not online and link.connected:
        log.info("%s: outage until %.1f", link.vgw.gateway_id, link.vgw.offline_until)
        link.disconnect(clean=False)
        return
    if online and not link.connected:
        link.connect()
    for msg in messages:
        link.publish(msg.topic, msg.event)
