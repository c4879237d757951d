"""CRC-16/CCITT-FALSE against published check values and the shared vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_bridge.crc import CHECK, crc16

VECTORS = json.loads(
    (Path(__file__).resolve().parents[3] / "firmware_bridge/vectors/vectors.json").read_text()
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0x29B1),  # the catalogued check value
        (b"", 0xFFFF),  # init, nothing processed
        (b"A", 0xB915),
        (b"\x00", 0xE1F0),
    ],
)
def test_published_values(data: bytes, expected: int) -> None:
    assert crc16(data) == expected


def test_check_constant() -> None:
    assert crc16(b"123456789") == CHECK == 0x29B1


def test_incremental_equals_one_shot() -> None:
    data = bytes(range(256)) * 3
    assert crc16(data[100:], crc16(data[:100])) == crc16(data)


def test_single_bit_flip_changes_crc() -> None:
    data = bytes(range(64))
    base = crc16(data)
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        assert crc16(bytes(flipped)) != base


def test_vector_parameters_and_cases() -> None:
    spec = VECTORS["crc"]
    assert (spec["poly"], spec["init"], spec["xorout"]) == ("0x1021", "0xFFFF", "0x0000")
    assert spec["refin"] is False
    assert spec["refout"] is False
    for case in spec["cases"]:
        assert crc16(bytes.fromhex(case["data_hex"])) == case["crc"], case["name"]
