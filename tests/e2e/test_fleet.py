"""The fleet simulator against a real Mosquitto: schema-valid events, exact counts, outages."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from gateway.events import validate_event
from gateway.localservers import Mosquitto
from simulators.fleet.gateway import Profile, VirtualGateway
from simulators.fleet.runner import TICK_S, run_fleet
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def collect(port: int) -> Iterator[list[tuple[str, dict[str, Any], bool]]]:
    got: list[tuple[str, dict[str, Any], bool]] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-test-sub")
    client.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload), m.retain))
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10)
    try:
        yield got
    finally:
        client.disconnect()
        client.loop_stop()


def test_fleet_events_are_valid_and_counted(mosquitto: Mosquitto) -> None:
    profile = Profile(
        rate=8.0,
        cameras=2,
        aggregate_s=1.0,
        sensor_s=1.0,
        health_s=1.5,
        outage_rate=0.3,
        outage_s=1.0,
    )
    with collect(mosquitto.port) as got:
        report = run_fleet(
            gateways=3, profile=profile, seconds=4.0, host="127.0.0.1", port=mosquitto.port, seed=5
        )
        deadline = __import__("time").monotonic() + 10
        while sum(1 for m in got if m[1]["type"] != "availability") < report.total:
            assert __import__("time").monotonic() < deadline, "events missing at the subscriber"
            __import__("time").sleep(0.05)
    per_gateway: dict[str, Counter[str]] = defaultdict(Counter)
    seqs: dict[str, list[int]] = defaultdict(list)
    for topic, event, _retain in got:
        validate_event(event)
        assert topic.startswith(f"city/fleet/{event['gateway']}/")
        if event["type"] == "availability":
            continue
        per_gateway[event["gateway"]][event["type"]] += 1
        seqs[event["gateway"]].append(event["seq"])
    assert set(per_gateway) == {"vgw-0001", "vgw-0002", "vgw-0003"}
    for gid, counts in per_gateway.items():
        assert dict(counts) == report.by_type[gid]
        assert sum(counts.values()) == report.published[gid]
        assert sorted(seqs[gid]) == list(range(1, report.published[gid] + 1))
        assert seqs[gid] == sorted(seqs[gid]), "backlog replayed out of order"
        assert counts["line_crossing"] > 10
        assert counts["aggregate"] >= 4
        assert counts["sensor_reading"] >= 4
        assert counts["health"] >= 2
    assert sum(report.outages.values()) > 0, "seeded run should include an outage"


def test_a_slow_tick_is_not_followed_by_a_burst_of_catch_up_ticks(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a tick that took 1 s the next one covers that second; no zero-wait burst.

    Regression: the loop's deadline advanced by one tick per tick, so after a slow tick
    it lay in the past and the missed ticks ran back to back without waiting.
    """
    stall_s, seconds = 1.0, 2.5
    calls: list[float] = []
    tick = VirtualGateway.tick

    def slow_once(self: VirtualGateway, now: float, dt: float) -> list[Any]:
        calls.append(dt)
        if len(calls) == 3:
            time.sleep(stall_s)  # a broker that held the publisher up
        return tick(self, now, dt)

    monkeypatch.setattr(VirtualGateway, "tick", slow_once)
    run_fleet(
        gateways=1, profile=Profile(rate=1.0), seconds=seconds, host="127.0.0.1",
        port=mosquitto.port,
    )  # fmt: skip
    assert calls[3] >= stall_s, f"the tick after the stall covered {calls[3]:.2f} s"
    # Each tick starts at least TICK_S after the one before, the stalled one lasted stall_s.
    assert len(calls) <= 2 + (seconds - stall_s) / TICK_S, f"{len(calls)} ticks in {seconds} s"


def test_backlog_is_bounded_and_drops_oldest() -> None:
    profile = Profile(rate=50.0, outage_rate=0.0, backlog_max=20)
    vgw = VirtualGateway("g", "s", profile, np.random.default_rng(1), start=1000.0)
    vgw.offline_until = 1010.0
    for k in range(1, 11):
        assert vgw.tick(1000.0 + k * 0.1, 0.1) == []
    assert len(vgw.backlog) == 20
    assert vgw.dropped > 0
    out = vgw.tick(1010.0, 0.1)  # back online: the newest 20 (+ this tick's) in seq order
    seqs = [m.event["seq"] for m in out]
    assert seqs == sorted(seqs)
    assert seqs[-1] == vgw.seq
    assert len(vgw.backlog) == 0


def test_aggregates_sum_the_crossings_of_their_interval() -> None:
    vgw = VirtualGateway(
        "g",
        "s",
        Profile(rate=20.0, cameras=1, aggregate_s=2.0, sensor_s=100, health_s=100),
        np.random.default_rng(2),
        start=0.0,
    )
    crossings = 0
    checked = 0
    for k in range(1, 60):
        for msg in vgw.tick(k * 0.1, 0.1):
            ev = msg.event
            if ev["type"] == "line_crossing":
                crossings += 1
            elif ev["type"] == "aggregate":
                total = sum(
                    n
                    for d in ev["data"]["lines"].values()
                    for lab in d.values()
                    for n in lab.values()
                )
                assert total == crossings
                crossings = 0
                checked += 1
    assert checked >= 2


def test_cli_reports_json(mosquitto: Mosquitto) -> None:
    proc = run_cli(
        "simulators",
        "fleet",
        "--gateways",
        "2",
        "--rate",
        "5",
        "--seconds",
        "1.5",
        "--port",
        str(mosquitto.port),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["published"]) == {"vgw-0001", "vgw-0002"}
    assert report["total"] == sum(report["published"].values()) > 0


@pytest.mark.parametrize("args", [["--gateways", "0"], ["--rate", "-1"], ["--port", "0"]])
def test_cli_bad_arguments_exit_2(args: list[str]) -> None:
    proc = run_cli("simulators", "fleet", *args)
    assert proc.returncode == 2
    assert "Error" in proc.stderr


def test_unreachable_broker_is_one_clear_error() -> None:
    from gateway.localservers import free_port

    proc = run_cli(
        "simulators", "fleet", "--gateways", "1", "--seconds", "1", "--port", str(free_port())
    )
    assert proc.returncode != 0
    assert "cannot connect" in proc.stderr
