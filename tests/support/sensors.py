"""Helpers of the sensor tests: a thread-safe reading sink, a stream fed in pieces."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from gateway.sensors.decoder import Decoder
from gateway.sensors.types import Reading


class Sink:
    """Collects readings from a reader thread."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.lock = threading.Lock()

    def __call__(self, reading: Reading) -> None:
        with self.lock:
            self.readings.append(reading)

    def count(self) -> int:
        with self.lock:
            return len(self.readings)


def feed_in_pieces(decoder: Decoder, data: bytes, cuts: Iterable[int]) -> list[Reading]:
    """Feed ``data`` to ``decoder`` split at ``cuts`` (offsets; those beyond the end ignored)."""
    readings: list[Reading] = []
    prev = 0
    for cut in [*sorted(c for c in cuts if c < len(data)), len(data)]:
        readings += decoder.feed(data[prev:cut])
        prev = cut
    return readings
