"""``gateway ngsi bridge``: from a real Mosquitto into a (loopback) NGSI-LD context broker.

Nothing is acknowledged before the context broker has it: a broker that is away for a
while, and a bridge killed with SIGKILL while it is away, lose no observation; what the
context broker refuses goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.ngsi import NgsiConfig
from gateway.config.patch import to_toml
from gateway.events import envelope
from gateway.events.builder import from_analytics
from gateway.localservers import Mosquitto
from gateway.ngsi.bridge import NgsiBridge
from gateway.ngsi.validate import entity_problems
from gateway.vision.analytics.types import FlowReport, LaneFlow
from tests.support.ingest import Publisher
from tests.support.ngsi import ContextBrokerStub
from tests.support.polling import wait_for
from tests.support.transport import Collector

pytestmark = pytest.mark.slow
T0 = time.time() - 3600


def flow_event(seq: int) -> dict[str, Any]:
    lane = LaneFlow(volume={"car": seq, "truck": 1}, occupancy=0.1, headways=seq, speeds=0)
    end = T0 + 60 * seq
    report = FlowReport("cam", end - 60, end, lanes={"in-N": lane, "out-S": LaneFlow(volume={})})
    return envelope(
        from_analytics(report), seq=seq, event_id=f"{seq:032x}", gateway="gw-1", site="site-1"
    )


def observed(stub: ContextBrokerStub) -> set[tuple[str, str]]:
    return {(e["id"], e["dateObserved"]["value"]["@value"]) for body in stub.bodies for e in body}


def config(mosquitto: Mosquitto, stub: ContextBrokerStub) -> dict[str, Any]:
    return {
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "reconnect_min_s": 0.2},
        "locations": {"site-1": [127.29, 36.48]},
        "bridge": {"url": stub.url, "retry_max_s": 0.5, "flush_interval_s": 0.2},
    }


@pytest.fixture
def stub() -> Iterator[ContextBrokerStub]:
    broker = ContextBrokerStub([])
    yield broker
    broker.close()


def test_a_context_broker_away_for_a_while_loses_nothing(
    mosquitto: Mosquitto, stub: ContextBrokerStub
) -> None:
    stub.default = 503  # away
    bridge = NgsiBridge(NgsiConfig.model_validate(config(mosquitto, stub)), "w1")
    bridge.start()
    publisher = Publisher(mosquitto.port)
    try:
        assert bridge.subscribed.wait(15)
        for seq in range(1, 6):
            publisher.event(flow_event(seq))
        publisher.publish("city/site-1/gw-1/sensors/pm-1", b"{not json")
        publisher.publish(
            "city/site-1/gw-1/events/cam/alert",
            json.dumps(
                {
                    **flow_event(9),
                    "type": "alert",
                    "data": {"camera": "cam", "kind": "wrong_way", "details": {}},
                }
            ),
        )
        publisher.wait_all()
        assert wait_for(lambda: stub.attempts >= 3, 30.0)
        assert (
            bridge.snapshot()["pending_acks"] == 6
        )  # 5 flow events held, 1 alert beyond a held one
        stub.default = 204  # back
        assert wait_for(lambda: len(observed(stub)) == 5 * 4, 30.0)
        assert wait_for(lambda: bridge.snapshot()["pending_acks"] == 0, 30.0)
    finally:
        publisher.close()
        bridge.stop()
    counts = bridge.snapshot()
    assert counts["converted"] == 5
    assert counts["invalid"] == 1
    assert counts["retries"] >= 2
    assert all(entity_problems(e) == [] for body in stub.bodies for e in body)


def run_bridge(path: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["ngsi", "bridge", "--config", str(path), "--worker", "w9"]
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], stdout=subprocess.DEVNULL, stderr=err
        )


def test_a_bridge_killed_while_the_context_broker_is_away_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, stub: ContextBrokerStub
) -> None:
    stub.default = 503
    path = tmp_path / "ngsi.toml"
    path.write_text(to_toml(config(mosquitto, stub)))
    log = tmp_path / "bridge.log"
    first = run_bridge(path, log)
    publisher = Publisher(mosquitto.port)
    second = None
    try:
        # Until the bridge has subscribed, the broker drops what nobody subscribes to:
        # publish the first event until it reaches the (failing) context broker.
        deadline = time.monotonic() + 30
        while stub.attempts == 0 and time.monotonic() < deadline:
            publisher.event(flow_event(1))
            publisher.wait_all()
            wait_for(lambda: stub.attempts > 0, 1.0)
        assert first.poll() is None
        for seq in range(2, 9):
            publisher.event(flow_event(seq))
        publisher.wait_all()
        seen = stub.attempts
        assert wait_for(lambda: stub.attempts >= seen + 2, 30.0)  # it has them and keeps trying
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stub.default = 204
        second = run_bridge(path, log)
        assert wait_for(lambda: len(observed(stub)) == 8 * 4, 40), log.read_text()[-2000:]
    finally:
        publisher.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert second is not None
    assert second.returncode == 0, log.read_text()[-2000:]
    assert "ngsi bridge w9 stopped" in log.read_text()


def test_refused_batches_go_to_the_dead_letter_topic(
    mosquitto: Mosquitto, stub: ContextBrokerStub
) -> None:
    stub.statuses = [400]
    letters = Collector(mosquitto.port, ["city/ngsi/deadletter"])
    bridge = NgsiBridge(NgsiConfig.model_validate(config(mosquitto, stub)), "w2")
    bridge.start()
    publisher = Publisher(mosquitto.port)
    try:
        assert bridge.subscribed.wait(15)
        publisher.event(flow_event(1))
        publisher.wait_all()
        assert letters.wait_for(lambda: len(letters.payloads()) == 1)
        publisher.event(flow_event(2))  # the next one goes through
        publisher.wait_all()
        assert wait_for(lambda: len(observed(stub)) == 4, 30.0)
        assert wait_for(lambda: bridge.snapshot()["pending_acks"] == 0, 30.0)
    finally:
        publisher.close()
        bridge.stop()
        letters.close()
    (letter,) = letters.payloads()
    assert letter["reason"] == "ngsi_refused"
    assert "HTTP 400" in letter["detail"]
    assert json.loads(letter["payload"])["seq"] == 1
