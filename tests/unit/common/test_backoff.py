"""The one back-off: exponential, capped, jittered, a server hint honoured, reset."""

from __future__ import annotations

import random

import pytest

from gateway.backoff import Backoff


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    assert backoff.attempt == 8
    backoff.reset()
    assert backoff.attempt == 0
    assert 0.5 <= backoff.next_delay() <= 1.0


@pytest.mark.parametrize(
    ("attempts", "hint", "expected"),
    [
        (0, None, 0.5),
        (1, None, 1.0),
        (2, None, 2.0),
        (9, None, 30.0),
        (1000, None, 30.0),  # no overflow however long the outage
        (0, 5.0, 5.0),  # a longer Retry-After wins
        (3, 1.0, 4.0),  # a shorter one does not
        (0, 3600.0, 30.0),  # capped: a bogus hint cannot stall for an hour
    ],
)
def test_delays_without_jitter(attempts: int, hint: float | None, expected: float) -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.0)
    for _ in range(attempts):
        backoff.next_delay()
    assert backoff.next_delay(hint) == expected


@pytest.mark.parametrize("jitter", [0.2, 0.5, 1.0])
def test_jitter_stays_within_its_fraction(jitter: float) -> None:
    rng = random.Random(7)
    for attempt in range(12):
        backoff = Backoff(0.5, 60.0, jitter=jitter, rng=rng)
        backoff.attempt = attempt
        ceiling = backoff.ceiling()
        for _ in range(50):
            backoff.attempt = attempt
            assert ceiling * (1 - jitter) - 1e-9 <= backoff.next_delay() <= ceiling + 1e-9


@pytest.mark.parametrize(
    ("min_s", "max_s", "jitter", "message"),
    [(0.0, 1.0, 0.5, "min_s"), (-1.0, 1.0, 0.5, "min_s"), (1.0, 2.0, 1.5, "jitter")],
)
def test_bad_parameters_are_refused(
    min_s: float, max_s: float, jitter: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(min_s, max_s, jitter=jitter)


def test_max_below_min_is_raised_to_min() -> None:
    assert Backoff(2.0, 1.0, jitter=0.0).next_delay() == 2.0
