"""The firmware bridge's exception tree (its own: the package stands alone).

``FrameError`` covers what breaks the byte framing (COBS, length, CRC);
``MessageError`` covers a well-framed frame whose header or payload is not
understood. ``EncodeError`` is raised when asked to encode an out-of-range field.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every firmware bridge protocol error."""


class FrameError(BridgeError):
    """The bytes between two delimiters are not a valid frame."""


class CobsError(FrameError):
    """Invalid COBS encoding (a code byte pointing past the end, or a stray zero)."""


class FrameLengthError(FrameError):
    """A frame shorter than header + CRC, or longer than the maximum frame length."""


class CrcError(FrameError):
    """The CRC-16 over header and payload does not match."""


class MessageError(BridgeError):
    """A frame with a valid CRC whose header or payload cannot be decoded."""


class UnsupportedVersionError(MessageError):
    """A protocol version this implementation does not speak."""


class UnknownMessageTypeError(MessageError):
    """A message type code that is not defined."""


class PayloadError(MessageError):
    """A payload of the wrong length or with out-of-range fields for its type."""


class EncodeError(BridgeError):
    """A message field out of range for its wire encoding."""
