"""Message encode/decode: every type round-trips, shared vectors, malformed frames, bad fields."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from firmware_bridge import vectorgen
from firmware_bridge.codec import decode_frame, encode_frame, pack, unpack
from firmware_bridge.crc import crc16
from firmware_bridge.errors import BridgeError, EncodeError, FrameError, MessageError
from firmware_bridge.messages import (
    BODY_TYPES,
    FLAG_ACK_REQ,
    KIND_F32,
    KIND_I32,
    KIND_I32_CENTI,
    KIND_I32_MILLI,
    ConfigSet,
    ConfigValue,
    Hello,
    Log,
    Message,
    Readings,
    Value,
)
from gateway.errors import GatewayError

ROOT = Path(__file__).resolve().parents[3]
VECTORS: dict[str, Any] = json.loads((ROOT / "firmware_bridge/vectors/vectors.json").read_text())


def test_every_body_type_has_a_vector() -> None:
    types = {vectorgen.message_from_fields(f["message"]).body.TYPE for f in VECTORS["frames"]}
    assert types == set(BODY_TYPES)


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda c: c["name"])
def test_vector_encode_and_decode(case: dict[str, Any]) -> None:
    msg = vectorgen.message_from_fields(case["message"])
    wire = bytes.fromhex(case["frame_hex"])
    assert encode_frame(msg).hex() == case["frame_hex"]
    assert pack(msg)[6:-2].hex() == case["payload_hex"]
    decoded = decode_frame(wire)
    assert vectorgen.message_fields(decoded) == case["message"]
    assert decoded == msg


@pytest.mark.parametrize("case", VECTORS["malformed"], ids=lambda c: c["name"])
def test_vector_malformed(case: dict[str, Any]) -> None:
    with pytest.raises(vectorgen.ERRORS[case["error"]]):
        decode_frame(bytes.fromhex(case["frame_hex"]))


def test_worked_example_in_spec() -> None:
    spec = (ROOT / "firmware_bridge/SPEC.md").read_text()
    worked = next(f for f in VECTORS["frames"] if f["name"] == "worked_example_reading")
    ack = next(f for f in VECTORS["frames"] if f["name"] == "worked_example_ack")
    spaced = " ".join(worked["frame_hex"][i : i + 2] for i in range(0, len(worked["frame_hex"]), 2))
    assert f"wire     {spaced}" in spec
    spaced_ack = " ".join(ack["frame_hex"][i : i + 2] for i in range(0, len(ack["frame_hex"]), 2))
    assert f"wire     {spaced_ack}" in spec


def test_vector_files_are_up_to_date() -> None:
    vectors = vectorgen.build_vectors()
    assert vectorgen.JSON_PATH.read_text() == vectorgen.render_json(vectors), (
        "vectors.json is stale: run python -m firmware_bridge.vectorgen"
    )
    assert vectorgen.HEADER_PATH.read_text() == vectorgen.render_header(VECTORS), (
        "c/vectors.h is stale: run python -m firmware_bridge.vectorgen"
    )


def test_error_tree() -> None:
    # The bridge stands alone: its errors are its own tree, not the gateway's.
    assert issubclass(BridgeError, Exception) and not issubclass(BridgeError, GatewayError)
    for exc in vectorgen.ERRORS.values():
        assert issubclass(exc, FrameError | MessageError)


def test_physical_values() -> None:
    assert Value(0, KIND_F32, 21.5).physical() == 21.5
    assert Value(0, KIND_I32, -7).physical() == -7
    assert Value(0, KIND_I32_CENTI, 1234).physical() == pytest.approx(12.34)
    assert Value(0, KIND_I32_MILLI, -3712).physical() == pytest.approx(-3.712)


def test_f32_special_values_round_trip() -> None:
    msg = Message(1, 2, Readings(0, (Value(0, KIND_F32, math.inf), Value(1, KIND_F32, -0.0))))
    out = decode_frame(encode_frame(msg))
    assert isinstance(out.body, Readings)
    assert out.body.values[0].value == math.inf
    nan = decode_frame(encode_frame(Message(1, 2, Readings(0, (Value(0, KIND_F32, math.nan),)))))
    assert isinstance(nan.body, Readings)
    assert math.isnan(nan.body.values[0].value)


def test_invalid_utf8_text_is_replaced_not_rejected() -> None:
    raw = bytearray(pack(Message(1, 1, Log(2, "ab"))))
    raw[8] = 0xFF  # second text byte (header 6, level 1)
    raw[-2:] = crc16(bytes(raw[:-2])).to_bytes(2, "little")
    out = unpack(bytes(raw))
    assert isinstance(out.body, Log)
    assert out.body.text == "a\ufffd"


@pytest.mark.parametrize(
    "msg",
    [
        Message(256, 0, Log(1, "x")),
        Message(1, 70000, Log(1, "x")),
        Message(1, 0, Log(4, "x")),
        Message(1, 0, Log(1, "x" * 201)),
        Message(1, 0, Hello((1, 2, 300), 0, 0, "")),
        Message(1, 0, Hello((1, 2, 3), 0, 0, "n" * 33)),
        Message(1, 0, Readings(0, ())),
        Message(1, 0, Readings(0, tuple(Value(0, KIND_I32, 1) for _ in range(40)))),
        Message(1, 0, Readings(-1, (Value(0, KIND_I32, 1),))),
        Message(1, 0, Readings(0, (Value(0, KIND_I32, 2**31),))),
        Message(1, 0, Readings(0, (Value(0, KIND_I32_CENTI, 1.5),))),
        Message(1, 0, Readings(0, (Value(0, 9, 1),))),
        Message(1, 0, Readings(0, (Value(0, KIND_F32, 1e39),))),
        Message(1, 0, ConfigSet(1, 7, 1)),
        Message(1, 0, ConfigValue(1, 0, KIND_I32, -(2**31) - 1)),
    ],
    ids=repr,
)
def test_encode_rejects_out_of_range_fields(msg: Message) -> None:
    with pytest.raises(EncodeError):
        encode_frame(msg)


def test_reliable_flag() -> None:
    assert Message(1, 0, Log(), FLAG_ACK_REQ).reliable
    assert not Message(1, 0, Log()).reliable
