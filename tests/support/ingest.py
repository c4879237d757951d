"""Builders shared by the ingest tests: events, settings, a QoS 1 publisher, read-back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.settings import GatewaySettings, validate_settings
from gateway.ingest.worker import IngestWorker
from gateway.localservers import Mosquitto, VictoriaMetrics

BASE_MS = 1_795_000_000_000  # 2026-11-18, a fixed instant


def ts_of(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def line_event(seq: int, gateway: str = "rsu-0001", **data: Any) -> dict[str, Any]:
    """A valid line_crossing event; every seq gets its own millisecond."""
    body = {
        "camera": "cam-north",
        "line": "l1",
        "track_id": seq,
        "label": "car",
        "direction": "left_to_right",
        "speed_kmh": 40.0 + seq % 7,
    }
    body.update(data)
    return {
        "schema": 1,
        "id": f"{seq:032x}",
        "seq": seq,
        "gateway": gateway,
        "site": "sejong-1",
        "source": "cam-north",
        "type": "line_crossing",
        "ts": ts_of(BASE_MS + seq),
        "data": body,
    }


def topic_of(event: dict[str, Any]) -> str:
    return f"city/{event['site']}/{event['gateway']}/events/{event['source']}/{event['type']}"


def settings_for(
    broker: Mosquitto,
    db: VictoriaMetrics,
    tmp_path: Path,
    mqtt: dict[str, Any] | None = None,
    **ingest: Any,
) -> GatewaySettings:
    influx = {
        "url": db.url,
        "token": "test",
        "org": "city",
        "bucket": "roadside",
        "batch_size": 200,
        "flush_interval_s": 0.2,
        "retry_min_s": 0.2,
        "retry_max_s": 2.0,
        "query_api": "victoriametrics",
    }
    influx.update(ingest.pop("influx", {}))
    section = {
        "stats_interval_s": 1.0,
        "influx": influx,
        "dead_letter_path": str(tmp_path / "deadletters.sqlite3"),
        **ingest,
    }
    return validate_settings(
        {
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "reconnect_min_s": 1,
                "reconnect_max_s": 2,
                **(mqtt or {}),
            },
            "ingest": section,
        }
    )


def start_worker(settings: GatewaySettings, name: str = "w1") -> IngestWorker:
    worker = IngestWorker(settings, name)
    worker.start()
    assert worker.subscribed.wait(10), "ingest worker did not subscribe"
    return worker


class Publisher:
    """A paho QoS 1 publisher; paho keeps unacknowledged messages and resends them.

    Messages published while the broker is away stay in paho's queue and go out
    after the reconnect; :meth:`wait_all` waits for the broker's PUBACK of each.
    """

    def __init__(
        self, port: int, client_id: str = "test-publisher", gate: threading.Event | None = None
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 1)
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.acked: set[int] = set()  # mids the broker acknowledged (fewer than 65536 per test)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_publish = lambda c, u, mid, *a: self.acked.add(mid)
        if gate is not None:  # (re)connect only once the gate is open
            self.client.on_pre_connect = lambda *a: gate.wait(60)
        self.client.connect(  # first connect must succeed
            "127.0.0.1", port, 30, clean_start=False
        )
        self.client.loop_start()
        assert self.connected.wait(10)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=qos))

    def event(self, event: dict[str, Any]) -> None:
        self.publish(topic_of(event), json.dumps(event, separators=(",", ":")))

    def wait_all(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i.mid in self.acked for i in self.infos):
                return
            time.sleep(0.05)
        missing = sum(i.mid not in self.acked for i in self.infos)
        raise AssertionError(f"{missing} publishes never acknowledged by the broker")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def seq_samples(
    db: VictoriaMetrics,
    series: str = "line_crossing_seq",
    expected: int | None = None,
    timeout: float = 20.0,
) -> list[tuple[int, int]]:
    """Every (timestamp ms, seq) sample of ``series``, polled until ``expected`` distinct seqs."""

    def samples(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
        out = []
        for row in rows:
            out.extend(zip(row["timestamps"], (int(v) for v in row["values"]), strict=True))
        return out

    def done(rows: list[dict[str, Any]]) -> bool:
        return expected is None or len({s for _, s in samples(rows)}) >= expected

    rows = db.export_until(f'{{__name__="{series}"}}', done, timeout=timeout)  # type: ignore[arg-type]
    return samples(rows)  # type: ignore[arg-type]


def assert_exactly_once(samples: list[tuple[int, int]], seqs: Iterable[int]) -> None:
    """Every seq stored, none twice after de-duplication (same time and value = one point)."""
    seqs = set(seqs)
    distinct = set(samples)
    by_seq: dict[int, set[int]] = {}
    for ts, seq in distinct:
        by_seq.setdefault(seq, set()).add(ts)
    missing = sorted(set(seqs) - by_seq.keys())
    assert not missing, f"{len(missing)} seqs missing, first {missing[:10]}"
    twice = {s: t for s, t in by_seq.items() if len(t) > 1}
    assert not twice, f"seqs stored at two times: {list(twice.items())[:5]}"
    assert by_seq.keys() == set(seqs)
