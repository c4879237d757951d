"""The campaign's play loop: a fault lasts its planned length even when it starts late.

The loop is one thread; a hostile burst waiting for PUBACKs (5 s when the broker
drops the 2 MiB message) or a slow database export delays the faults due meanwhile.
A late fault must still hold for its length, and faults of one timeline must never
overlap (a broker killed while it is paused).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.bench.chaos.campaign import Campaign, Options
from gateway.bench.chaos.plan import Fault


def _played(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: list[Fault], slow: dict[str, float]
) -> list[tuple[str, str, float]]:
    """Play ``faults`` with stand-in effects; ``slow``: seconds a kind's start takes."""
    campaign = Campaign(Options(seconds=0.0, seed=1), tmp_path)
    events: list[tuple[str, str, float]] = []

    def begin(fault: Fault) -> Callable[[], None] | None:
        events.append(("start", fault.kind, campaign.elapsed()))
        time.sleep(slow.get(fault.kind, 0.0))
        if fault.hold_s == 0 and fault.restart_after_s == 0:
            return None
        return lambda: events.append(("end", fault.kind, campaign.elapsed()))

    for name in ("_watch", "_units_now", "_db_snapshot", "_sample"):
        monkeypatch.setattr(campaign, name, lambda: None)
    monkeypatch.setattr(campaign, "_begin", begin)
    campaign.t0 = time.monotonic()
    campaign._play(faults)
    return events


def test_a_fault_started_late_still_holds_for_its_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = [
        Fault(0.1, "poison", "rogue", count=12),  # its PUBACK wait takes 0.8 s
        Fault(0.2, "broker_pause", "broker", hold_s=0.5),  # due while the burst waits
    ]
    events = _played(tmp_path, monkeypatch, faults, {"poison": 0.8})
    times = {(what, kind): at for what, kind, at in events}
    assert times[("start", "broker_pause")] >= 0.8  # late, as the loop is one thread
    held = times[("end", "broker_pause")] - times[("start", "broker_pause")]
    assert held >= 0.5 - 0.05, f"the 0.5 s pause was held {held:.2f} s"


def test_faults_of_one_timeline_never_overlap_when_one_starts_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = [
        Fault(0.1, "poison", "rogue", count=12),
        Fault(0.2, "broker_pause", "broker", hold_s=0.5),
        Fault(0.8, "broker_kill", "broker", hold_s=0.2, persistence=True),  # planned after it
        Fault(0.3, "db_pause", "database", hold_s=0.2),  # another timeline: may overlap
    ]
    events = _played(tmp_path, monkeypatch, faults, {"poison": 0.8})
    broker = [(what, kind) for what, kind, _ in events if kind.startswith("broker_")]
    assert broker == [
        ("start", "broker_pause"),
        ("end", "broker_pause"),
        ("start", "broker_kill"),
        ("end", "broker_kill"),
    ]
    times = {(what, kind): at for what, kind, at in events}
    assert times[("end", "broker_kill")] - times[("start", "broker_kill")] >= 0.2 - 0.05
    assert times[("start", "db_pause")] < times[("end", "broker_pause")]
