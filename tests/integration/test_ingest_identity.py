"""The ingest takes a unit's identity from the topic (bound to its certificate by the ACL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.settings import validate_settings
from gateway.ingest.decode import IDENTITY_MISMATCH, RejectedError, check_identity
from gateway.localservers import VictoriaMetrics
from tests.support.ingest import line_event, start_worker
from tests.support.security import Fleet, SecureBroker, TlsClient, secure_broker

EVENT = line_event(1)  # gateway rsu-0001 at site sejong-1


@pytest.mark.parametrize(
    ("prefix", "topic", "error"),
    [
        ("city", "city/sejong-1/rsu-0001/events/cam-1/line_crossing", None),
        ("city/east", "city/east/sejong-1/rsu-0001/health", None),
        (
            "city",
            "city/sejong-1/rsu-0002/events/cam-1/line_crossing",
            "payload says sejong-1/rsu-0001",
        ),
        (
            "city",
            "city/other/rsu-0001/events/cam-1/line_crossing",
            r"the sender\) is other/rsu-0001",
        ),
        ("city", "town/sejong-1/rsu-0001/events/cam-1/line_crossing", "not a gateway topic"),
        ("city", "city/sejong-1/rsu-0001/teleport", "not a gateway topic"),
        ("city/east", "city/sejong-1/rsu-0001/health", "not a gateway topic"),
    ],
)
def test_identity_comes_from_the_topic(prefix: str, topic: str, error: str | None) -> None:
    if error is None:
        check_identity(prefix, topic, EVENT)
        return
    with pytest.raises(RejectedError, match=error) as info:
        check_identity(prefix, topic, EVENT)
    assert info.value.reason == IDENTITY_MISMATCH


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    f = Fleet(tmp_path / "fleet")
    f.unit("sejong-1", "rsu-0001")
    f.unit("sejong-1", "rsu-0002")
    f.ingest("w1")
    f.operator("alice")
    return f


@pytest.fixture
def broker(tmp_path: Path, fleet: Fleet) -> Iterator[SecureBroker]:
    yield from secure_broker(tmp_path / "broker", fleet)


def ingest_settings(fleet: Fleet, broker: SecureBroker, db: VictoriaMetrics, data_dir: Path) -> Any:
    return validate_settings(
        {
            "gateway": {"data_dir": str(data_dir)},  # the dead-letter store lives there
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "tls": fleet.tls(fleet.ids / "ingest.w1"),
                "reconnect_min_s": 1,
                "reconnect_max_s": 2,
            },
            "ingest": {
                "stats_interval_s": 1.0,
                "influx": {"url": db.url, "token": "t", "flush_interval_s": 0.2},
            },
        }
    )


def test_unit_posing_as_another_is_dead_lettered_on_the_real_broker(
    fleet: Fleet, broker: SecureBroker, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    letters = TlsClient(broker, fleet.ids / "operator.alice")
    assert letters.connect() == "connected"
    letters.subscribe("city/ingest/deadletter")
    worker = start_worker(ingest_settings(fleet, broker, victoria, tmp_path / "data"))
    unit_b = TlsClient(broker, fleet.ids / "sejong-1.rsu-0002")
    try:
        assert unit_b.connect() == "connected"
        own = "city/sejong-1/rsu-0002/events/cam-1/line_crossing"
        honest = {**line_event(1), "gateway": "rsu-0002"}
        forged = line_event(2)  # claims to be rsu-0001, published under rsu-0002's topic
        assert unit_b.publish(own, json.dumps(honest).encode()) == 0
        assert unit_b.publish(own, json.dumps(forged).encode()) == 0
        assert letters.wait_received("deadletter")
        rows = victoria.export_until('{__name__="line_crossing_seq"}', lambda r: len(r) >= 1)
    finally:
        unit_b.close()
        worker.stop()
        letters.close()
    body = json.loads(letters.received("deadletter")[0].payload)
    assert body["reason"] == IDENTITY_MISMATCH
    assert body["topic"] == own
    assert "payload says sejong-1/rsu-0001" in body["detail"]
    assert worker.stats.snapshot()["dead_letter"][IDENTITY_MISMATCH] == 1
    assert [r["metric"]["gateway"] for r in rows] == ["rsu-0002"]  # type: ignore[index]
    broker.wait_log("as ingest:w1 (p5")  # the worker's client id is its certificate's name
