"""Hostile compact batches at a real worker: dead-lettered with a reason, worker alive.

A real worker on real Mosquitto and VictoriaMetrics gets, on a unit's batch topic, a
zip bomb (about 250 KiB inflating to 256 MiB), a truncated stream, a batch with one
bad event and a batch of another unit's events, between good batches: every event of
the good batches is stored, nothing of a bad batch is, each bad one is kept whole as a
dead letter with its reason, and the pipeline is still alive.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from gateway.events.batch import encode_batch
from gateway.ingest.deadstore import DeadLetterStore
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.integration.test_ingest_reliability import DeadLetterListener
from tests.support.ingest import (
    Publisher,
    assert_exactly_once,
    line_event,
    seq_samples,
    settings_for,
    start_worker,
)

TOPIC = "city/sejong-1/rsu-0001/batch"


def _batch(seqs: range, gateway: str = "rsu-0001") -> bytes:
    return encode_batch([json.dumps(line_event(s, gateway)).encode() for s in seqs])


def _bomb() -> bytes:
    inflater = zlib.compressobj(9)
    head = inflater.compress(b'{"schema":1,"events":[')
    body = b"".join(inflater.compress(b" " * (1 << 20)) for _ in range(256))  # 256 MiB
    return head + body + inflater.flush()


def test_hostile_batches_are_dead_lettered_and_good_ones_stored(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path, max_batch_bytes=8 * 1024 * 1024)
    listener = DeadLetterListener(mosquitto.port, settings.ingest.dead_letter_topic)
    worker = start_worker(settings)
    publisher = Publisher(mosquitto.port)
    bad_event = json.dumps({**line_event(1003), "seq": "three"}).encode()
    truncated = _batch(range(900, 950))[:-40]
    poison = [
        (_bomb(), "oversized"),
        (truncated, "malformed_json"),
        (encode_batch([json.dumps(line_event(1001)).encode(), bad_event]), "invalid_event"),
        (_batch(range(2000, 2010), gateway="rsu-0002"), "identity_mismatch"),
    ]
    try:
        publisher.publish(TOPIC, _batch(range(1, 101)))
        for n, (payload, _reason) in enumerate(poison):
            publisher.publish(TOPIC, payload)
            start = 101 + n * 100
            publisher.publish(TOPIC, _batch(range(start, start + 100)))
        publisher.wait_all()
        letters = listener.wait_for(len(poison), timeout=30)
        samples = seq_samples(victoria, expected=500, timeout=30)
        alive = worker.failed is None and not worker.failed_event.is_set()
    finally:
        publisher.close()
        listener.close()
        worker.stop()
    assert alive, f"the pipeline died: {worker.failed!r}"
    assert_exactly_once(samples, range(1, 501))  # nothing of a bad batch (seq 900+, 1001, 2000+)
    assert [m["reason"] for m in letters] == [r for _, r in poison], [m["detail"] for m in letters]
    store = DeadLetterStore(settings.ingest.dead_letter_path or Path(), 2**30)
    kept = store.letters()
    store.close()
    assert [x.reason for x in kept] == [r for _, r in poison]
    assert [x.payload for x in kept[1:]] == [p for p, _ in poison[1:]]  # kept whole (< 1 MiB)
