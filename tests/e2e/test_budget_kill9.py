"""``kill -9`` of a unit under a byte budget: every crossing it held reaches the broker once.

``gateway run`` (a child process) with the simulated camera (the demo detector, a
counting line, an aggregate every 4 s), synthetic sensor readings and a day's budget
used up (level ``coarse_sensors``: every crossing held for its aggregate, readings
summarized). Once aggregates have let held crossings go and more are held, the unit is
stopped (SIGSTOP), its outbox read as the kill leaves it, killed (SIGKILL), and started
again. At the broker (real Mosquitto): no crossing of the first run arrived raw before
the kill; after the restart each crossing held at the kill arrives raw, once, and none
that an aggregate of the first run counted; the first run's open summary arrives with
every reading it took (the synthetic readings count 1, 2, ... n: count n, mean (n+1)/2).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.budget.held import decode_draft
from gateway.config.patch import to_toml
from gateway.config.settings import validate_settings
from gateway.demo.scenario import camera_config, detector_config
from gateway.events import validate_event
from gateway.events.envelope import format_ts
from gateway.localservers import Mosquitto
from tests.support import polling
from tests.support.cli import start_gateway
from tests.support.transport import Collector, gateway_config

LIMIT = 65_536
BASE = "city/sejong-1/rsu-0001"


def _config(tmp_path: Path, port: int) -> Path:
    camera = camera_config(seed=3, realtime=False).model_dump(mode="json")
    camera["aggregate_interval_s"] = 4.0
    camera["source"]["density"] = 3.0
    data = gateway_config(
        tmp_path,
        port,
        detector=detector_config().model_dump(mode="json"),
        cameras=[camera],
        budget={"bytes_per_day": LIMIT, "sensor_interval_s": 3600},
        events={"health_interval_s": 1, "synthetic_events_per_s": 5},
    )
    validate_settings(data)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    usage = {"day": day, "day_bytes": LIMIT, "month": day[:7], "month_bytes": LIMIT}
    (data_dir / "budget.json").write_text(json.dumps(usage))  # used up: the last level
    path = tmp_path / "gateway.toml"
    path.write_text(to_toml(data))
    return path


def _held(data_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The held crossings and open summaries in the unit's outbox now (read-only)."""
    path = data_dir / "outbox.sqlite3"
    if not path.exists():  # not created yet
        return [], []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            rows = db.execute("SELECT draft FROM budget_held ORDER BY id").fetchall()
            states = db.execute("SELECT state FROM budget_summaries").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return [], []
    crossings = []
    for (text,) in rows:
        draft = decode_draft(text)
        crossings.append({**draft.data, "ts": format_ts(draft.timestamp)})
    return crossings, [json.loads(state) for (state,) in states]


def _events(collector: Collector, kind: str) -> list[dict[str, Any]]:
    """Events of ``kind`` at the broker, one per id (a redelivered copy is the same event)."""
    by_id = {e["id"]: e for e in collector.payloads() if e.get("type") == kind}
    for event in by_id.values():
        validate_event(event)
    return list(by_id.values())


def _identity(crossing: dict[str, Any]) -> tuple[Any, ...]:
    data = crossing.get("data", crossing)
    return (crossing["ts"], data["line"], data["track_id"], data["label"], data["direction"])


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _withheld(aggregate: dict[str, Any]) -> tuple[int, int]:
    data = aggregate["data"]
    counted = sum(
        n for dirs in data["lines"].values() for lab in dirs.values() for n in lab.values()
    )
    return counted, int(data.get("crossings_withheld", 0))


@pytest.mark.slow
def test_a_killed_unit_sends_every_crossing_its_budget_held(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """About 15-25 s: two starts of ``gateway run`` with the demo detector on the simulator."""
    config = _config(tmp_path, mosquitto.port)
    data_dir = tmp_path / "data"
    collector = Collector(mosquitto.port, [f"{BASE}/#"], client_id="audit")
    log = (tmp_path / "unit.log").open("wb")  # a pipe nobody reads could fill and block it
    unit = start_gateway(config, stdout=subprocess.DEVNULL, stderr=log)
    try:
        # Aggregates have let held crossings go, and more are held since the last one (as
        # the unit's health reports it: the test does not need the unit's file to start).
        def budget() -> dict[str, Any]:
            reports = _events(collector, "health")
            latest = max(reports, key=lambda e: e["seq"]) if reports else {"data": {}}
            return dict(latest["data"].get("budget") or {})

        def mid_interval() -> bool:
            report = budget()
            return (
                len(_events(collector, "aggregate")) >= 1
                and report.get("crossings_held", 0) >= 5
                and report.get("readings_summarized", 0) >= 3
            )

        assert polling.wait_for(mid_interval, 60), f"the unit held nothing: {budget()}"
        os.kill(unit.pid, signal.SIGSTOP)  # no transaction can commit now
        killed_at = time.time()
        held, summaries = _held(data_dir)
        os.kill(unit.pid, signal.SIGKILL)
        unit.wait(10)
        time.sleep(0.5)  # whatever the broker had of the first run is delivered
        report = budget()
        assert report["level"] == "coarse_sensors"
        assert _events(collector, "line_crossing") == []  # all held (the level from the start)
        assert _events(collector, "sensor_reading") == []  # all summarized

        unit = start_gateway(config, stdout=subprocess.DEVNULL, stderr=log)

        def first_run_arrived() -> bool:
            early = [e for e in _events(collector, "line_crossing") if _epoch(e["ts"]) < killed_at]
            summaries = [e for e in _events(collector, "sensor_reading") if "summary" in e["data"]]
            return len(early) >= len(held) and bool(summaries)

        assert polling.wait_for(first_run_arrived, 30), "the held crossings did not arrive"
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(30)
        log.close()
        collector.close()
    err = (tmp_path / "unit.log").read_text(errors="replace")
    assert unit.returncode == 0, err[-3000:]
    assert "the last run ended without stopping" in err
    second = [h for h in _events(collector, "health") if _epoch(h["ts"]) > killed_at]
    assert second and all(
        h["data"]["budget"]["recovered_held"] == len(held) + len(summaries) for h in second
    )
    assert all(h["data"]["budget"]["unreadable_held"] == 0 for h in second)

    crossings = _events(collector, "line_crossing")
    early = [e for e in crossings if _epoch(e["ts"]) < killed_at]
    # Each crossing held at the kill arrived raw exactly once (no two ids for one crossing)...
    assert Counter(_identity(e) for e in early) == Counter(_identity(c) for c in held)
    # ... and none an aggregate of the first run counted (those were let go with it).
    first_aggregates = [
        a for a in _events(collector, "aggregate") if _epoch(a["data"]["end"]) < killed_at
    ]
    counted_until = max(_epoch(a["data"]["end"]) for a in first_aggregates)
    assert all(_epoch(e["ts"]) > counted_until for e in early)
    withheld = 0
    for aggregate in first_aggregates:
        counted, held_back = _withheld(aggregate)
        assert held_back == counted  # every crossing of the first run was held
        withheld += held_back
    # The killed process's own count at its last health report: no crossing missing.
    assert withheld + len(early) >= report["crossings_withheld"] + report["crossings_held"]
    # The first run's open summary: every reading it took (1..n), closed with its count.
    (first,) = [
        e
        for e in _events(collector, "sensor_reading")
        if "summary" in e["data"] and _epoch(e["data"]["summary"]["start"]) < killed_at
    ]
    n = first["data"]["summary"]["count"]
    assert [summary["count"] for summary in summaries] == [n] and n >= report["readings_summarized"]
    assert n == first["data"]["summary"]["max"]["n"]
    assert first["data"]["values"]["n"] == pytest.approx((n + 1) / 2)
    assert first["data"]["summary"]["min"]["n"] == 1
