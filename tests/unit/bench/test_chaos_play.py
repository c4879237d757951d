"""The campaign's play loop: faults start on time and hold for their planned length.

The loop is one thread. A slow start (a database export before a kill) delays the
faults due meanwhile: a late fault must still hold for its length, and faults of one
timeline must never overlap (a broker killed while it is paused). A hostile burst
waits for its PUBACKs (5 s when the broker is paused or drops the 2 MiB message): it
runs on its own thread and must not hold the loop up at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.bench.chaos.campaign import Campaign, Done, Options, _recoveries
from gateway.bench.chaos.hostile import Sent
from gateway.bench.chaos.plan import Fault
from gateway.bench.chaos.records import LossRange, UnitRecord

Events = list[tuple[str, str, float]]


def _campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    campaign = Campaign(Options(seconds=0.0, seed=1), tmp_path)
    for name in ("_watch", "_units_now", "_db_snapshot", "_sample"):
        monkeypatch.setattr(campaign, name, lambda: {})
    campaign.t0 = time.monotonic()
    return campaign


def _stand_in(campaign: Campaign, events: Events, slow: dict[str, float]) -> Callable[..., object]:
    """A fault's effect: record its start and end; ``slow``: seconds a kind's start takes."""

    def begin(fault: Fault) -> Callable[[], None] | None:
        events.append(("start", fault.kind, campaign.elapsed()))
        time.sleep(slow.get(fault.kind, 0.0))
        if fault.hold_s == 0 and fault.restart_after_s == 0:
            return None
        return lambda: events.append(("end", fault.kind, campaign.elapsed()))

    return begin


def _times(events: Events) -> dict[tuple[str, str], float]:
    return {(what, kind): at for what, kind, at in events}


def test_a_fault_started_late_still_holds_for_its_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = _campaign(tmp_path, monkeypatch)
    events: Events = []
    monkeypatch.setattr(campaign, "_begin", _stand_in(campaign, events, {"db_kill": 0.8}))
    campaign._play(
        [
            Fault(0.1, "db_kill", "database", hold_s=0.1),  # its start takes 0.8 s
            Fault(0.2, "broker_pause", "broker", hold_s=0.5),  # due meanwhile
        ]
    )
    times = _times(events)
    assert times[("start", "broker_pause")] >= 0.8  # late: the loop is one thread
    held = times[("end", "broker_pause")] - times[("start", "broker_pause")]
    assert held >= 0.5 - 0.05, f"the 0.5 s pause was held {held:.2f} s"


def test_faults_of_one_timeline_never_overlap_when_one_starts_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = _campaign(tmp_path, monkeypatch)
    events: Events = []
    monkeypatch.setattr(campaign, "_begin", _stand_in(campaign, events, {"db_kill": 0.8}))
    campaign._play(
        [
            Fault(0.1, "db_kill", "database", hold_s=0.1),
            Fault(0.2, "broker_pause", "broker", hold_s=0.5),
            Fault(0.8, "broker_kill", "broker", hold_s=0.2, persistence=True),  # planned after
            Fault(0.3, "clock_step", "rsu-2", hold_s=0.2, offset_s=300),  # may overlap
        ]
    )
    broker = [(what, kind) for what, kind, _ in events if kind.startswith("broker_")]
    assert broker == [
        ("start", "broker_pause"),
        ("end", "broker_pause"),
        ("start", "broker_kill"),
        ("end", "broker_kill"),
    ]
    times = _times(events)
    assert times[("end", "broker_kill")] - times[("start", "broker_kill")] >= 0.2 - 0.05
    assert times[("start", "clock_step")] < times[("end", "broker_pause")]


class _SlowHostile:
    """A hostile client whose bursts wait 0.8 s for PUBACKs that never come."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def poison(self, count: int) -> list[Sent]:
        time.sleep(0.8)
        return [Sent("empty", "t", None, time.time()) for _ in range(count)]

    def huge(self) -> list[Sent]:
        return []


def test_a_hostile_burst_waiting_for_pubacks_does_not_hold_up_the_faults_due_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = _campaign(tmp_path, monkeypatch)
    events: Events = []
    campaign.hostile = _SlowHostile()  # type: ignore[assignment]

    def pause(done: Done) -> Callable[[], None]:
        events.append(("start", done.fault.kind, campaign.elapsed()))
        return lambda: events.append(("end", done.fault.kind, campaign.elapsed()))

    monkeypatch.setattr(campaign, "_broker_fault", pause)
    campaign._play(
        [
            Fault(0.1, "poison", "rogue", count=3),
            Fault(0.2, "broker_pause", "broker", hold_s=0.3),
        ]
    )
    times = _times(events)
    assert times[("start", "broker_pause")] < 0.6, "the burst held the loop up"
    campaign._bursts_done()
    burst = next(d for d in campaign.done if d.fault.kind == "poison")
    assert burst.note == "no answer 3"
    assert burst.ended_s is not None and burst.ended_s >= 0.85
    campaign._hostile_thread.shutdown(wait=True)


@pytest.mark.parametrize(
    ("cause", "problem"),
    [
        ("bound_size", False),
        ("store_failed", False),
        ("damaged", True),  # a kill -9 never damages a WAL database: a defect, not a loss
        ("rolled_back", True),
    ],
)
def test_an_outbox_recovered_after_the_campaign_s_kills_is_a_problem(
    cause: str, problem: bool
) -> None:
    unit = UnitRecord("rsu-1", 100, {}, (LossRange(cause, 10, 20, 11),), frozenset())
    assert bool(_recoveries([unit])) is problem
