"""Streaming deframer: bytes in any chunking -> decoded messages, bad frames counted.

Frames end at each 0x00. Empty frames (consecutive delimiters) are ignored: senders
may put an extra 0x00 before a frame so that line noise ahead of it becomes a
separate bad frame instead of corrupting the good one. A run of more than
``MAX_ENCODED`` bytes without a delimiter is an oversize frame: it is dropped and the
deframer discards everything up to the next 0x00 (one resync). The buffer therefore
never holds more than ``MAX_ENCODED`` bytes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from firmware_bridge import cobs
from firmware_bridge.codec import unpack
from firmware_bridge.errors import CobsError, CrcError, FrameError, MessageError
from firmware_bridge.messages import MAX_ENCODED, Message

log = logging.getLogger(__name__)


@dataclass
class FramerCounters:
    """Monotonic counters of a :class:`Deframer`."""

    bytes: int = 0
    frames: int = 0  # non-empty delimited frames, including oversize ones
    good: int = 0
    bad_crc: int = 0
    decode_errors: int = 0  # invalid COBS, bad length, version, type or payload
    oversize: int = 0
    resyncs: int = 0  # times bytes were skipped to realign: oversize runs and invalid COBS
    discarded_bytes: int = 0


class Deframer:
    """Feed it chunks; it returns every message completed by each chunk."""

    def __init__(self, max_encoded: int = MAX_ENCODED) -> None:
        self.max_encoded = max_encoded
        self.counters = FramerCounters()
        self._buf = bytearray()
        self._skipping = False
        self._logged: set[str] = set()

    def feed(self, chunk: bytes) -> list[Message]:
        """Consume ``chunk`` and return the messages it completed, in order."""
        self.counters.bytes += len(chunk)
        out: list[Message] = []
        start = 0
        while start <= len(chunk):
            end = chunk.find(0, start)
            part = chunk[start:] if end < 0 else chunk[start:end]
            self._take(part)
            if end < 0:
                break
            self._close(out)
            start = end + 1
        return out

    @property
    def buffered(self) -> int:
        """Bytes held waiting for their delimiter."""
        return len(self._buf)

    def stats(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return asdict(self.counters)

    def _take(self, part: bytes) -> None:
        if self._skipping:
            self.counters.discarded_bytes += len(part)
            return
        self._buf += part
        if len(self._buf) > self.max_encoded:
            self.counters.frames += 1
            self.counters.oversize += 1
            self.counters.resyncs += 1
            self.counters.discarded_bytes += len(self._buf)
            self._buf.clear()
            self._skipping = True
            self._note("oversize", f"frame longer than {self.max_encoded} bytes dropped")

    def _close(self, out: list[Message]) -> None:
        if self._skipping:
            self._skipping = False
            return
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        self.counters.frames += 1
        try:
            raw = cobs.decode(data)
            out.append(unpack(raw))
        except CrcError as exc:
            self._bad("bad_crc", data, exc)
        except CobsError as exc:
            self.counters.resyncs += 1
            self._bad("decode_errors", data, exc)
        except (FrameError, MessageError) as exc:
            self._bad("decode_errors", data, exc)
        else:
            self.counters.good += 1

    def _bad(self, counter: str, data: bytes, exc: Exception) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.discarded_bytes += len(data)
        self._note(type(exc).__name__, f"{exc} (frame {data[:16].hex()}...)")

    def _note(self, kind: str, text: str) -> None:
        """Log the first occurrence of each kind of bad frame; the counters keep the rest."""
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("rsb deframer: %s", text)
