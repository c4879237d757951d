"""Seeded fault injection on a byte stream of frames: loss, bit flips, garbage, odd writes."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from gateway.errors import UsageError


@dataclass(frozen=True)
class FaultConfig:
    """Probabilities of each fault (0 = off).

    ``drop_frame`` drops a whole frame, ``flip`` flips one bit per byte with that
    probability, ``drop_byte`` deletes single bytes, ``garbage`` inserts 1..16 random
    bytes before a frame, ``split`` cuts a write into random pieces, ``merge`` joins a
    write with the next one.
    """

    drop_frame: float = 0.0
    flip: float = 0.0
    drop_byte: float = 0.0
    garbage: float = 0.0
    split: float = 0.0
    merge: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """Parse ``"drop_frame=0.1,flip=0.001"``; raise :class:`UsageError` on bad input."""
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or key not in known:
                names = ", ".join(sorted(known))
                raise UsageError(f"bad fault {item!r}: use name=probability with names {names}")
            try:
                prob = float(raw)
            except ValueError:
                raise UsageError(f"fault {key}: {raw!r} is not a number") from None
            if not 0.0 <= prob <= 1.0:
                raise UsageError(f"fault {key}: probability {prob} is outside 0..1")
            values[key] = prob
        return cls(**values)


class Wire:
    """Applies a :class:`FaultConfig` to frames on their way out, with a seeded RNG."""

    def __init__(self, faults: FaultConfig, rng: random.Random) -> None:
        self.faults = faults
        self.rng = rng
        self.dropped_frames = 0
        self.flipped_bits = 0
        self.dropped_bytes = 0
        self.garbage_bytes = 0
        self._held = b""

    def apply(self, frames: list[bytes]) -> list[bytes]:
        """Return the writes that reach the line for these frames (maybe fewer, maybe split)."""
        f, rng = self.faults, self.rng
        data = bytearray(self._held)
        self._held = b""
        for frame in frames:
            if f.drop_frame and rng.random() < f.drop_frame:
                self.dropped_frames += 1
                continue
            if f.garbage and rng.random() < f.garbage:
                junk = rng.randbytes(rng.randint(1, 16))
                self.garbage_bytes += len(junk)
                data += junk
            data += self._damage(frame)
        if not data:
            return []
        if f.merge and rng.random() < f.merge:
            self._held = bytes(data)  # goes out together with the next write
            return []
        if f.split and rng.random() < f.split:
            return self._split(bytes(data))
        return [bytes(data)]

    def flush(self) -> list[bytes]:
        """Return the write held back by ``merge``, if any."""
        held, self._held = self._held, b""
        return [held] if held else []

    def _damage(self, frame: bytes) -> bytes:
        f, rng = self.faults, self.rng
        if not (f.flip or f.drop_byte):
            return frame
        out = bytearray()
        for byte in frame:
            if f.drop_byte and rng.random() < f.drop_byte:
                self.dropped_bytes += 1
                continue
            if f.flip and rng.random() < f.flip:
                self.flipped_bits += 1
                out.append(byte ^ (1 << rng.randrange(8)))
            else:
                out.append(byte)
        return bytes(out)

    def _split(self, data: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(data):
            n = self.rng.randint(1, max(1, len(data) // 3))
            out.append(data[i : i + n])
            i += n
        return out
