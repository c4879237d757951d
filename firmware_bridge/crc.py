"""CRC-16/CCITT-FALSE, the frame check sequence of the protocol.

Parameters (Rocksoft model): width 16, poly 0x1021, init 0xFFFF, refin false,
refout false, xorout 0x0000, check ``crc16(b"123456789") == 0x29B1``.
"""

from __future__ import annotations

POLY = 0x1021
INIT = 0xFFFF
CHECK = 0x29B1


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _table()


def crc16(data: bytes, crc: int = INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``; pass a previous result as ``crc`` to continue it."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc
