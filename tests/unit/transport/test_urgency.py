"""Urgency: the drain steps aside while an alert is in passage, and only within bounds."""

from __future__ import annotations

from collections.abc import Callable

from gateway.transport.urgency import STEP_S, Urgency


class FakeTime:
    """A clock that moves only when the waiting thread sleeps (and on request)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        self.on_sleep()


def _urgency(t: FakeTime, **kwargs: float) -> Urgency:
    return Urgency(clock=t.clock, sleep=t.sleep, **kwargs)


def test_no_alert_no_wait() -> None:
    t = FakeTime()
    u = _urgency(t)
    u.step_aside(lambda: False)
    assert t.slept == 0.0 and not u.active()


def test_the_wait_ends_when_the_alert_is_handed_over() -> None:
    t = FakeTime()
    u = _urgency(t, max_wait_s=0.005)
    u.begin(1)
    steps = 0

    def hand_over_after_ten() -> None:
        nonlocal steps
        steps += 1
        if steps == 10:
            u.handed_over(1)

    t.on_sleep = hand_over_after_ten
    u.step_aside(lambda: False)
    assert steps == 10 and abs(t.slept - 10 * STEP_S) < 1e-9
    assert u.pending == 0 and not u.active()
    u.step_aside(lambda: False)  # nothing in passage any more
    assert steps == 10


def test_the_wait_ends_when_the_caller_may_go_on() -> None:
    t = FakeTime()
    u = _urgency(t)
    u.begin(1)
    ready = {"now": False}
    t.on_sleep = lambda: ready.update(now=t.slept >= 3 * STEP_S - 1e-12)
    u.step_aside(lambda: ready["now"])
    assert abs(t.slept - 3 * STEP_S) < 1e-9
    assert u.pending == 1  # still in passage: the caller's own sign let it go


def test_one_passage_holds_the_drain_at_most_max_wait() -> None:
    t = FakeTime()
    u = _urgency(t, max_wait_s=0.005)
    u.begin(1)  # never handed over (its topic is held, say)
    u.step_aside(lambda: False)
    assert 0.005 - 1e-9 <= t.slept <= 0.005 + STEP_S
    before = t.slept
    u.step_aside(lambda: False)  # the passage's time is up: no more waiting for it
    assert t.slept == before and not u.active()
    u.begin(1)  # a new alert: a new passage
    assert u.active()


def test_a_flood_of_alerts_takes_at_most_the_share_of_a_second() -> None:
    t = FakeTime()
    u = _urgency(t, max_wait_s=0.005, share=0.1)
    # An alert every 0.9 ms of work, none ever handed over, the drain asked to wait
    # before every piece of work: in each second it waits 0.1 s, not all of it.
    for second in range(3):
        start, slept = t.now, t.slept
        while t.now - start < 1.0:
            u.begin(1)
            u.step_aside(lambda: False)
            t.now += 0.0009  # the drain's own work between two alerts
        waited = t.slept - slept
        assert 0.1 - 0.006 <= waited <= 0.1 + 0.005 + STEP_S, (second, waited)
    assert abs(u.waited_s - t.slept) < 1e-9
    assert u.passages > 2000


def test_a_failed_store_ends_its_passage() -> None:
    t = FakeTime()
    u = _urgency(t)
    u.begin(3)
    u.handed_over(3)
    assert u.pending == 0 and not u.active()
    u.handed_over(5)  # never below zero
    assert u.pending == 0
    u.begin(0)
    assert u.passages == 3 and not u.active()


def test_an_alert_that_needs_the_drain_ends_the_wait() -> None:
    """No room in flight for the alert: the PUBACKs the drain reads must make room."""
    t = FakeTime()
    u = _urgency(t, max_wait_s=0.005)
    u.begin(1)
    steps = 0

    def no_room_after_two() -> None:
        nonlocal steps
        steps += 1
        if steps == 2:
            u.need_drain()

    t.on_sleep = no_room_after_two
    u.step_aside(lambda: False)
    assert steps == 2 and not u.active()
    assert u.pending == 1  # still to be handed over, but nobody waits for it now
    u.begin(1)
    assert u.active()
