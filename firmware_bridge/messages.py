"""Message types of the roadside sensor bridge protocol (RSB v1) and their byte encoding.

A frame before COBS is ``header (6) | payload (0..240) | CRC-16 (2)``, all integers
little-endian. See ``firmware_bridge/SPEC.md`` for the normative description.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from firmware_bridge.errors import EncodeError, PayloadError
from firmware_bridge.wire import (
    CONFIG_BAD_VALUE,
    CONFIG_OK,
    CONFIG_READ_ONLY,
    CONFIG_UNKNOWN_KEY,
    CRC_LEN,
    FLAG_ACK_REQ,
    FLAG_RETRANSMIT,
    HEADER,
    KIND_F32,
    KIND_I32,
    KIND_I32_CENTI,
    KIND_I32_MILLI,
    KINDS,
    MAX_ENCODED,
    MAX_LOG_TEXT,
    MAX_NAME,
    MAX_PAYLOAD,
    MAX_RAW,
    MAX_VALUES,
    NACK_MALFORMED,
    NACK_NO_SESSION,
    NACK_OUT_OF_WINDOW,
    NACK_UNSUPPORTED,
    OUTPUT_BAD_VALUE,
    OUTPUT_OK,
    OUTPUT_UNKNOWN,
    VERSION,
    Value,
    expect,
    pack_fixed,
    pack_value,
    text,
    unpack_value,
)


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
        return cls((major, minor, patch), boot_id, caps, text(payload[9:]))


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
                out += struct.pack("<BB", v.channel, v.kind) + pack_value(v.kind, v.value)
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
        expect(payload, 5 + 6 * count, "READING")
        values = []
        for i in range(count):
            off = 5 + 6 * i
            channel, kind = payload[off], payload[off + 1]
            values.append(Value(channel, kind, unpack_value(kind, payload[off + 2 : off + 6])))
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
        return cls(payload[0], text(payload[1:]))


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
        expect(payload, 2, "ACK")
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
        expect(payload, 3, "NACK")
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
        expect(payload, 4, "PING")
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
        expect(payload, 8, "PONG")
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
        expect(payload, 1, "CONFIG_GET")
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
        return pack_fixed("<BB", self.key, self.kind) + pack_value(self.kind, self.value)

    @classmethod
    def unpack(cls, payload: bytes) -> ConfigSet:
        """Parse payload bytes."""
        expect(payload, 6, "CONFIG_SET")
        return cls(payload[0], payload[1], unpack_value(payload[1], payload[2:]))


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
        return head + pack_value(self.kind, self.value)

    @classmethod
    def unpack(cls, payload: bytes) -> ConfigValue:
        """Parse payload bytes."""
        expect(payload, 7, "CONFIG_VALUE")
        return cls(payload[0], payload[1], payload[2], unpack_value(payload[2], payload[3:]))


@dataclass(frozen=True, slots=True)
class OutputSet:
    """Host → board: drive ``output`` to ``value``, falling back to ``fail_safe`` on its own.

    The board applies ``fail_safe`` when ``lease_ms`` pass without another OUTPUT_SET for
    that output (the host stopped, crashed or lost the cable); ``lease_ms`` 0 means no
    lease. Answered by OUTPUT_STATE.
    """

    TYPE: ClassVar[int] = 0x40
    output: int = 0
    kind: int = KIND_I32
    value: float | int = 0
    fail_kind: int = KIND_I32
    fail_safe: float | int = 0
    lease_ms: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        return (
            pack_fixed("<BB", self.output, self.kind)
            + pack_value(self.kind, self.value)
            + pack_fixed("<B", self.fail_kind)
            + pack_value(self.fail_kind, self.fail_safe)
            + pack_fixed("<I", self.lease_ms)
        )

    @classmethod
    def unpack(cls, payload: bytes) -> OutputSet:
        """Parse payload bytes."""
        expect(payload, 15, "OUTPUT_SET")
        value = unpack_value(payload[1], payload[2:6])
        fail_safe = unpack_value(payload[6], payload[7:11])
        (lease,) = struct.unpack_from("<I", payload, 11)
        return cls(payload[0], payload[1], value, payload[6], fail_safe, lease)


@dataclass(frozen=True, slots=True)
class OutputState:
    """Board → host: an output's value now, an OUTPUT_* status and the lease left (ms)."""

    TYPE: ClassVar[int] = 0x41
    output: int = 0
    status: int = OUTPUT_OK
    kind: int = KIND_I32
    value: float | int = 0
    lease_ms: int = 0

    def pack(self) -> bytes:
        """Payload bytes."""
        head = pack_fixed("<BBB", self.output, self.status, self.kind)
        return head + pack_value(self.kind, self.value) + pack_fixed("<I", self.lease_ms)

    @classmethod
    def unpack(cls, payload: bytes) -> OutputState:
        """Parse payload bytes."""
        expect(payload, 11, "OUTPUT_STATE")
        value = unpack_value(payload[2], payload[3:7])
        (lease,) = struct.unpack_from("<I", payload, 7)
        return cls(payload[0], payload[1], payload[2], value, lease)


Body = (
    Hello
    | Readings
    | Log
    | Ack
    | Nack
    | Ping
    | Pong
    | ConfigGet
    | ConfigSet
    | ConfigValue
    | OutputSet
    | OutputState
)

# The explicit registry: message type code -> body class.
BODY_TYPES: dict[int, type[Body]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Readings,
        Log,
        Ack,
        Nack,
        Ping,
        Pong,
        ConfigGet,
        ConfigSet,
        ConfigValue,
        OutputSet,
        OutputState,
    )
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
    0x40: "OUTPUT_SET",
    0x41: "OUTPUT_STATE",
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


__all__ = [
    "BODY_TYPES",
    "CONFIG_BAD_VALUE",
    "CONFIG_OK",
    "CONFIG_READ_ONLY",
    "CONFIG_UNKNOWN_KEY",
    "CRC_LEN",
    "FLAG_ACK_REQ",
    "FLAG_RETRANSMIT",
    "HEADER",
    "KINDS",
    "KIND_F32",
    "KIND_I32",
    "KIND_I32_CENTI",
    "KIND_I32_MILLI",
    "MAX_ENCODED",
    "MAX_LOG_TEXT",
    "MAX_NAME",
    "MAX_PAYLOAD",
    "MAX_RAW",
    "MAX_VALUES",
    "NACK_MALFORMED",
    "NACK_NO_SESSION",
    "NACK_OUT_OF_WINDOW",
    "NACK_UNSUPPORTED",
    "OUTPUT_BAD_VALUE",
    "OUTPUT_OK",
    "OUTPUT_UNKNOWN",
    "TYPE_NAMES",
    "VERSION",
    "Ack",
    "Body",
    "ConfigGet",
    "ConfigSet",
    "ConfigValue",
    "Hello",
    "Log",
    "Message",
    "Nack",
    "OutputSet",
    "OutputState",
    "Ping",
    "Pong",
    "Readings",
    "Value",
    "pack_fixed",
]
