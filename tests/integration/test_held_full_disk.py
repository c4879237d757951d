"""The budget gate's rows on a real full volume (a 2 MiB tmpfs): a clear error, nothing else lost.

The gate holds crossings in an outbox on a volume that another writer then fills. A
crossing whose row cannot be written is counted lost (``lost_store``, its seq consumed),
and so is an aggregate that cannot be stored; what was held before stays held, and
the crossings the unstored aggregate counted are stored as they are once there is
room. Every crossing ends up stored raw, counted by a stored aggregate, or counted lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import TransportError
from tests.support.budget import Unit, rows
from tests.support.volumes import fill
from tests.unit.budget.test_budget import _aggregate, _crossing


def test_a_full_volume_while_holding_loses_nothing_silently(small_volume: Path) -> None:
    path = small_volume / "outbox.sqlite3"
    unit = Unit(path, level=1)
    for n in range(20):
        assert unit.admit([_crossing(n)]) == []
    assert rows(path) == (20, 0)
    unit.outbox.reserve.release()
    filler = fill(small_volume)
    errors: list[str] = []
    for n in range(20, 2000):  # until a row cannot be written (the free pages used up)
        try:
            unit.admit([_crossing(n)])
        except TransportError as exc:
            errors.append(str(exc))
            if len(errors) == 3:
                break
    failed = len(errors)
    assert failed == 3, "the volume never filled"
    assert all("outbox full" in e and "bytes free on its volume" in e for e in errors)
    held_ok = n + 1 - 20 - failed + 20  # rows written before and while filling
    assert unit.gate.health().crossings_held == held_ok == rows(path)[0]
    with pytest.raises(TransportError):
        unit.admit([_aggregate(held_ok)])  # cannot be stored: counted lost
    assert unit.outbox.losses()["lost_store"] == failed + 1
    assert rows(path)[0] == held_ok  # rolled back with it: nothing let go
    filler.unlink()
    unit.outbox.enforce()
    # Its crossings go as they are (no aggregate counts them now), in order.
    stored = unit.store(unit.gate.recover())
    assert len(stored) == held_ok and all(d.type == "line_crossing" for d in stored)
    assert rows(path) == (0, 0)
    unit.gate.policy.index = 1
    unit.admit([_crossing(5000)])
    (agg,) = unit.admit([_aggregate(1)])
    assert agg.data["crossings_withheld"] == 1  # the next aggregate counts only its own
    events = unit.events()
    raw = sum(e["type"] == "line_crossing" for e in events)
    withheld = sum(int(e["data"].get("crossings_withheld", 0)) for e in events)  # type: ignore[union-attr]
    produced = n + 1 + 1  # crossings 0..n, and 5000
    assert raw + withheld + failed == produced  # stored raw, counted, or counted lost
    unit.crash()
    again = Unit(path, level=1)
    assert again.loaded.events == []
    again.outbox.close()
    json.dumps(events)
