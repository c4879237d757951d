"""The delivery ledger end to end: unit -> Mosquitto -> ingest -> VictoriaMetrics -> audit.

Each test runs the real App (outbox, forwarder, MQTT link) and a real ingest worker, and
ends with ``gateway ingest audit`` (the CLI, in process) over what the database holds.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.events import Draft
from gateway.ingest.audit import audit
from gateway.ingest.ledger_vm import VictoriaMetricsReader
from gateway.localservers import Mosquitto, VictoriaMetrics
from tests.support.ingest import seq_samples, settings_for, start_worker
from tests.support.polling import wait_until
from tests.support.transport import settings_for as gateway_settings

pytestmark = pytest.mark.slow


def reading(n: int, pad: int = 0) -> Draft:
    values: dict[str, Any] = {"n": n, **({"pad": "x" * pad} if pad else {})}
    return Draft(
        "sensor_reading",
        "pm-1",
        time.time(),
        {"sensor": "pm-1", "protocol": "test", "values": values, "extra": {}},
    )


def unit(tmp_path: Path, port: int, **outbox: Any) -> App:
    return App(gateway_settings(tmp_path, port, outbox=outbox or {}))


def run_audit(tmp_path: Path, victoria: VictoriaMetrics, *extra: str) -> tuple[int, dict[str, Any]]:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[ingest.influx]\nurl = "{victoria.url}"\ntoken = "t"\nquery_api = "victoriametrics"\n'
    )
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["ingest", "audit", "-c", str(config), "--since", "1h", "--json", *extra])
    report: dict[str, Any] = json.loads(out.getvalue())
    return code, report


def settled(victoria: VictoriaMetrics, manifests: int, waiting: bool = False) -> None:
    """Wait until the database holds ``manifests`` manifests and nothing is on its way."""

    def done() -> bool:
        victoria.flush()
        now = int(time.time() * 1000)
        result = audit(VictoriaMetricsReader(victoria.url), now - 3_600_000, now + 60_000)
        days = result.days
        count = sum(d.manifests for d in days)
        pending = any(d.waiting for d in days) or any(
            g.cause == "transit" for d in days for g in d.gaps
        )
        return count >= manifests and (waiting or not pending)

    wait_until(done, timeout=30, what=f"{manifests} manifests reconciled")


def per_manifest(rows: list[dict[str, Any]]) -> dict[int, float]:
    """Account values by manifest time (the last one written for each)."""
    out: dict[int, float] = {}
    for row in rows:
        out.update(zip(row["timestamps"], row["values"], strict=True))
    return out


def only_day(report: dict[str, Any]) -> dict[str, Any]:
    (day,) = report["days"]
    return day  # type: ignore[no-any-return]


def test_a_clean_run_audits_complete(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # Two workers share the subscription, so each writes part of the receipts; the first
    # also reconciles on its own, every half second.
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path, ledger_audit_interval_s=0.5))
    other = start_worker(settings_for(mosquitto, victoria, tmp_path), "w2")
    app = unit(tmp_path, mosquitto.port)
    try:
        app.start()
        for n in range(0, 300, 50):
            app.emit([reading(i) for i in range(n, n + 50)])
        app.publish_manifest()
        app.emit([reading(i) for i in range(300, 320)])
        app.stop()  # a last manifest
        settled(victoria, 2)
        accounts = victoria.export_until(
            '{__name__="ledger_account_stored",status="complete"}',
            lambda rows: len(per_manifest(rows)) >= 2,
        )
    finally:
        worker.stop()
        other.stop()
    assert worker.stats.events_written > 0 and other.stats.events_written > 0
    assert worker.ledger.runs > 0 and worker.ledger.last_unexplained == 0
    code, report = run_audit(tmp_path, victoria)
    day = only_day(report)
    assert sum(per_manifest(accounts).values()) == day["stored"]  # the worker's own accounts
    assert code == 0, report
    assert day["status"] == "complete"
    assert day["manifests"] == 2
    assert day["expected"] == day["stored"] >= 320
    assert (day["missing_unit"], day["missing_transit"], day["waiting"]) == (0, 0, 0)
    assert day["chain_mismatches"] == 0 and day["chain_unverified"] == 0
    assert day["reused"] == [] and day["gaps"] == []
    assert day["types"] == day["types_stored"]
    assert day["types"]["sensor_reading"] == 320 and day["types"]["manifest"] == 1
    assert run_audit(tmp_path, victoria, "--unit", "rsu-0001")[1]["days"] == report["days"]
    assert run_audit(tmp_path, victoria, "--unit", "rsu-0002")[1]["days"] == []


def test_an_outbox_drop_under_its_bounds_is_a_gap_of_the_unit(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    mosquitto.stop()  # the unit's link is down: its outbox fills and drops its oldest
    app = unit(tmp_path, mosquitto.port, max_bytes=256 * 1024)
    try:
        app.start()
        for n in range(0, 2000, 100):
            app.emit([reading(i, pad=300) for i in range(n, n + 100)])
        dropped = app.outbox.dropped
        assert dropped > 0
        mosquitto.start()
        wait_until(lambda: app.outbox.depth == 0, timeout=30, what="the outbox drained")
        app.stop()
        settled(victoria, 1)
    finally:
        worker.stop()
    code, report = run_audit(tmp_path, victoria)
    day = only_day(report)
    assert code == 0, report
    assert day["status"] == "explained"
    assert day["missing_unit"] == dropped and day["missing_transit"] == 0
    assert {g["cause"] for g in day["gaps"]} == {"unit"}
    assert {g["detail"] for g in day["gaps"]} == {"bound_size"}
    assert day["stored"] + dropped == day["expected"]
    by_type = {t: n - day["types_stored"].get(t, 0) for t, n in day["types"].items()}
    assert sum(by_type.values()) == dropped and by_type["sensor_reading"] > 0


def test_messages_deleted_at_the_broker_are_a_gap_in_transit(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto, victoria, tmp_path, ledger_audit_interval_s=0.5)
    worker = start_worker(settings)
    app = unit(tmp_path, mosquitto.port)
    try:
        app.start()
        app.emit([reading(i) for i in range(20)])
        seq_samples(victoria, "sensor_n", expected=20)  # written: nothing unacknowledged
        worker.stop()  # its session on the broker queues what comes now
        lost = app.emit([reading(i) for i in range(20, 60)]).seqs
        wait_until(lambda: app.outbox.depth == 0, timeout=20, what="the broker took them")
        mosquitto.stop()  # no persistence: the session and its queue are gone
        mosquitto.start()
        worker = start_worker(settings)
        app.emit([reading(i) for i in range(60, 80)])
        app.publish_manifest()
        wait_until(lambda: app.outbox.depth == 0, timeout=40, what="the rest delivered")
        app.stop()
        settled(victoria, 1, waiting=True)
        wait_until(lambda: bool(_transit(victoria)), timeout=20, what="the gap")
        gaps = victoria.export_until('{__name__="ledger_gap_count",cause="transit"}', bool)
    finally:
        worker.stop()
    assert gaps and worker.ledger.last_unexplained == 1  # the worker saw it too
    code, report = run_audit(tmp_path, victoria)
    day = only_day(report)
    assert code == 3, report
    assert day["status"] == "unexplained"
    transit = [(g["first_seq"], g["last_seq"]) for g in day["gaps"] if g["cause"] == "transit"]
    assert transit == [(lost[0], lost[-1])]
    assert day["missing_unit"] == 0


def _transit(victoria: VictoriaMetrics) -> int:
    now = int(time.time() * 1000)
    return sum(
        d.missing_transit
        for d in audit(VictoriaMetricsReader(victoria.url), now - 3_600_000, now + 60_000).days
    )


def _reused_seqs(victoria: VictoriaMetrics) -> set[int]:
    victoria.flush()
    now = int(time.time() * 1000)
    days = audit(VictoriaMetricsReader(victoria.url), now - 3_600_000, now + 60_000).days
    return {seq for d in days for seq, _ids in d.reused}


def test_seq_reuse_after_a_power_cut_is_reported(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    data = tmp_path / "data"
    saved = tmp_path / "synced"
    try:
        first = unit(tmp_path, mosquitto.port)
        first.start()
        first.emit([reading(i) for i in range(30)])
        first.stop()
        shutil.copytree(data, saved)  # what the disk holds for sure
        second = unit(tmp_path, mosquitto.port)
        second.start()
        reused = second.emit([reading(i) for i in range(30, 60)]).seqs
        wait_until(lambda: second.outbox.depth == 0, timeout=20, what="delivered")
        second.stop()  # delivered, manifest too; then the power cut rolls the outbox back to...
        shutil.rmtree(data)
        shutil.copytree(saved, data)  # ... what was synced, its seq record included
        third = unit(tmp_path, mosquitto.port)
        third.start()
        again = third.emit([reading(i) for i in range(60, 90)]).seqs
        third.stop()
        assert set(reused) & set(again), "the outbox did not reuse seqs"
        settled(victoria, 3)  # each run's closing manifest
        both = sorted(set(reused) & set(again))
        # The third run's readings may still be on their way (its manifest travels in an
        # earlier lane); until they are written their seqs hold the second run's copies
        # alone, which reads as stored, not reused.
        wait_until(lambda: set(both) <= _reused_seqs(victoria), timeout=20, what="reuse")
    finally:
        worker.stop()
    code, report = run_audit(tmp_path, victoria)
    day = only_day(report)
    seqs = [r["seq"] for r in day["reused"]]
    # Both runs after the snapshot allocated the same seqs (health and manifests too).
    assert set(both) <= set(seqs), (both, seqs)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs
    assert all(len(r["ids"]) == 2 for r in day["reused"])
    assert day["missing_transit"] == 0 and day["chain_mismatches"] == 0
    assert code == 0, report


def test_a_unit_without_manifests_is_unverified_not_complete(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    worker = start_worker(settings_for(mosquitto, victoria, tmp_path))
    app = App(gateway_settings(tmp_path, mosquitto.port, events={"manifest_interval_s": 0}))
    try:
        app.start()
        app.emit([reading(i) for i in range(25)])
        seq_samples(victoria, "sensor_n", expected=25)
        app.stop()
    finally:
        worker.stop()
    victoria.flush()
    code, report = run_audit(tmp_path, victoria)
    day = only_day(report)
    assert code == 0, report
    assert day["status"] == "unverified" and day["manifests"] == 0 and day["stored"] >= 25
