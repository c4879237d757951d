"""Negotiated compact batches on real Mosquitto and VictoriaMetrics.

A unit with ``[outbox] batch = "negotiate"`` and the real ingest worker: one event per
message while no consumer has declared what it reads; batches of its backlog once the
ingest's retained declaration is there; a type a consumer leaves out stays one event
per message; a withdrawn declaration or a hostile one means one event per message
again. Every event is in the database exactly once at the end, and the ingest counts
the events of a batch, not the batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.events.capabilities import encode_declaration
from gateway.events.envelope import Draft
from gateway.events.topics import capabilities_topic
from gateway.ingest.worker import IngestWorker
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support import polling
from tests.support.batches import received_events, store_backlog
from tests.support.ingest import Publisher, seq_samples, start_worker
from tests.support.ingest import settings_for as ingest_settings
from tests.support.transport import Collector, sensor_draft, settings_for

DECLARATION = capabilities_topic("city", "ingest")
CROSSING = {"camera": "cam-1", "line": "l1", "track_id": 1, "label": "car",
            "direction": "left_to_right"}  # fmt: skip


def crossing(n: int) -> Draft:
    return Draft("line_crossing", "cam-1", time.time(), {**CROSSING, "track_id": n})


class Centre:
    """The ingest worker, a collector of everything on the broker, and a publisher."""

    def __init__(self, tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics) -> None:
        self.worker: IngestWorker = start_worker(
            ingest_settings(mosquitto, victoria, tmp_path, declare=False)
        )
        self.collector = Collector(mosquitto.port, ["city/sejong-1/#"])
        self.publisher = Publisher(mosquitto.port, client_id="operator")
        self.victoria = victoria

    def declare(self, payload: bytes) -> None:
        """Publish (retained) on the ingest's declaration topic, as an operator may."""
        self.publisher.infos.append(
            self.publisher.client.publish(DECLARATION, payload, qos=1, retain=True)
        )
        self.publisher.wait_all()

    def close(self) -> None:
        self.publisher.close()
        self.collector.close()
        self.worker.stop()


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics) -> Iterator[Centre]:
    made = Centre(tmp_path, mosquitto, victoria)
    yield made
    made.close()


def declaration(types: list[str]) -> bytes:
    return encode_declaration(
        "ingest", "city", "2026-12-01T16:00:00.000Z", types, max_bytes=1 << 22, max_events=10_000
    )


def outbox_health(app: App) -> dict[str, Any]:
    data = app.health_draft().data
    assert isinstance(data, dict)
    return dict(data["outbox"])


def send(app: App, drafts: list[Draft]) -> list[int]:
    """Store ``drafts`` at once (a backlog) and wait until the broker took them all."""
    seqs = app.emit(drafts).seqs
    assert polling.wait_for(lambda: app.outbox.depth == 0, 30)
    return seqs


def batched_types(centre: Centre, since: int) -> tuple[set[str], set[str]]:
    """Types seen in batches and alone in messages after the collector's ``since``-th."""
    with centre.collector.lock:
        messages = centre.collector.messages[since:]
    in_batches: set[str] = set()
    alone: set[str] = set()
    for msg in messages:
        if msg.topic.endswith("/batch"):
            from gateway.events.batch import decode_batch

            in_batches |= {e["type"] for e in decode_batch(bytes(msg.payload), 1 << 24, 10**5)}
        elif not msg.topic.endswith("/status"):
            alone.add(json.loads(msg.payload)["type"])
    return in_batches, alone


def delivered(centre: Centre) -> set[int]:
    """Seqs of the events the collector received (alone or in batches)."""
    return {e["seq"] for e in received_events(centre.collector)[0]}


def count(centre: Centre) -> int:
    with centre.collector.lock:
        return len(centre.collector.messages)


def test_negotiated_batches_follow_the_declaration_and_nothing_is_lost(
    tmp_path: Path, mosquitto: Mosquitto, centre: Centre
) -> None:
    settings = settings_for(tmp_path, mosquitto.port, outbox={"batch": "negotiate"})
    app = App(settings)
    seqs: list[int] = []
    try:
        app.start()
        # 1. Nobody has declared: a backlog goes one event per message.
        seqs += send(app, [sensor_draft(n) for n in range(300)])
        assert app.forwarder.batches == 0
        assert outbox_health(app)["batch_state"] == "off"
        # 2. The ingest declares every bulk type: the next backlog leaves in batches.
        centre.declare(declaration(["line_crossing", "sensor_reading", "aggregate"]))
        assert polling.wait_for(lambda: outbox_health(app)["batch_state"] == "on", 10)
        health = outbox_health(app)
        assert (
            health["batch_consumers"] == "ingest"
            and health["batch_encoding"] == "zlib-json-array/1"
        )
        seqs += send(app, [sensor_draft(n) for n in range(2000)])
        assert app.forwarder.batches >= 2000 // 500
        # 3. Readings left out: they go alone, crossings still in batches.
        centre.declare(declaration(["line_crossing"]))
        assert polling.wait_for(
            lambda: outbox_health(app).get("batch_types") == "line_crossing", 10
        )
        # Everything sent so far has reached the collector: what follows is step 3's.
        assert polling.wait_for(lambda: set(seqs) <= delivered(centre), 10)
        mark = count(centre)
        batches_before = app.forwarder.batches
        mixed = [crossing(n) for n in range(600)] + [sensor_draft(n) for n in range(100)]
        seqs += send(app, mixed)
        assert app.forwarder.batches > batches_before
        assert polling.wait_for(lambda: "sensor_reading" in batched_types(centre, mark)[1], 10)
        in_batches, _alone = batched_types(centre, mark)
        assert in_batches == {"line_crossing"}
        # 4. Withdrawn: one event per message again.
        centre.declare(b"")
        assert polling.wait_for(lambda: outbox_health(app)["batch_state"] == "off", 10)
        batches_before = app.forwarder.batches
        seqs += send(app, [crossing(n) for n in range(500)])
        assert app.forwarder.batches == batches_before
        assert "withdrew" in outbox_health(app)["batch_reason"]
    finally:
        app.stop()
    # Every event in the database once (its ledger receipt), whichever way it went.
    samples = seq_samples(centre.victoria, "ledger_event_seq", expected=len(seqs), timeout=30)
    times: dict[int, set[int]] = {}
    for ts, seq in set(samples):
        times.setdefault(seq, set()).add(ts)
    assert set(seqs) <= times.keys(), f"missing {sorted(set(seqs) - times.keys())[:10]}"
    assert all(len(times[s]) == 1 for s in seqs)
    assert polling.wait_for(lambda: centre.worker.stats.events_written >= len(seqs), 10)
    stats = centre.worker.stats.snapshot()
    assert stats["compact_batches"] == app.forwarder.batches  # each batch counted once
    assert centre.worker.stats.events_written - len(seqs) < 50  # health/manifest only


HOSTILE = [
    pytest.param(b"{" * 20_000, id="huge-garbage"),
    pytest.param(
        json.dumps(
            {**json.loads(declaration(["sensor_reading"])), "consumer": "dashboard"}
        ).encode(),
        id="another-consumer",
    ),
    pytest.param(
        declaration(["sensor_reading"]).replace(b'"version":1', b'"version":"1"'), id="wrong-type"
    ),
    pytest.param(
        declaration(["sensor_reading"]).replace(b"zlib-json-array", b"brotli-cbor"),
        id="unknown-encoding",
    ),
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_a_hostile_declaration_is_refused_and_the_unit_sends_per_event(
    tmp_path: Path,
    mosquitto: Mosquitto,
    centre: Centre,
    payload: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    centre.declare(payload)
    settings = settings_for(tmp_path, mosquitto.port, outbox={"batch": "negotiate"})
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: outbox_health(app).get("batch_refusals", 0) >= 1, 10)
        seqs = send(app, [sensor_draft(n) for n in range(400)])
        assert polling.wait_for(lambda: len(received_events(centre.collector)[0]) >= 400, 10)
        health = outbox_health(app)
    finally:
        app.stop()
    assert app.forwarder.batches == 0 and health["batch_state"] == "off"
    assert "refused" in health["batch_reason"]
    assert any(
        "refused the declaration of consumer 'ingest'" in r.getMessage() for r in caplog.records
    )
    got = {e["seq"] for e in received_events(centre.collector)[0]}
    assert set(seqs) <= got


def test_the_ingest_declares_on_connect_and_a_unit_batches_for_it(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    worker = start_worker(
        ingest_settings(mosquitto, victoria, tmp_path, batch_types=["sensor_reading"])
    )
    app = App(settings_for(tmp_path, mosquitto.port, outbox={"batch": "negotiate"}))
    try:
        app.start()
        assert polling.wait_for(lambda: outbox_health(app)["batch_state"] == "on", 10)
        assert outbox_health(app)["batch_types"] == "sensor_reading"
        seqs = send(app, [sensor_draft(n) for n in range(1000)])
        assert polling.wait_for(lambda: worker.stats.events_written >= len(seqs), 20)
    finally:
        app.stop()
        worker.stop()
    assert app.forwarder.batches >= 2 and worker.stats.compact_batches == app.forwarder.batches


def test_a_withdrawal_mid_replay_stops_batches_and_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, centre: Centre
) -> None:
    """The centre changes its mind while an 8,000-event backlog is being replayed."""
    centre.declare(declaration(["sensor_reading"]))
    settings = settings_for(
        tmp_path, mosquitto.port, outbox={"batch": "negotiate", "batch_max_events": 50}
    )
    store_backlog(settings.gateway.data_dir, 8_000)
    app = App(settings)
    try:
        app.start()
        assert polling.wait_for(lambda: app.forwarder.batches >= 5, 20)
        centre.declare(b"")
        assert polling.wait_for(lambda: app.batch_policy.current() is None, 10)
        at_off, depth_at_off = app.forwarder.batches, app.outbox.depth
        assert polling.wait_for(lambda: app.outbox.depth == 0, 60)
        after = app.forwarder.batches
        left = app.outbox.depth
    finally:
        app.stop()
    assert depth_at_off > 0, "the replay ended before the withdrawal: nothing tested"
    assert left == 0 and after - at_off <= 1  # at most the batch formed as the news came
    samples = seq_samples(centre.victoria, "ledger_event_seq", expected=8_000, timeout=60)
    stored = {seq for _ts, seq in set(samples)}
    assert set(range(1, 8_001)) <= stored


def test_events_larger_than_the_declared_batch_bytes_go_alone(
    tmp_path: Path, mosquitto: Mosquitto, centre: Centre
) -> None:
    """A consumer may declare batches as small as 1 KiB: a larger event goes alone."""
    small = encode_declaration(
        "ingest", "city", "2026-12-01T16:00:00.000Z", ["sensor_reading"], max_bytes=1024,
        max_events=10,
    )  # fmt: skip
    centre.declare(small)
    app = App(settings_for(tmp_path, mosquitto.port, outbox={"batch": "negotiate"}))
    big = [sensor_draft(n) for n in range(100)]
    for n, draft in enumerate(big):
        if n % 3 == 0:
            draft.data["extra"] = {"note": "x" * 1500}  # one event > 1 KiB
    try:
        app.start()
        assert polling.wait_for(lambda: outbox_health(app)["batch_state"] == "on", 10)
        seqs = send(app, big)
        assert polling.wait_for(lambda: set(seqs) <= delivered(centre), 10)
    finally:
        app.stop()
    # (How many batches the small events make depends on the bulk window's room.)
