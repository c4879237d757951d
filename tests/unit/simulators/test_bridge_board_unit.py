"""The simulated board's parts: fault injection and the board state machine."""

from __future__ import annotations

import random

import pytest

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.messages import (
    CONFIG_OK,
    CONFIG_READ_ONLY,
    CONFIG_UNKNOWN_KEY,
    KIND_I32,
    NACK_UNSUPPORTED,
    Ack,
    ConfigGet,
    ConfigSet,
    ConfigValue,
    Hello,
    Log,
    Message,
    Nack,
    Ping,
    Pong,
    Readings,
)
from gateway.errors import UsageError
from simulators.board.board import (
    KEY_REPORT_INTERVAL_MS,
    KEY_UPTIME_S,
    Board,
    BoardOptions,
)
from simulators.board.faults import FaultConfig, Wire

# --- faults ------------------------------------------------------------------------


def test_fault_config_parse() -> None:
    cfg = FaultConfig.parse("drop_frame=0.1, flip=0.001,merge=1")
    assert cfg == FaultConfig(drop_frame=0.1, flip=0.001, merge=1.0)
    assert FaultConfig.parse("") == FaultConfig()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("drop=0.1", "bad fault"),
        ("flip", "bad fault"),
        ("flip=-1", "outside"),
        ("flip=a", "number"),
    ],
)
def test_fault_config_rejects(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        FaultConfig.parse(text)


FRAMES = [bytes([1, 2, 3, 4, 5, 0]) * 3 for _ in range(20)]


def test_wire_without_faults_is_transparent() -> None:
    assert Wire(FaultConfig(), random.Random(1)).apply(FRAMES) == [b"".join(FRAMES)]


def test_wire_is_deterministic_per_seed() -> None:
    cfg = FaultConfig(drop_frame=0.3, flip=0.05, drop_byte=0.05, garbage=0.3, split=0.5)
    runs = [[Wire(cfg, random.Random(7)).apply(FRAMES) for _ in range(3)] for _ in range(2)]
    assert runs[0] == runs[1]


def test_wire_faults_do_what_they_say() -> None:
    drop_all = Wire(FaultConfig(drop_frame=1.0), random.Random(1))
    assert drop_all.apply(FRAMES) == []
    assert drop_all.dropped_frames == len(FRAMES)
    flip = Wire(FaultConfig(flip=1.0), random.Random(1))
    (out,) = flip.apply(FRAMES[:1])
    assert all(bin(a ^ b).count("1") == 1 for a, b in zip(out, FRAMES[0], strict=True))
    split = Wire(FaultConfig(split=1.0), random.Random(1)).apply(FRAMES)
    assert len(split) > 1
    assert b"".join(split) == b"".join(FRAMES)
    merge = Wire(FaultConfig(merge=1.0), random.Random(1))
    assert merge.apply(FRAMES[:2]) == []
    assert merge.flush() == [b"".join(FRAMES[:2])]
    garbage = Wire(FaultConfig(garbage=1.0), random.Random(1))
    (noisy,) = garbage.apply(FRAMES)
    assert len(noisy) == len(b"".join(FRAMES)) + garbage.garbage_bytes


# --- the board ---------------------------------------------------------------------


def out_msgs(board: Board, now: float) -> list[Message]:
    return Deframer().feed(b"".join(board.step(now)))


def send(board: Board, msg: Message, now: float) -> None:
    board.receive(encode_frame(msg), now)


def booted(max_records: int = 1000) -> Board:
    """A board whose HELLO has been acknowledged."""
    board = Board(BoardOptions(node=2, interval=1.0, log_every=0, max_records=max_records), 0.0)
    msgs = out_msgs(board, 0.0)
    hello = next(m for m in msgs if isinstance(m.body, Hello))
    send(board, Message(2, 1, Ack(hello.seq)), 0.0)
    return board


def test_board_says_hello_first_and_sends_readings_only_after_its_ack() -> None:
    board = Board(BoardOptions(node=2, interval=0.5), now=0.0)
    first = out_msgs(board, 0.0)
    assert [type(m.body) for m in first] == [Log, Hello]  # boot log line, then HELLO
    for t in (0.6, 1.2, 1.8):  # readings are produced and queued, not sent
        assert all(not isinstance(m.body, Readings) for m in out_msgs(board, t))
    assert len(board.link.pending) == 3
    hello = first[1]
    send(board, Message(2, 1, Ack(hello.seq)), 2.0)
    readings = [m for m in out_msgs(board, 2.1) if isinstance(m.body, Readings)]
    assert [m.seq for m in readings] == [(hello.seq + i + 1) % 65536 for i in range(len(readings))]
    assert len(readings) == 3
    body = readings[0].body
    assert isinstance(body, Readings)
    assert {v.channel for v in body.values} == {0, 1, 2, 4, 6}


def test_board_answers_ping_and_config() -> None:
    board = booted()
    send(board, Message(2, 40, Ping(99)), 1.5)
    send(board, Message(2, 41, ConfigSet(KEY_REPORT_INTERVAL_MS, KIND_I32, 500)), 1.5)
    send(board, Message(2, 42, ConfigGet(77)), 1.5)
    send(board, Message(2, 43, ConfigSet(KEY_UPTIME_S, KIND_I32, 1)), 1.5)
    send(board, Message(2, 44, Log(1, "not for boards")), 1.5)
    send(board, Message(3, 45, Ping(1)), 1.5)  # another node: ignored
    answers = {m.seq: m.body for m in out_msgs(board, 1.5) if not isinstance(m.body, Readings)}
    assert answers[40] == Pong(99, 1500)
    assert answers[41] == ConfigValue(KEY_REPORT_INTERVAL_MS, CONFIG_OK, KIND_I32, 500)
    assert answers[42] == ConfigValue(77, CONFIG_UNKNOWN_KEY, KIND_I32, 0)
    assert answers[43] == ConfigValue(KEY_UPTIME_S, CONFIG_READ_ONLY, KIND_I32, 1)
    assert answers[44] == Nack(44, NACK_UNSUPPORTED)
    assert 45 not in answers
    assert board.interval_ms == 500


def test_reboot_loses_the_unacked_queue_and_says_hello_again() -> None:
    board = booted()
    sent = [m for t in (1.0, 2.0, 3.0) for m in out_msgs(board, t) if isinstance(m.body, Readings)]
    seqs = sorted({m.seq for m in sent})
    assert len(seqs) == 3
    old_boot = board.boot_id
    board.reboot(3.5)
    assert sorted(seq for _, seq in board.lost_on_reboot) == seqs
    assert board.boot_id != old_boot
    hello = [m.body for m in out_msgs(board, 3.5) if isinstance(m.body, Hello)]
    assert len(hello) == 1
    assert hello[0].boot_id == board.boot_id
    assert board.stats()["boots"] == 2


def test_produced_records_are_bounded() -> None:
    board = booted(max_records=5)
    for t in range(1, 30):
        out_msgs(board, float(t))
        for m in board.link.pending:
            send(board, Message(2, 1, Ack(m.seq)), float(t))
    assert len(board.produced) == 5
    assert board.stats()["produced"] == 5
