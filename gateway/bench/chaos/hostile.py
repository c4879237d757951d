"""A hostile client: poison and oversized messages, and a rogue publishing on other units' topics.

It logs in as a unit of its own (``{site}/rogue``). On its own topics the broker lets
it publish anything: each poison message goes to a topic of its own
(``.../rogue/events/p<N>``), so its dead letter can be found again. On another unit's
topics (forged events with that unit's name, a command) the broker's ACL must refuse
it: a PUBACK of 0 there is an ACL hole. Every publish waits for its PUBACK and keeps
the reason code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.events.envelope import Draft, encode, envelope, new_id


def _event(gateway: str, site: str, seq: int, ts: float, **data: Any) -> dict[str, Any]:
    draft = Draft(
        "sensor_reading",
        "synthetic",
        ts,
        {"sensor": "synthetic", "protocol": "synthetic", "values": {"n": seq}, "extra": {}, **data},
    )
    return dict(envelope(draft, seq=seq, event_id=new_id(), gateway=gateway, site=site))


def _good(gateway: str, site: str, n: int) -> dict[str, Any]:
    return _event(gateway, site, n, time.time())


def _with(event: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**event, **changes}).encode()


# Poison kinds: name -> payload(gateway, site, n). Each is something the ingest must
# dead-letter with a reason while it goes on with everything else.
POISON: dict[str, Callable[[str, str, int], bytes]] = {
    "deep_nesting": lambda g, s, n: b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "lone_surrogate": lambda g, s, n: _with(_good(g, s, n), source="cam\ud800"),
    "invalid_utf8": lambda g, s, n: b"\xff\xfe" + encode(_good(g, s, n)),
    "empty": lambda g, s, n: b"",
    "not_an_object": lambda g, s, n: b"[1, 2, 3]",
    "unknown_schema": lambda g, s, n: _with(_good(g, s, n), schema=2),
    "year_9999": lambda g, s, n: _with(_good(g, s, n), ts="9999-12-31T00:00:00.000Z"),
    "huge_seq": lambda g, s, n: encode(_good(g, s, n)).replace(
        f'"seq":{n},'.encode(), b'"seq":1e30,'
    ),
    "nan": lambda g, s, n: encode(_good(g, s, n)).replace(f'"seq":{n},'.encode(), b'"seq":NaN,'),
    "oversized": lambda g, s, n: _with(_good(g, s, n), pad="x" * 100_000),
    "other_identity": lambda g, s, n: _with(_good(g, s, n), gateway="rsu-1"),
}


@dataclass(frozen=True)
class Sent:
    """One publish: what, where, and the broker's answer (``None``: none came)."""

    kind: str
    topic: str
    reason: int | None
    at: float


class HostileClient:
    """The rogue unit's MQTT v5 client, connected for one burst at a time."""

    def __init__(self, port: int, user: str, password: str, prefix: str, site: str) -> None:
        self.port, self.user, self.password = port, user, password
        self.prefix, self.site = prefix, site
        self.gateway = user.split("/", 1)[1]
        self.sent: list[Sent] = []
        self._n = 0

    def _publish_all(self, messages: list[tuple[str, str, bytes]]) -> list[Sent]:
        """Connect, publish each ``(kind, topic, payload)`` at QoS 1, wait for the PUBACKs."""
        codes: dict[int, int] = {}
        done = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{self.gateway}-{self._n}", protocol=mqtt.MQTTv5
        )
        client.username_pw_set(self.user, self.password)

        def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
            codes[mid] = int(getattr(reason, "value", reason))
            done.set()

        client.on_publish = on_publish
        out: list[Sent] = []
        try:
            client.connect("127.0.0.1", self.port, keepalive=10)
        except OSError:  # the broker is away: sent, never answered
            out = [Sent(kind, topic, None, time.time()) for kind, topic, _ in messages]
            self.sent += out
            return out
        client.loop_start()
        try:
            mids = [
                (kind, topic, client.publish(topic, payload, qos=1).mid)
                for kind, topic, payload in messages
            ]
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and any(m not in codes for _, _, m in mids):
                done.wait(0.1)
                done.clear()
            out = [Sent(kind, topic, codes.get(mid), time.time()) for kind, topic, mid in mids]
        finally:
            client.disconnect()
            client.loop_stop()
        self.sent += out
        return out

    def poison(self, count: int) -> list[Sent]:
        """``count`` poison messages of every kind in turn, on the rogue's own topics."""
        messages = []
        kinds = list(POISON)
        for _ in range(count):
            self._n += 1
            kind = kinds[self._n % len(kinds)]
            topic = f"{self.prefix}/{self.site}/{self.gateway}/events/p{self._n}"
            messages.append((kind, topic, POISON[kind](self.gateway, self.site, self._n)))
        return self._publish_all(messages)

    def forge(self, victims: dict[str, int], count: int) -> list[Sent]:
        """``count`` forged events and commands on the victims' topics (``victims``: last seqs).

        Forged seqs are taken both inside the victim's produced range (a forgery the
        reconciliation would see as a reused seq) and far beyond it.
        """
        messages = []
        names = sorted(victims)
        for i in range(count):
            self._n += 1
            victim = names[i % len(names)]
            seq = max(1, victims[victim] - i) if i % 2 == 0 else 10**9 + self._n
            base = f"{self.prefix}/{self.site}/{victim}"
            if i % 4 == 3:
                cmd = json.dumps({"id": new_id(), "args": {}}).encode()
                messages.append(("forged_command", f"{base}/cmd/restart_pipeline", cmd))
            else:
                forged = encode(_event(victim, self.site, seq, time.time() - 3600))
                messages.append(("forged_event", f"{base}/sensors/synthetic", forged))
        return self._publish_all(messages)

    def huge(self) -> list[Sent]:
        """One 2 MiB message: over the broker's packet limit (it refuses or disconnects)."""
        self._n += 1
        topic = f"{self.prefix}/{self.site}/{self.gateway}/events/p{self._n}"
        return self._publish_all([("over_packet_limit", topic, b"{" + b" " * (2 * 1024 * 1024))])
