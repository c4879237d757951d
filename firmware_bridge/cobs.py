"""Consistent Overhead Byte Stuffing (COBS): removes every 0x00 so it can delimit frames.

Both functions work on one frame without its 0x00 delimiter. The encoding is the
canonical one (Cheshire & Baker 1999): a block that reaches 254 data bytes is closed
with code 0xFF and no implied zero, and no empty block is added after a final 0xFF block.
"""

from __future__ import annotations

from firmware_bridge.errors import CobsError


def max_encoded_len(n: int) -> int:
    """Upper bound of ``len(encode(data))`` for ``len(data) == n``."""
    return n + 1 + n // 254


def encode(data: bytes) -> bytes:
    """COBS-encode ``data``; the result contains no 0x00 byte."""
    out = bytearray(b"\x00")
    code_at = 0
    code = 1
    last = len(data) - 1
    for i, byte in enumerate(data):
        if byte == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF and i < last:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Decode one COBS block sequence; raise :class:`CobsError` when it is malformed."""
    if not data:
        raise CobsError("empty COBS frame")
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise CobsError(f"zero byte at offset {i} inside a COBS frame")
        end = i + code
        if end > n:
            raise CobsError(f"COBS block at offset {i} runs {end - n} byte(s) past the frame end")
        block = data[i + 1 : end]
        if 0 in block:
            raise CobsError(f"zero byte inside the COBS block at offset {i}")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
