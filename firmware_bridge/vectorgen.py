"""Generate the shared test vectors (``vectors/vectors.json``) and their C header.

``python -m firmware_bridge.vectorgen`` rewrites both files; the tests check that the
committed files equal what this module produces, that the Python codec reproduces
every frame and that the C reference (``c/``) does too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from firmware_bridge import cobs
from firmware_bridge.codec import encode_frame, pack
from firmware_bridge.crc import crc16
from firmware_bridge.errors import (
    CobsError,
    CrcError,
    FrameLengthError,
    PayloadError,
    UnknownMessageTypeError,
    UnsupportedVersionError,
)
from firmware_bridge.messages import (
    BODY_TYPES,
    CONFIG_READ_ONLY,
    FLAG_ACK_REQ,
    FLAG_RETRANSMIT,
    KIND_F32,
    KIND_I32,
    KIND_I32_CENTI,
    KIND_I32_MILLI,
    MAX_VALUES,
    NACK_NO_SESSION,
    OUTPUT_UNKNOWN,
    TYPE_NAMES,
    Ack,
    ConfigGet,
    ConfigSet,
    ConfigValue,
    Hello,
    Log,
    Message,
    Nack,
    OutputSet,
    OutputState,
    Ping,
    Pong,
    Readings,
    Value,
)

HERE = Path(__file__).resolve().parent
JSON_PATH = HERE / "vectors" / "vectors.json"
HEADER_PATH = HERE / "c" / "vectors.h"

# Error class names in the vectors -> Python exception.
ERRORS: dict[str, type[Exception]] = {
    "cobs": CobsError,
    "length": FrameLengthError,
    "crc": CrcError,
    "version": UnsupportedVersionError,
    "type": UnknownMessageTypeError,
    "payload": PayloadError,
}

_READ_ALL = tuple(Value(ch, KIND_F32, 1.0 + ch) for ch in range(MAX_VALUES))

MESSAGES: list[tuple[str, Message]] = [
    (
        "worked_example_reading",
        Message(
            7,
            0x0102,
            Readings(60000, (Value(0, KIND_F32, 21.5), Value(4, KIND_I32_CENTI, 1234))),
            FLAG_ACK_REQ,
        ),
    ),
    ("worked_example_ack", Message(7, 1, Ack(0x0102))),
    ("hello", Message(1, 0xFFFF, Hello((1, 4, 2), 0xBEEF, 0x0F, "pole-17 air"), FLAG_ACK_REQ)),
    ("hello_no_name", Message(0, 0, Hello((0, 0, 1), 0, 0x01, ""), FLAG_ACK_REQ)),
    (
        "reading_all_kinds_wrap",
        Message(
            3,
            0xFFFF,
            Readings(
                0xFFFFFFFF,
                (
                    Value(1, KIND_I32, -40),
                    Value(2, KIND_I32_CENTI, 101325),
                    Value(12, KIND_I32_MILLI, 3712),
                    Value(255, KIND_F32, -0.5),
                ),
            ),
            FLAG_ACK_REQ | FLAG_RETRANSMIT,
        ),
    ),
    ("reading_max_values", Message(2, 0, Readings(1, _READ_ALL), FLAG_ACK_REQ)),
    ("log_info", Message(1, 5, Log(1, "boot ok, 3 sensors"))),
    ("log_max_text", Message(1, 6, Log(3, "x" * 200))),
    ("log_empty", Message(1, 6, Log(0, ""))),
    ("nack_no_session", Message(9, 0, Nack(0x1234, NACK_NO_SESSION))),
    ("ping", Message(1, 0x00FF, Ping(0xDEADBEEF))),
    ("pong", Message(1, 0x00FF, Pong(0xDEADBEEF, 123456))),
    ("config_get", Message(1, 10, ConfigGet(1))),
    ("config_set_i32", Message(1, 11, ConfigSet(1, KIND_I32, 5000))),
    ("config_set_f32", Message(1, 12, ConfigSet(7, KIND_F32, 0.25))),
    ("config_value", Message(1, 11, ConfigValue(1, 0, KIND_I32, 5000))),
    ("config_value_read_only", Message(1, 13, ConfigValue(3, CONFIG_READ_ONLY, KIND_I32, 42))),
    (
        "output_set_beacon_on",
        Message(4, 20, OutputSet(0, KIND_I32, 1, KIND_I32, 0, 10000)),
    ),
    (
        "output_set_f32_no_lease",
        Message(4, 0xFFFF, OutputSet(255, KIND_F32, 0.75, KIND_F32, -1.5, 0)),
    ),
    ("output_state_ok", Message(4, 20, OutputState(0, 0, KIND_I32, 1, 9998))),
    ("output_state_unknown", Message(4, 21, OutputState(9, OUTPUT_UNKNOWN, KIND_I32, 0, 0))),
]

COBS_CASES: list[tuple[str, bytes]] = [
    ("one_zero", b"\x00"),
    ("two_zeros", b"\x00\x00"),
    ("zero_inside", b"\x11\x22\x00\x33"),
    ("no_zero", b"\x11\x22\x33\x44"),
    ("trailing_zeros", b"\x11\x00\x00\x00"),
    ("run_254", bytes(range(1, 255))),
    ("zero_then_254", bytes(range(255))),
    ("run_255", bytes(range(1, 256))),
    ("run_254_then_zero", bytes(range(2, 256)) + b"\x00"),
    ("run_253_zero_one", bytes(range(3, 256)) + b"\x00\x01"),
]

CRC_CASES: list[tuple[str, bytes]] = [
    ("check_123456789", b"123456789"),
    ("empty", b""),
    ("one_zero", b"\x00"),
    ("letter_A", b"A"),
    ("all_bytes", bytes(range(256))),
]


def _raw_with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def _malformed() -> list[tuple[str, bytes, str]]:
    good = pack(MESSAGES[0][1])
    flipped = bytearray(good)
    flipped[8] ^= 0x04
    return [
        ("bad_crc_bit_flip", cobs.encode(bytes(flipped)), "crc"),
        ("bad_crc_swapped", cobs.encode(good[:-2] + good[-1:] + good[-2:-1]), "crc"),
        ("truncated_payload", cobs.encode(good[:-3]), "crc"),
        ("too_short", cobs.encode(good[:7]), "length"),
        ("cobs_code_past_end", bytes([0x09, 0x01, 0x02]), "cobs"),
        ("oversize", bytes([0x01]) * 260, "length"),
        (
            "too_long_raw",
            cobs.encode(_raw_with_crc(bytes([1, 3, 0, 1, 0, 0]) + b"a" * 241)),
            "length",
        ),
        ("version_2", cobs.encode(_raw_with_crc(bytes([2, 0x10, 0, 1, 0, 0, 1, 0]))), "version"),
        ("unknown_type", cobs.encode(_raw_with_crc(bytes([1, 0x7F, 0, 1, 0, 0]))), "type"),
        (
            "ack_bad_length",
            cobs.encode(_raw_with_crc(bytes([1, 0x10, 0, 1, 0, 0, 1, 2, 3]))),
            "payload",
        ),
        (
            "reading_bad_kind",
            cobs.encode(_raw_with_crc(bytes([1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0]))),
            "payload",
        ),
        (
            "reading_zero_values",
            cobs.encode(_raw_with_crc(bytes([1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0]))),
            "payload",
        ),
        (
            "output_set_short",
            cobs.encode(_raw_with_crc(bytes([1, 0x40, 0, 4, 20, 0, 0, 2, 1, 0, 0, 0, 2, 0]))),
            "payload",
        ),
        (
            "output_set_bad_fail_kind",
            cobs.encode(
                _raw_with_crc(
                    bytes([1, 0x40, 0, 4, 20, 0, 0, 2, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0])
                )
            ),
            "payload",
        ),
        (
            "output_state_bad_length",
            cobs.encode(_raw_with_crc(bytes([1, 0x41, 0, 4, 20, 0, 0, 0, 2, 1, 0, 0, 0]))),
            "payload",
        ),
    ]


def message_fields(msg: Message) -> dict[str, Any]:
    """Describe a message as JSON-ready fields (type name, header, body)."""
    body: dict[str, Any] = {}
    for f in dataclasses.fields(msg.body):
        name = f.name
        value = getattr(msg.body, name)
        if name == "values":
            value = [{"channel": v.channel, "kind": v.kind, "value": v.value} for v in value]
        elif isinstance(value, tuple):
            value = list(value)
        body[name] = value
    return {
        "type": TYPE_NAMES[msg.body.TYPE],
        "node": msg.node,
        "seq": msg.seq,
        "flags": msg.flags,
        "body": body,
    }


def message_from_fields(fields: dict[str, Any]) -> Message:
    """Rebuild a message from :func:`message_fields` output."""
    codes = {name: code for code, name in TYPE_NAMES.items()}
    cls = BODY_TYPES[codes[fields["type"]]]
    body = dict(fields["body"])
    if "values" in body:
        body["values"] = tuple(Value(**v) for v in body["values"])
    if "fw" in body:
        body["fw"] = tuple(body["fw"])
    return Message(fields["node"], fields["seq"], cls(**body), fields["flags"])


def build_vectors() -> dict[str, Any]:
    """Build all vectors as one JSON-ready dict."""
    frames = []
    for name, msg in MESSAGES:
        raw = pack(msg)
        frames.append(
            {
                "name": name,
                "message": message_fields(msg),
                "payload_hex": raw[6:-2].hex(),
                "frame_hex": encode_frame(msg).hex(),
            }
        )
    return {
        "protocol": "RSB v1",
        "crc": {
            "algorithm": "CRC-16/CCITT-FALSE",
            "poly": "0x1021",
            "init": "0xFFFF",
            "refin": False,
            "refout": False,
            "xorout": "0x0000",
            "cases": [{"name": n, "data_hex": d.hex(), "crc": crc16(d)} for n, d in CRC_CASES],
        },
        "cobs": [
            {"name": n, "decoded_hex": d.hex(), "encoded_hex": cobs.encode(d).hex()}
            for n, d in COBS_CASES
        ],
        "frames": frames,
        "malformed": [{"name": n, "frame_hex": f.hex(), "error": e} for n, f, e in _malformed()],
    }


def render_json(vectors: dict[str, Any]) -> str:
    """Render the JSON file text."""
    return json.dumps(vectors, indent=1) + "\n"


def _c_bytes(name: str, data: bytes) -> str:
    body = ", ".join(f"0x{b:02x}" for b in data) or "0"
    return f"static const uint8_t {name}[] = {{{body}}};\n"


def render_header(vectors: dict[str, Any]) -> str:
    """Render the C header: the same vectors as static arrays (no JSON parser in C)."""
    codes = {name: code for code, name in TYPE_NAMES.items()}
    out = [
        "/* Generated by `python -m firmware_bridge.vectorgen` from vectors/vectors.json."
        " Do not edit. */\n",
        "#ifndef RSB_VECTORS_H\n#define RSB_VECTORS_H\n\n",
        "#include <stddef.h>\n#include <stdint.h>\n",
        '#include "rsb_frame.h"\n\n',
    ]
    crc_rows, cobs_rows, frame_rows, bad_rows = [], [], [], []
    for i, case in enumerate(vectors["crc"]["cases"]):
        data = bytes.fromhex(case["data_hex"])
        out.append(_c_bytes(f"crc_{i}", data))
        crc_rows.append(f'  {{"{case["name"]}", crc_{i}, {len(data)}u, 0x{case["crc"]:04x}u}},\n')
    for i, case in enumerate(vectors["cobs"]):
        dec, enc = bytes.fromhex(case["decoded_hex"]), bytes.fromhex(case["encoded_hex"])
        out += [_c_bytes(f"cobs_dec_{i}", dec), _c_bytes(f"cobs_enc_{i}", enc)]
        cobs_rows.append(
            f'  {{"{case["name"]}", cobs_dec_{i}, {len(dec)}u, cobs_enc_{i}, {len(enc)}u}},\n'
        )
    for i, case in enumerate(vectors["frames"]):
        msg = case["message"]
        payload, frame = bytes.fromhex(case["payload_hex"]), bytes.fromhex(case["frame_hex"])
        out += [_c_bytes(f"frame_payload_{i}", payload), _c_bytes(f"frame_wire_{i}", frame)]
        frame_rows.append(
            f'  {{"{case["name"]}", 0x{codes[msg["type"]]:02x}u, 0x{msg["flags"]:02x}u, '
            f"{msg['node']}u, 0x{msg['seq']:04x}u, frame_payload_{i}, {len(payload)}u, "
            f"frame_wire_{i}, {len(frame)}u}},\n"
        )
    for i, case in enumerate(vectors["malformed"]):
        frame = bytes.fromhex(case["frame_hex"])
        out.append(_c_bytes(f"bad_{i}", frame))
        err = "RSB_ERR_" + case["error"].upper()
        bad_rows.append(f'  {{"{case["name"]}", bad_{i}, {len(frame)}u, {err}}},\n')
    out += [
        "\ntypedef struct { const char *name; const uint8_t *data; size_t len; uint16_t crc; }"
        " crc_vector_t;\n",
        "typedef struct { const char *name; const uint8_t *dec; size_t dec_len;"
        " const uint8_t *enc; size_t enc_len; } cobs_vector_t;\n",
        "typedef struct { const char *name; uint8_t type; uint8_t flags; uint8_t node;"
        " uint16_t seq; const uint8_t *payload; size_t payload_len; const uint8_t *wire;"
        " size_t wire_len; } frame_vector_t;\n",
        "typedef struct { const char *name; const uint8_t *wire; size_t wire_len; int error; }"
        " malformed_vector_t;\n\n",
        "static const crc_vector_t CRC_VECTORS[] = {\n",
        *crc_rows,
        "};\nstatic const cobs_vector_t COBS_VECTORS[] = {\n",
        *cobs_rows,
        "};\nstatic const frame_vector_t FRAME_VECTORS[] = {\n",
        *frame_rows,
        "};\nstatic const malformed_vector_t MALFORMED_VECTORS[] = {\n",
        *bad_rows,
        "};\n\n#define N_VECTORS(a) (sizeof(a) / sizeof((a)[0]))\n\n#endif\n",
    ]
    return "".join(out)


def main() -> None:
    """Rewrite vectors.json and c/vectors.h."""
    vectors = build_vectors()
    JSON_PATH.write_text(render_json(vectors))
    HEADER_PATH.write_text(render_header(json.loads(JSON_PATH.read_text())))
    print(f"wrote {JSON_PATH} and {HEADER_PATH}")


if __name__ == "__main__":
    main()
