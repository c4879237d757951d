"""Rate-limited logging: once per interval per kind, bounded keys."""

from __future__ import annotations

import logging

import pytest

from gateway.ratelog import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_repeats_held_back_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rl = RateLimitedLog(logging.getLogger("t.ratelog"), interval_s=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="t.ratelog"):
        assert rl.log("bad", logging.WARNING, "bad checksum on %s", "ttyA")
        for _ in range(5):
            assert not rl.log("bad", logging.WARNING, "bad checksum on %s", "ttyA")
        assert rl.log("other", logging.WARNING, "other problem")
        clock.t = 61
        assert rl.log("bad", logging.WARNING, "bad checksum on %s", "ttyA")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "bad checksum on ttyA",
        "other problem",
        "bad checksum on ttyA (5 similar held back)",
    ]


def test_keys_bounded_oldest_evicted() -> None:
    clock = Clock()
    rl = RateLimitedLog(logging.getLogger("t.ratelog2"), interval_s=60, max_keys=3, clock=clock)
    for key in ("a", "b", "c", "d"):
        rl.log(key, logging.DEBUG, key)
    assert len(rl) == 3
    # "a" was evicted, so it logs again at once; "d" is still held back
    assert rl.log("a", logging.DEBUG, "a")
    assert not rl.log("d", logging.DEBUG, "d")
    assert len(rl) == 3
