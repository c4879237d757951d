"""The streaming decoder interface and the shared base of the built-in decoders.

A decoder turns a byte stream into :class:`~gateway.sensors.types.Reading` objects.
It is pure: no I/O, no threads, no clocks other than the reading timestamp. Chunks of
any size (one byte, a partial frame, several merged frames) may be fed; bad bytes are
counted and skipped, never raised. A decoder MAY also expose ``pending_writes()``
returning bytes that the reader writes back to the port after each feed (acks, polls).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import ClassVar, Protocol, Self, runtime_checkable

from gateway.errors import UsageError
from gateway.sensors.types import Reading

OptionValue = str | int | float | bool


@runtime_checkable
class Decoder(Protocol):
    """What the reader needs from a stream decoder (``stats`` and ``pending_writes`` optional)."""

    def feed(self, chunk: bytes) -> list[Reading]:
        """Consume ``chunk`` and return the readings completed by it."""
        ...


@dataclass
class DecoderCounters:
    """Counters every built-in decoder keeps (all monotonic)."""

    bytes: int = 0
    frames: int = 0  # candidate frames delimited (start + length, or a line)
    good: int = 0  # frames that became readings
    replies: int = 0  # valid frames that are command replies or configuration, not readings
    ignored: int = 0  # valid frames of a kind the decoder does not turn into readings
    bad_checksum: int = 0
    bad_frames: int = 0  # malformed: bad length, bad trailer, unparsable text, too long
    resyncs: int = 0  # runs of skipped bytes while hunting for a frame start
    skipped_bytes: int = 0
    overflows: int = 0  # times the buffer bound was hit and old bytes dropped


class StreamDecoder(ABC):
    """Base of the built-in decoders: an input buffer, counters, a hunt-for-start loop.

    Subclasses implement :meth:`_parse`, which consumes complete frames from
    ``self._buf`` and returns readings. The buffer never grows beyond
    :attr:`max_buffer` bytes: on overflow the oldest bytes are dropped and counted.
    """

    name: ClassVar[str] = ""
    max_buffer: ClassVar[int] = 4096
    known_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, sensor_id: str = "", protocol: str = "") -> None:
        self.protocol = protocol or self.name
        self.sensor_id = sensor_id
        self.counters = DecoderCounters()
        self._buf = bytearray()
        self._skipping = False

    @classmethod
    def check_options(cls, options: Mapping[str, OptionValue]) -> None:
        """Raise :class:`UsageError` naming any option this decoder does not know."""
        unknown = sorted(set(options) - cls.known_options)
        if unknown:
            known = ", ".join(sorted(cls.known_options)) or "none"
            raise UsageError(
                f"protocol {cls.name!r} has no option(s) {', '.join(unknown)} (known: {known})"
            )

    @classmethod
    def from_options(
        cls, sensor_id: str, options: Mapping[str, OptionValue], protocol: str = ""
    ) -> Self:
        """Build from config options; decoders with options override this."""
        cls.check_options(options)
        return cls(sensor_id=sensor_id, protocol=protocol)

    def feed(self, chunk: bytes) -> list[Reading]:
        """Consume ``chunk`` (any size) and return the readings it completed."""
        self.counters.bytes += len(chunk)
        self._buf += chunk
        readings = self._parse()
        excess = len(self._buf) - self.max_buffer
        if excess > 0:
            del self._buf[:excess]
            self.counters.overflows += 1
            self.counters.skipped_bytes += excess
        return readings

    def stats(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return asdict(self.counters)

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    @abstractmethod
    def _parse(self) -> list[Reading]:
        """Consume complete frames from ``self._buf``."""

    def _skip(self, n: int) -> None:
        """Drop ``n`` bytes that cannot start a frame; a run of skips counts one resync."""
        if n <= 0:
            return
        del self._buf[:n]
        self.counters.skipped_bytes += n
        if not self._skipping:
            self.counters.resyncs += 1
            self._skipping = True

    def _synced(self) -> None:
        """Mark that a frame start was found (ends the current resync run)."""
        self._skipping = False

    def _reading(
        self,
        values: dict[str, float | int | str],
        extra: dict[str, float | int | str] | None = None,
    ) -> Reading:
        self.counters.good += 1
        return Reading(
            protocol=self.protocol,
            values=values,
            timestamp=time.time(),
            sensor_id=self.sensor_id,
            extra=extra or {},
        )
