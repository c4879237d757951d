"""The ledger-read bench's synthetic span lies within one UTC day when it fits."""

from __future__ import annotations

import pytest

from gateway.bench.ledger_read import _span_start
from gateway.ingest.audit import DAY_MS

MIN = 60_000


@pytest.mark.parametrize(
    ("now", "span", "day"),
    [
        (20 * DAY_MS + 60 * MIN, 6 * MIN, 20),  # mid-morning: ends 2 min before now
        (20 * DAY_MS + 6 * MIN, 6 * MIN, 19),  # just after midnight: all of it the day before
        (20 * DAY_MS + 7 * MIN, 6 * MIN, 19),
        (20 * DAY_MS + 8 * MIN, 6 * MIN, 20),  # starts at midnight
        (20 * DAY_MS + 10 * MIN, 6 * MIN, 20),  # fits after midnight
    ],
)
def test_the_span_and_its_audit_window_fall_on_one_day(now: int, span: int, day: int) -> None:
    start = _span_start(now, span)
    until = start + span + MIN
    assert start // DAY_MS == until // DAY_MS == day
    assert until <= now - MIN


def test_a_span_of_days_is_not_moved() -> None:
    now = 20 * DAY_MS + 6 * MIN
    assert _span_start(now, 2 * DAY_MS) == now - 2 * DAY_MS - 2 * MIN
