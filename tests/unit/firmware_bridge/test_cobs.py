"""COBS encode/decode: published examples, vectors, malformed input, round-trip property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.errors import CobsError

VECTORS = json.loads(
    (Path(__file__).resolve().parents[3] / "firmware_bridge/vectors/vectors.json").read_text()
)

# The examples of Cheshire & Baker's paper as listed in the common COBS references.
PUBLISHED = [
    ("00", "0101"),
    ("0000", "010101"),
    ("00110000", "0102110101"),
    ("11220033", "0311220233"),
    ("11223344", "0511223344"),
    ("11000000", "02110101 01".replace(" ", "")),
    (bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    (bytes(range(255)).hex(), "01ff" + bytes(range(1, 255)).hex()),
    (bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    (bytes(range(2, 256)).hex() + "00", "ff" + bytes(range(2, 256)).hex() + "0101"),
    (bytes(range(3, 256)).hex() + "0001", "fe" + bytes(range(3, 256)).hex() + "0201"),
]


@pytest.mark.parametrize(("decoded", "encoded"), PUBLISHED)
def test_published_examples(decoded: str, encoded: str) -> None:
    assert cobs.encode(bytes.fromhex(decoded)).hex() == encoded
    assert cobs.decode(bytes.fromhex(encoded)).hex() == decoded


@pytest.mark.parametrize("case", VECTORS["cobs"], ids=lambda c: c["name"])
def test_shared_vectors(case: dict[str, str]) -> None:
    assert cobs.encode(bytes.fromhex(case["decoded_hex"])).hex() == case["encoded_hex"]
    assert cobs.decode(bytes.fromhex(case["encoded_hex"])).hex() == case["decoded_hex"]


@pytest.mark.parametrize(
    ("encoded", "match"),
    [
        (b"", "empty"),
        (b"\x05\x11\x22", "past the frame end"),
        (b"\x03\x11\x00", "zero byte"),
        (b"\x00", "zero byte"),
        (b"\x02\x11\x00\x01", "zero byte"),
    ],
)
def test_malformed_raises(encoded: bytes, match: str) -> None:
    with pytest.raises(CobsError, match=match):
        cobs.decode(encoded)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_round_trip_has_no_zero_and_bounded_overhead(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert len(encoded) <= cobs.max_encoded_len(len(data))
    assert cobs.decode(encoded) == data
