"""Where an alert's time goes: monotonic stamps along its path, for ``bench priority --trace``.

Installed in the gateway's bench process only (it wraps methods of that process's
objects; no production code path carries it). Per alert it records, on the one
monotonic clock every process of the box shares:

* ``emit``: ``App.emit`` called (carried in the alert itself);
* ``stored``: ``Outbox.add`` of the alert returned (its transaction committed);
* ``fetched``: the forwarder read the alert's row;
* ``published``: ``MqttLink.publish`` of the alert returned (queued in paho);
* ``written``: paho wrote the alert's PUBLISH to the socket (the network thread);
* ``arrived``: the alert consumer got it (stamped in the bench process).

and, to explain a gap, the intervals the forwarder spent deleting acknowledged rows
and building batches, and the network thread spent reading and writing the socket.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("stored", "fetched", "published", "written", "arrived")


@dataclass(slots=True)
class Activity:
    """Intervals of one kind of work: ``(start, end, amount)``, monotonic seconds."""

    spans: list[tuple[float, float, int]] = field(default_factory=list)

    def add(self, start: float, amount: int = 0) -> None:
        """Record one interval from ``start`` to now."""
        self.spans.append((start, time.monotonic(), amount))

    def within(self, start: float, end: float) -> tuple[float, int, int]:
        """Seconds of overlap with ``[start, end]``, intervals touching it, their amount."""
        busy = 0.0
        count = 0
        amount = 0
        for s, e, n in self.spans:
            if e < start or s > end:
                continue
            busy += min(e, end) - max(s, start)
            count += 1
            amount += n
        return busy, count, amount


@dataclass(slots=True)
class Tracer:
    """Stamps of the alerts (by number) and the activities around them."""

    stamps: dict[int, dict[str, float]] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)
    notes: dict[int, dict[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stamp(self, n: int, stage: str) -> None:
        """Record ``stage`` of alert ``n`` now (the first time only)."""
        now = time.monotonic()
        with self.lock:
            self.stamps.setdefault(n, {}).setdefault(stage, now)

    def note(self, n: int, key: str, value: float) -> None:
        """Record a figure of alert ``n`` (not a stamp)."""
        with self.lock:
            self.notes.setdefault(n, {})[key] = value

    def activity(self, name: str) -> Activity:
        """The intervals recorded under ``name``."""
        return self.activities.setdefault(name, Activity())

    def report(self) -> dict[str, Any]:
        """Stamps and per-alert activity summaries, picklable for the bench's pipe."""
        alerts = []
        for n, stamps in sorted(self.stamps.items()):
            start = stamps.get("emit")
            written = stamps.get("written")
            around: dict[str, Any] = {}
            if start is not None and written is not None:
                for name, act in self.activities.items():
                    busy, count, amount = act.within(start, written)
                    around[name] = {"busy_ms": round(busy * 1000, 3), "n": count, "amount": amount}
            alerts.append(
                {
                    "n": n,
                    "stamps": stamps,
                    "notes": self.notes.get(n, {}),
                    "between_emit_and_write": around,
                }
            )
        return {"alerts": alerts}


def _alert_number(payload: bytes) -> int | None:
    import json

    event = json.loads(payload)
    if event.get("type") != "alert":
        return None
    return int(event["data"]["details"]["n"])


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _publish_parts(buf: bytes, v5: bool) -> tuple[bytes, bytes] | None:
    """(topic, payload) of a whole MQTT PUBLISH packet at the start of ``buf``, else None.

    The packet is parsed (fixed header, topic, packet id, v5 properties): a search for
    the payload's first ``{`` could land in a packet id (0x7B).
    """
    if not buf or buf[0] & 0xF0 != 0x30:
        return None
    length, at = _varint(buf, 1)
    end = at + length
    if len(buf) < end:
        return None  # not whole: a partial write is not stamped
    topic_len = int.from_bytes(buf[at : at + 2], "big")
    topic = buf[at + 2 : at + 2 + topic_len]
    at += 2 + topic_len
    if (buf[0] >> 1) & 0x03:
        at += 2  # packet identifier
    if v5:
        props, at = _varint(buf, at)
        at += props
    return topic, buf[at:end]


def _timed(act: Activity, fn: Callable[..., Any], amount: Callable[..., int]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            act.add(start, amount(*args, **kwargs))

    return wrapper


def install(app: Any, tracer: Tracer) -> None:
    """Wrap the methods of ``app``'s outbox, forwarder and link that an alert passes."""
    from paho.mqtt.client import MQTTv5

    import gateway.transport.forwarder as forwarder_module
    from gateway.transport import paho_client
    from gateway.transport.lanes import ALERT

    outbox, forwarder, link = app.outbox, app.forwarder, app.link

    real_add = outbox.add

    def add(drafts: Any, **kw: Any) -> Any:
        stored = real_add(drafts, **kw)
        for draft in drafts:
            if draft.type == "alert":
                tracer.stamp(int(draft.data["details"]["n"]), "stored")
        return stored

    outbox.add = add

    real_fetch = forwarder._fetch

    def fetch(queue: Any, limit: int) -> Any:
        rows = real_fetch(queue, limit)
        if queue.lane == ALERT:
            for row in rows:
                n = _alert_number(row.payload)
                if n is not None:
                    tracer.stamp(n, "fetched")
        return rows

    forwarder._fetch = fetch

    real_publish = link.publish

    def publish(topic: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        client = link._client
        ahead = len(client._out_packet) if client is not None else 0
        sent = real_publish(topic, payload, *args, **kwargs)
        if topic.endswith("/alert"):
            n = _alert_number(payload)
            if n is not None:
                tracer.stamp(n, "published")
                tracer.note(n, "unwritten_ahead", ahead)
        return sent

    link.publish = publish

    outbox.ack = _timed(tracer.activity("delete_acked"), outbox.ack, len)
    encode = forwarder_module.encode_batch  # type: ignore[attr-defined]
    forwarder_module.encode_batch = _timed(  # type: ignore[attr-defined]
        tracer.activity("encode_batch"), encode, len
    )

    client_class = paho_client._Client
    real_send = client_class._sock_send
    real_read = client_class.loop_read
    real_write = client_class.loop_write
    reads, writes = tracer.activity("socket_read"), tracer.activity("socket_write")

    def sock_send(self: Any, buf: bytes | bytearray) -> int:
        sent: int = real_send(self, buf)
        # paho takes a ValueError raised here for a closed socket and writes the
        # packet again: nothing may escape from the stamping.
        with contextlib.suppress(Exception):
            found = _publish_parts(bytes(buf[:sent]), self._protocol == MQTTv5)
            if found is not None and found[0].endswith(b"/alert"):
                n = _alert_number(found[1])
                if n is not None:
                    tracer.stamp(n, "written")
        return sent

    def loop_read(self: Any, max_packets: int = 1) -> Any:
        start = time.monotonic()
        try:
            return real_read(self, max_packets)
        finally:
            reads.add(start, len(self._out_messages))

    def loop_write(self: Any) -> Any:
        start = time.monotonic()
        queued = len(self._out_packet)
        try:
            return real_write(self)
        finally:
            writes.add(start, queued)

    client_class._sock_send = sock_send  # type: ignore[method-assign]
    client_class.loop_read = loop_read  # type: ignore[method-assign]
    client_class.loop_write = loop_write  # type: ignore[method-assign]


def stage_table(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Median ms of each stage after the previous one, and of the activities, over alerts."""
    gaps: dict[str, list[float]] = {stage: [] for stage in STAGES}
    around: dict[str, list[float]] = {}
    for alert in alerts:
        stamps = alert["stamps"]
        previous = stamps.get("emit")
        for stage in STAGES:
            at = stamps.get(stage)
            if at is None or previous is None:
                previous = at if at is not None else previous
                continue
            gaps[stage].append((at - previous) * 1000)
            previous = at
        for name, figures in alert["between_emit_and_write"].items():
            around.setdefault(name, []).append(figures["busy_ms"])
    return {
        "stage_median_ms": {k: round(statistics.median(v), 3) for k, v in gaps.items() if v},
        "busy_median_ms": {k: round(statistics.median(v), 3) for k, v in around.items() if v},
    }
