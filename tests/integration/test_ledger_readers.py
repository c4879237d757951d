"""The ledger audit over both readers: VictoriaMetrics' export and InfluxQL (InfluxDB 1.6).

The same scenarios as the end-to-end ledger tests (a complete day, a gap the unit's
bound explains, a gap lost in transit, duplicates, reused seqs), built with a real
outbox and the ingest's own conversion (``tests/support/ledger.py``) and written to a
real database, must give the same verdicts whichever database and reader hold them.
InfluxDB 1.6 (Debian's) has no ``/api/v2/write``: its bodies go through v1 ``/write``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.config.ingest import InfluxConfig, IngestConfig
from gateway.events import Topics
from gateway.ingest.database import Database
from gateway.ingest.ledgerloop import LedgerAuditor
from gateway.localservers import InfluxDB, VictoriaMetrics
from tests.support.ledger import LedgerDb, LedgerUnit


@pytest.fixture(params=["victoriametrics", "influxql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerDb]:
    server: VictoriaMetrics | InfluxDB
    if request.param == "influxql":
        server = InfluxDB(tmp_path / "influxdb")
    else:
        server = VictoriaMetrics(tmp_path / "victoria")
    server.start()
    yield LedgerDb(request.param, server)
    server.stop()


@dataclass
class Outcome:
    """What a scenario made happen, and what the audit must say about it."""

    status: str
    code: int = 0
    missing_unit: int = 0
    transit: list[tuple[int, int]] = field(default_factory=list)
    unit_causes: set[str] = field(default_factory=set)
    duplicates: dict[str, int] = field(default_factory=dict)  # per reader
    reused: list[int] = field(default_factory=list)


def complete(tmp_path: Path, db: LedgerDb) -> Outcome:
    unit = LedgerUnit(tmp_path / "unit" / "outbox.db")
    for n in range(0, 200, 50):
        unit.emit(n, 50)
    unit.manifest()
    unit.emit(200, 20)
    unit.manifest()
    db.write(list(unit.deliver().values()))
    unit.close()
    return Outcome("complete")


def bound_drop(tmp_path: Path, db: LedgerDb) -> Outcome:
    unit = LedgerUnit(tmp_path / "unit" / "outbox.db", max_bytes=256 * 1024)
    for n in range(0, 2000, 100):  # the link is down: the outbox drops its oldest
        unit.emit(n, 100, pad=300)
    dropped = unit.box.dropped
    assert dropped > 0
    db.write(list(unit.deliver().values()))
    unit.manifest()
    db.write(list(unit.deliver().values()))
    unit.close()
    return Outcome("explained", missing_unit=dropped, unit_causes={"bound_size"})


def transit_loss(tmp_path: Path, db: LedgerDb) -> Outcome:
    unit = LedgerUnit(tmp_path / "unit" / "outbox.db")
    unit.emit(0, 20)
    lost = unit.emit(20, 40)
    unit.emit(60, 20)
    bodies = unit.deliver()  # the broker took them all; these never reach the database
    db.write([body for seq, body in bodies.items() if seq not in lost])
    unit.manifest()  # nothing waits in the outbox any more
    db.write(list(unit.deliver().values()))
    unit.close()
    return Outcome("unexplained", code=3, transit=[(lost[0], lost[-1])])


def duplicates(tmp_path: Path, db: LedgerDb) -> Outcome:
    unit = LedgerUnit(tmp_path / "unit" / "outbox.db")
    seqs = unit.emit(0, 50)
    unit.manifest()
    bodies = unit.deliver()
    db.write(list(bodies.values()))
    db.write([bodies[s] for s in seqs[10:17]])  # redelivered after a worker crash
    unit.close()
    # VictoriaMetrics keeps both copies; InfluxDB overwrites the point (same series, time).
    return Outcome("complete", duplicates={"victoriametrics": 7, "influxql": 0})


def reused_seqs(tmp_path: Path, db: LedgerDb) -> Outcome:
    home, saved = tmp_path / "unit", tmp_path / "synced"
    first = LedgerUnit(home / "outbox.db")
    first.emit(0, 30)
    first.manifest()
    db.write(list(first.deliver().values()))
    first.close()
    shutil.copytree(home, saved)  # what the disk holds for sure
    second = LedgerUnit(home / "outbox.db")
    before = second.emit(30, 30)
    second.manifest()
    db.write(list(second.deliver().values()))
    second.close()
    shutil.rmtree(home)  # the power cut rolls the outbox back, its seq record too
    shutil.copytree(saved, home)
    third = LedgerUnit(home / "outbox.db")
    after = third.emit(60, 30)
    third.manifest()
    db.write(list(third.deliver().values()))
    third.close()
    both = sorted(set(before) & set(after))
    assert both, "the outbox did not reuse seqs"
    return Outcome("complete", reused=both)


SCENARIOS: dict[str, Callable[[Path, LedgerDb], Outcome]] = {
    "complete": complete,
    "bound_drop": bound_drop,
    "transit_loss": transit_loss,
    "duplicates": duplicates,
    "reused_seqs": reused_seqs,
}


def only_day(report: dict[str, Any]) -> dict[str, Any]:
    (day,) = report["days"]
    return day  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_readers_give_the_same_verdict(name: str, db: LedgerDb, tmp_path: Path) -> None:
    expected = SCENARIOS[name](tmp_path, db)
    code, report = db.audit(tmp_path)
    day = only_day(report)
    assert code == expected.code, json.dumps(report)
    assert day["status"] == expected.status, day
    assert day["unit"] == "rsu-0001" and day["site"] == "sejong-1"
    assert day["missing_unit"] == expected.missing_unit
    assert day["stored"] + day["missing_unit"] + day["missing_transit"] == day["expected"]
    transit = [(g["first_seq"], g["last_seq"]) for g in day["gaps"] if g["cause"] == "transit"]
    assert transit == expected.transit
    assert {g["detail"] for g in day["gaps"] if g["cause"] == "unit"} == expected.unit_causes
    assert day["duplicates"] == expected.duplicates.get(db.api, 0)
    reused = [r["seq"] for r in day["reused"]]
    assert set(expected.reused) <= set(reused), (expected.reused, reused)
    assert all(len(r["ids"]) == 2 for r in day["reused"])
    assert day["chain_mismatches"] == 0
    if not day["gaps"]:
        assert day["chain_unverified"] == 0  # every chain checked, and ok
    assert day["waiting"] == 0
    assert db.audit(tmp_path, "--unit", "rsu-0002")[1]["days"] == []
    assert db.audit(tmp_path, "--unit", "rsu-0001")[1]["days"] == report["days"]


def test_units_are_audited_one_by_one_and_one_without_manifests_is_unverified(
    db: LedgerDb, tmp_path: Path
) -> None:
    complete_unit = LedgerUnit(tmp_path / "a" / "outbox.db", topics=Topics("city", "s-1", "rsu-a"))
    complete_unit.emit(0, 30)
    complete_unit.manifest()
    silent = LedgerUnit(tmp_path / "b" / "outbox.db", topics=Topics("city", "s-2", "rsu-b"))
    silent.emit(0, 25)  # manifests off (or a unit too old to send them)
    lossy = LedgerUnit(tmp_path / "c" / "outbox.db", topics=Topics("city", "s-1", "rsu-c"))
    lost = lossy.emit(0, 10)
    lossy.emit(10, 10)
    bodies = lossy.deliver()
    lossy.manifest()
    db.write([body for seq, body in bodies.items() if seq not in lost[3:5]])
    for unit in (complete_unit, silent, lossy):
        db.write(list(unit.deliver().values()))
        unit.close()
    code, report = db.audit(tmp_path)
    assert code == 3, report
    by_unit = {d["unit"]: d for d in report["days"]}
    assert {u: (d["status"], d["stored"]) for u, d in by_unit.items()} == {
        "rsu-a": ("complete", 30),
        "rsu-b": ("unverified", 25),
        "rsu-c": ("unexplained", 18),
    }
    assert by_unit["rsu-b"]["site"] == "s-2"
    gaps = [(g["first_seq"], g["last_seq"], g["cause"]) for g in by_unit["rsu-c"]["gaps"]]
    assert gaps == [(lost[3], lost[4], "transit")]
    assert db.audit(tmp_path, "--unit", "rsu-b")[1]["days"] == [by_unit["rsu-b"]]


def test_the_workers_periodic_audit_reads_influxdb(
    influxdb: InfluxDB, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    # The worker's auditor reads with its query_api; InfluxDB 1.6 cannot take the accounts
    # (no /api/v2/write), so they go to a VictoriaMetrics here.
    scenario = transit_loss(tmp_path, LedgerDb("influxql", influxdb))
    influx = {"url": influxdb.url, "query_api": "influxql"}
    config = IngestConfig.model_validate({"ledger_audit_interval_s": 60, "influx": influx})
    auditor = LedgerAuditor(config)
    accounts = Database(InfluxConfig(url=victoria.url, token="t"))
    try:
        auditor.run_once(accounts)
    finally:
        accounts.close()
    assert auditor.runs == 1 and auditor.last_unexplained == 1
    gaps = victoria.export_until('{__name__="ledger_gap_count",cause="transit"}', bool)
    first, last = scenario.transit[0]
    assert [row["values"] for row in gaps] == [[last - first + 1]]
