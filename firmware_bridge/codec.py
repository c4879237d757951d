"""Frame codec: a :class:`~firmware_bridge.messages.Message` to wire bytes and back.

A frame before COBS is ``header (6) | payload (0..240) | CRC-16 (2)``; on the wire it is
COBS-encoded and followed by one 0x00 delimiter.
"""

from __future__ import annotations

from firmware_bridge import cobs
from firmware_bridge.crc import crc16
from firmware_bridge.errors import (
    CrcError,
    EncodeError,
    FrameLengthError,
    UnknownMessageTypeError,
    UnsupportedVersionError,
)
from firmware_bridge.messages import (
    BODY_TYPES,
    CRC_LEN,
    HEADER,
    MAX_ENCODED,
    MAX_PAYLOAD,
    MAX_RAW,
    VERSION,
    Message,
    pack_fixed,
)


def pack(msg: Message) -> bytes:
    """Header + payload + CRC, before COBS."""
    payload = msg.body.pack()
    if len(payload) > MAX_PAYLOAD:
        raise EncodeError(f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD}")
    head = pack_fixed("<BBBBH", VERSION, msg.body.TYPE, msg.flags, msg.node, msg.seq)
    body = head + payload
    return body + crc16(body).to_bytes(2, "little")


def unpack(raw: bytes) -> Message:
    """Parse a COBS-decoded frame; raise a :class:`~firmware_bridge.errors.BridgeError`."""
    if len(raw) < HEADER.size + CRC_LEN:
        raise FrameLengthError(f"frame of {len(raw)} bytes is shorter than header + CRC (8)")
    if len(raw) > MAX_RAW:
        raise FrameLengthError(f"frame of {len(raw)} bytes is longer than {MAX_RAW}")
    got = int.from_bytes(raw[-2:], "little")
    want = crc16(raw[:-2])
    if got != want:
        raise CrcError(f"CRC 0x{got:04X} does not match 0x{want:04X}")
    version, type_code, flags, node, seq = HEADER.unpack_from(raw)
    if version != VERSION:
        raise UnsupportedVersionError(f"protocol version {version}, this side speaks {VERSION}")
    cls = BODY_TYPES.get(type_code)
    if cls is None:
        raise UnknownMessageTypeError(f"unknown message type 0x{type_code:02X}")
    return Message(node, seq, cls.unpack(raw[HEADER.size : -2]), flags)


def encode_frame(msg: Message) -> bytes:
    """Encode the wire frame: COBS(header + payload + CRC) and the 0x00 delimiter."""
    return cobs.encode(pack(msg)) + b"\x00"


def decode_frame(data: bytes) -> Message:
    """Decode one wire frame (the trailing 0x00 delimiter is optional)."""
    if data.endswith(b"\x00"):
        data = data[:-1]
    if len(data) > MAX_ENCODED:
        raise FrameLengthError(f"encoded frame of {len(data)} bytes exceeds {MAX_ENCODED}")
    return unpack(cobs.decode(data))
