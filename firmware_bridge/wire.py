"""Wire-level constants and typed values of RSB v1 (shared by every message type)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_bridge import cobs
from firmware_bridge.errors import EncodeError, PayloadError

VERSION = 1
HEADER = struct.Struct("<BBBBH")  # version, type, flags, node, seq
CRC_LEN = 2
MAX_PAYLOAD = 240
MAX_RAW = HEADER.size + MAX_PAYLOAD + CRC_LEN  # 248 bytes before COBS
MAX_ENCODED = cobs.max_encoded_len(MAX_RAW)  # 249 bytes between delimiters

FLAG_ACK_REQ = 0x01  # reliable: the receiver must ACK this seq
FLAG_RETRANSMIT = 0x02  # informational: this frame is a retransmission

KIND_F32 = 1  # IEEE-754 binary32
KIND_I32 = 2  # signed integer, unit as documented per channel
KIND_I32_CENTI = 3  # signed integer in hundredths
KIND_I32_MILLI = 4  # signed integer in thousandths
KINDS = (KIND_F32, KIND_I32, KIND_I32_CENTI, KIND_I32_MILLI)
_SCALE = {KIND_I32: 1, KIND_I32_CENTI: 100, KIND_I32_MILLI: 1000}

NACK_NO_SESSION = 1
NACK_OUT_OF_WINDOW = 2
NACK_UNSUPPORTED = 3
NACK_MALFORMED = 4

CONFIG_OK = 0
CONFIG_UNKNOWN_KEY = 1
CONFIG_READ_ONLY = 2
CONFIG_BAD_VALUE = 3

OUTPUT_OK = 0
OUTPUT_UNKNOWN = 1  # no such output on this board
OUTPUT_BAD_VALUE = 2  # the value (or fail-safe value) is out of the output's range

MAX_NAME = 32
MAX_LOG_TEXT = 200
MAX_VALUES = (MAX_PAYLOAD - 5) // 6  # 39


def pack_value(kind: int, value: float | int) -> bytes:
    """Encode a typed value as 4 little-endian bytes; raise EncodeError if it does not fit."""
    try:
        if kind == KIND_F32:
            return struct.pack("<f", float(value))
        if kind in _SCALE:
            if not isinstance(value, int):
                raise EncodeError(f"value kind {kind} needs an integer, got {value!r}")
            return struct.pack("<i", value)
    except (struct.error, OverflowError) as exc:
        raise EncodeError(f"value {value!r} does not fit kind {kind}") from exc
    raise EncodeError(f"unknown value kind {kind}")


def unpack_value(kind: int, raw: bytes) -> float | int:
    """Decode 4 value bytes of ``kind``; raise PayloadError for an unknown kind."""
    if kind == KIND_F32:
        return float(struct.unpack("<f", raw)[0])
    if kind in _SCALE:
        return int(struct.unpack("<i", raw)[0])
    raise PayloadError(f"unknown value kind {kind}")


def text(data: bytes) -> str:
    """Decode UTF-8 text, replacing invalid bytes rather than rejecting the frame."""
    return data.decode("utf-8", errors="replace")


def expect(payload: bytes, size: int, name: str) -> None:
    """Raise PayloadError unless ``payload`` is exactly ``size`` bytes."""
    if len(payload) != size:
        raise PayloadError(f"{name} payload must be {size} bytes, got {len(payload)}")


@dataclass(frozen=True, slots=True)
class Value:
    """One sensor value: channel id, kind tag and the value as sent (raw integer or float)."""

    channel: int
    kind: int
    value: float | int

    def physical(self) -> float | int:
        """Return the value in its unit (scaled kinds divided by 100 or 1000)."""
        scale = _SCALE.get(self.kind, 1)
        if scale == 1 or isinstance(self.value, float):
            return self.value
        return self.value / scale


def pack_fixed(fmt: str, *fields: int) -> bytes:
    """Pack fixed-layout integer fields, raising EncodeError when one is out of range."""
    try:
        return struct.pack(fmt, *fields)
    except struct.error as exc:
        raise EncodeError(f"field out of range: {exc}") from exc
