"""Message types of the roadside sensor bridge protocol (RSB v1) and their byte encoding.

A frame before COBS is ``header (6) | payload (0..240) | CRC-16 (2)``, all integers
little-endian. See ``firmware_bridge/SPEC.md`` for the normative description.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

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

MAX_NAME = 32
MAX_LOG_TEXT = 200
MAX_VALUES = (MAX_PAYLOAD - 5) // 6  # 39


def _pack_value(kind: int, value: float | int) -> bytes:
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


def _unpack_value(kind: int, raw: bytes) -> float | int:
    if kind == KIND_F32:
        return float(struct.unpack("<f", raw)[0])
    if kind in _SCALE:
        return int(struct.unpack("<i", raw)[0])
    raise PayloadError(f"unknown value kind {kind}")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _expect(payload: bytes, size: int, name: str) -> None:
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


@dataclass(frozen=True, slots=True)
class Hello:
    """Board → host after boot (and to resync): firmware, boot id, capabilities, name."""

    TYPE: ClassVar[int] = 0x01
    fw: tuple[int, int, int] = (0, 0, 0)
    boot_id: int = 0
    capabilities: int = 0
    name: str = ""

    def pack(self) -> bytes:
        """Payload bytes."""
        name = self.name.encode()
        if len(name) > MAX_NAME:
            raise EncodeError(f"HELLO name is {len(name)} bytes, at most {MAX_NAME}")
        try:
            return struct.pack("<BBBHI", *self.fw, self.boot_id, self.capabilities) + name
        except struct.error as exc:
            raise EncodeError(f"HELLO field out of range: {exc}") from exc

    @classmethod
    def unpack(cls, payload: bytes) -> Hello:
        """Parse payload bytes."""
        if not 9 <= len(payload) <= 9 + MAX_NAME:
            raise PayloadError(f"HELLO payload must be 9..{9 + MAX_NAME} bytes, got {len(payload)}")
        major, minor, patch, boot_id, caps = struct.unpack_from("<BBBHI", payload)
        return cls((major, minor, patch), boot_id, caps, _text(payload[9:]))


@dataclass(frozen=True, slots=True)
class Readings:
    """Board → host (reliable): board uptime in ms and 1..39 typed channel values."""

    TYPE: ClassVar[int] = 0x02
    uptime_ms: int = 0
    values: tuple[Value, ...] = ()

    def pack(self) -> bytes:
        """Payload bytes."""
        if not 1 <= len(self.values) <= MAX_VALUES:
            raise EncodeError(f"READING needs 1..{MAX_VALUES} values, got {len(self.values)}")
        try:
            out = bytearray(struct.pack("<IB", self.uptime_ms, len(self.values)))
            for v in self.values:
                out += struct.pack("<BB", v.channel, v.kind) + _pack_value(v.kind, v.value)
        except struct.error as exc:
            raise EncodeError(f"READING field out of range: {exc}") from exc
        return bytes(out)

    @classmethod
    def unpack(cls, payload: bytes) -> Readings:
        """Parse payload bytes."""
        if len(payload) < 5:
            raise PayloadError(f"READING payload must be at least 5 bytes, got {len(payload)}")
        uptime, count = struct.unpack_from("<IB", payload)
        if not 1 <= count <= MAX_VALUES:
            raise PayloadError(f"READING count must be 1..{MAX_VALUES}, got {count}")
        _expect(payload, 5 + 6 * count, "READING")
        values = []
        for i in range(count):
            off = 5 + 6 * i
            channel, kind = payload[off], payload[off + 1]
            values.append(Value(channel, kind, _unpack_value(kind, payload[off + 2 : off + 6])))
        return cls(uptime, tuple(values))


@dataclass(frozen=True, slots=True)
class Log:
    """Board → host (best effort): a level (0 debug, 1 info, 2 warning, 3 error) and text."""

    TYPE: ClassVar[int] = 0x03
    level: int = 1
    text: str = ""

    def pack(self) -> bytes:
        """Payload bytes."""
        text = self.text.encode()
        if len(text) > MAX_LOG_TEXT or not 0 <= self.level <= 3:
            raise EncodeError(f"LOG level must be 0..3 and text at most {MAX_LOG_TEXT} bytes")
        return bytes([self.level]) + text

    @classmethod
    def unpack(cls, payload: bytes) -> Log:
        """Parse payload bytes."""
        if not 1 <= len(payload) <= 1 + MAX_LOG_TEXT or payload[0] > 3:
            raise PayloadError("LOG payload needs a level 0..3 and at most 200 text bytes")
        return cls(payload[0], _text(payload[1:]))


@dataclass(frozen=True, slots=True)
class Ack:
    """Host → board: acknowledges the reliable message with sequence number ``ack_seq``."""

    TYPE: ClassVar[int] = 0x10
    ack_seq: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<H", self.ack_seq)

    @classmethod
    def unpack(cls, payload: bytes) -> Ack:
        """Parse payload bytes."""
        _expect(payload, 2, "ACK")
        return cls(*struct.unpack("<H", payload))


@dataclass(frozen=True, slots=True)
class Nack:
    """Either way: refuses the message ``ref_seq`` for ``reason`` (NACK_* codes)."""

    TYPE: ClassVar[int] = 0x11
    ref_seq: int = 0
    reason: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<HB", self.ref_seq, self.reason)

    @classmethod
    def unpack(cls, payload: bytes) -> Nack:
        """Parse payload bytes."""
        _expect(payload, 3, "NACK")
        return cls(*struct.unpack("<HB", payload))


@dataclass(frozen=True, slots=True)
class Ping:
    """Host → board: liveness probe; the board answers PONG with the same nonce."""

    TYPE: ClassVar[int] = 0x20
    nonce: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<I", self.nonce)

    @classmethod
    def unpack(cls, payload: bytes) -> Ping:
        """Parse payload bytes."""
        _expect(payload, 4, "PING")
        return cls(*struct.unpack("<I", payload))


@dataclass(frozen=True, slots=True)
class Pong:
    """Board → host: answer to PING with its nonce and the board uptime in ms."""

    TYPE: ClassVar[int] = 0x21
    nonce: int = 0
    uptime_ms: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<II", self.nonce, self.uptime_ms)

    @classmethod
    def unpack(cls, payload: bytes) -> Pong:
        """Parse payload bytes."""
        _expect(payload, 8, "PONG")
        return cls(*struct.unpack("<II", payload))


@dataclass(frozen=True, slots=True)
class ConfigGet:
    """Host → board: read configuration key ``key``; answered by CONFIG_VALUE."""

    TYPE: ClassVar[int] = 0x30
    key: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<B", self.key)

    @classmethod
    def unpack(cls, payload: bytes) -> ConfigGet:
        """Parse payload bytes."""
        _expect(payload, 1, "CONFIG_GET")
        return cls(payload[0])


@dataclass(frozen=True, slots=True)
class ConfigSet:
    """Host → board: write ``value`` (of ``kind``) to key ``key``; answered by CONFIG_VALUE."""

    TYPE: ClassVar[int] = 0x31
    key: int = 0
    kind: int = KIND_I32
    value: float | int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return pack_fixed("<BB", self.key, self.kind) + _pack_value(self.kind, self.value)

    @classmethod
    def unpack(cls, payload: bytes) -> ConfigSet:
        """Parse payload bytes."""
        _expect(payload, 6, "CONFIG_SET")
        return cls(payload[0], payload[1], _unpack_value(payload[1], payload[2:]))


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """Board → host: the value of ``key`` after a GET or SET, with a CONFIG_* status."""

    TYPE: ClassVar[int] = 0x32
    key: int = 0
    status: int = CONFIG_OK
    kind: int = KIND_I32
    value: float | int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        head = pack_fixed("<BBB", self.key, self.status, self.kind)
        return head + _pack_value(self.kind, self.value)

    @classmethod
    def unpack(cls, payload: bytes) -> ConfigValue:
        """Parse payload bytes."""
        _expect(payload, 7, "CONFIG_VALUE")
        return cls(payload[0], payload[1], payload[2], _unpack_value(payload[2], payload[3:]))


def pack_fixed(fmt: str, *fields: int) -> bytes:
    """Pack fixed-layout integer fields, raising EncodeError when one is out of range."""
    try:
        return struct.pack(fmt, *fields)
    except struct.error as exc:
        raise EncodeError(f"field out of range: {exc}") from exc


Body = Hello | Readings | Log | Ack | Nack | Ping | Pong | ConfigGet | ConfigSet | ConfigValue

# The explicit registry: message type code -> body class.
BODY_TYPES: dict[int, type[Body]] = {
    cls.TYPE: cls
    for cls in (Hello, Readings, Log, Ack, Nack, Ping, Pong, ConfigGet, ConfigSet, ConfigValue)
}
TYPE_NAMES: dict[int, str] = {
    0x01: "HELLO",
    0x02: "READING",
    0x03: "LOG",
    0x10: "ACK",
    0x11: "NACK",
    0x20: "PING",
    0x21: "PONG",
    0x30: "CONFIG_GET",
    0x31: "CONFIG_SET",
    0x32: "CONFIG_VALUE",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One frame's content: the addressed node, the sequence number, flags and the body."""

    node: int
    seq: int
    body: Body
    flags: int = 0

    @property
    def reliable(self) -> bool:
        """True when the sender asked for an ACK (FLAG_ACK_REQ)."""
        return bool(self.flags & FLAG_ACK_REQ)
