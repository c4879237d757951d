"""The bulk window on simulated links: the queue ahead of an alert stays about one round trip.

A link is simulated exactly (no clock, no threads): events take ``ser`` seconds each to
go over it, their PUBACK comes ``prop`` seconds later, and the sender keeps
``window.limit`` events in flight. What an alert raised now waits for is the round trip
of the bulk events in flight (the queue ahead of it).
"""

from __future__ import annotations

import collections

import pytest

from gateway.transport.pacing import BulkWindow


def drive(window: BulkWindow, ser: float, prop: float, seconds: float) -> list[float]:
    """Run a saturated link for ``seconds``; the round trips of the acks in the last half."""
    now = 0.0
    free = 0.0  # when the link has sent what it was given
    flight: collections.deque[tuple[float, float]] = collections.deque()
    rtts: list[float] = []
    while now < seconds:
        while len(flight) < window.limit:
            free = max(free, now) + ser
            flight.append((now, free + prop))
        sent, acked = flight.popleft()
        now = acked
        window.on_ack(acked - sent, now, units=1, inflight=len(flight))
        if now > seconds / 2:
            rtts.append(acked - sent)
    return rtts


@pytest.mark.parametrize(
    ("ser", "prop", "maximum"),
    [
        (0.0001, 0.0005, 100),  # a fast link (10,000 events/s)
        (0.0013, 0.0, 100),  # 2 Mbit/s, events of ~330 bytes, no propagation delay
        (0.0104, 0.0, 100),  # 256 kbit/s
        (0.0013, 0.050, 200),  # 2 Mbit/s with a 50 ms path (a cellular round trip)
        (0.0104, 0.080, 200),  # 256 kbit/s with 80 ms
    ],
)
def test_the_queue_ahead_stays_about_one_round_trip(ser: float, prop: float, maximum: int) -> None:
    window = BulkWindow(maximum)
    rtts = drive(window, ser, prop, 30.0)
    own = ser + prop  # one event alone on the link
    # A queue of at most one round trip of the link (or of the floor's 10 ms), and a
    # window that still fills the path (the link is never idle for want of events).
    bound = 2 * own + window.floor_s + 2 * ser
    assert sorted(rtts)[len(rtts) * 9 // 10] <= bound
    assert max(rtts) <= 1.5 * bound  # the refill after a probe
    assert window.limit * ser >= prop


def test_a_window_that_never_empties_does_not_creep() -> None:
    """Without a clean round trip now and then, the queue would become the link's minimum."""
    window = BulkWindow(1000)
    drive(window, 0.0104, 0.0, 60.0)
    assert window.limit <= 8
    assert window.min_rtt_s < 2 * 0.0104


@pytest.mark.parametrize(
    ("acks_per_s", "floor"),
    [(10_000, 32), (3_200, 32), (769, 8), (96, 2), (10, 2)],
)
def test_the_floor_is_what_the_link_delivers_in_10_ms(acks_per_s: int, floor: int) -> None:
    window = BulkWindow(100)
    assert window.floor == 2  # nothing measured yet: it starts small (and doubles)
    step = 1.0 / acks_per_s
    for n in range(1, 2 * acks_per_s):
        window.on_ack(0.001, n * step)
    assert window.floor == floor
    assert window.rate == pytest.approx(acks_per_s, rel=0.05)


def test_on_a_slow_link_one_event_goes_alone_every_half_window() -> None:
    window = BulkWindow(100, window_s=10.0)
    window.on_ack(0.030, 0.0, inflight=3)  # the first period starts: no rate known, no probe
    assert window.limit > 1
    t = 0.0
    while t < 4.99:  # 100 events/s: a slow link
        t += 0.01
        window.on_ack(0.030, t, inflight=3)
    assert window.limit > 1
    window.on_ack(0.030, 5.0, inflight=3)  # the next period: probe
    assert window.limit == 1
    window.on_ack(0.030, 5.01, inflight=1)
    assert window.limit == 1  # still draining what was in flight
    window.on_ack(0.030, 5.02, inflight=0)
    assert window.limit == 1  # now one event goes alone ...
    window.on_ack(0.011, 5.03, inflight=0)
    assert window.limit > 1  # ... and its round trip is clean: back to the window
    assert window.min_rtt_s == pytest.approx(0.011)


def test_on_a_fast_link_there_is_no_probe() -> None:
    window = BulkWindow(100, window_s=10.0)
    t = 0.0
    while t < 5.5:  # 10,000 events/s
        t += 0.0001
        window.on_ack(0.001, t, inflight=40)
        assert window.limit > 1
