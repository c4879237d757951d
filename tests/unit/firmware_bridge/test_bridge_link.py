"""The reliable link: dedup, ordering, windows, resync, reboot, and loss in both directions."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.link import DEDUP_WINDOW, HOST_WINDOW, BoardLink, HostLink, seq_add
from firmware_bridge.messages import (
    FLAG_ACK_REQ,
    FLAG_RETRANSMIT,
    KIND_I32,
    NACK_NO_SESSION,
    NACK_OUT_OF_WINDOW,
    Ack,
    Hello,
    Log,
    Message,
    Nack,
    Readings,
    Value,
)
from simulators.board.faults import FaultConfig, Wire


def rd(i: int, node: int = 5, seq: int | None = None) -> Message:
    """A reliable reading whose uptime field carries the unique id ``i``."""
    return Message(node, i if seq is None else seq, Readings(i, (Value(0, KIND_I32, i),)), 1)


def hello_msg(node: int, seq: int, boot: int) -> Message:
    return Message(node, seq, Hello((1, 0, 0), boot, 1, "b"), FLAG_ACK_REQ)


def ids(msgs: list[Message]) -> list[int]:
    out = []
    for m in msgs:
        assert isinstance(m.body, Readings)
        out.append(m.body.uptime_ms)
    return out


# --- host side, message by message -------------------------------------------------


def test_duplicate_is_acked_again_but_delivered_once() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 9, boot=1))
    first = host.receive(rd(10))
    again = host.receive(rd(10))
    assert ids(first.delivered) == [10]
    assert again.delivered == []
    assert [r.body for r in again.replies] == [Ack(10)]
    assert host.counters.duplicates == 1


def test_out_of_order_is_held_then_delivered_in_order() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 9, boot=1))
    ahead = host.receive(rd(12))
    assert ahead.delivered == []
    assert ahead.replies == []  # held, not acknowledged: ACK means delivered
    assert host.receive(rd(11)).delivered == []
    assert host.receive(rd(12)).replies == []  # a retransmission of a held message
    filled = host.receive(rd(10))
    assert ids(filled.delivered) == [10, 11, 12]
    assert [r.body for r in filled.replies] == [Ack(10), Ack(11), Ack(12)]
    assert host.counters.reordered == 2
    assert host.counters.duplicates == 1


def test_sequence_wraps_around() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 65533, boot=1))
    got = []
    for seq in (65534, 65535, 0, 1, 65535, 2):
        got += host.receive(rd(seq)).delivered
    assert [m.seq for m in got] == [65534, 65535, 0, 1, 2]
    assert host.counters.duplicates == 1


def test_no_session_is_nacked_not_delivered() -> None:
    host = HostLink()
    result = host.receive(rd(3))
    assert result.delivered == []
    assert [r.body for r in result.replies] == [Nack(3, NACK_NO_SESSION)]


def test_far_seq_is_out_of_window() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 99, boot=1))
    far = seq_add(100, HOST_WINDOW + 5)
    result = host.receive(rd(far))
    assert result.delivered == []
    assert [r.body for r in result.replies] == [Nack(far, NACK_OUT_OF_WINDOW)]
    behind = seq_add(100, -DEDUP_WINDOW - 1)
    assert [r.body for r in host.receive(rd(behind)).replies] == [Nack(behind, 2)]


def test_same_boot_hello_keeps_session_new_boot_resets_and_flushes_held() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 9, boot=1))
    host.receive(rd(10))
    host.receive(rd(12))  # held: 11 missing
    resync = host.receive(hello_msg(5, 10, boot=1))
    assert resync.delivered == []
    assert host.counters.resyncs == 1
    assert ids(host.receive(rd(10)).delivered) == []  # still a duplicate: session kept
    reboot = host.receive(hello_msg(5, 500, boot=2))
    assert ids(reboot.delivered) == [12]  # held message of the old boot, with a gap
    assert host.counters.gaps == 1
    assert host.counters.reboots == 1
    assert ids(host.receive(rd(501)).delivered) == [501]


def test_best_effort_messages_pass_through_without_ack() -> None:
    host = HostLink()
    result = host.receive(Message(5, 0, Log(1, "hi")))
    assert result.replies == []
    assert [m.body for m in result.other] == [Log(1, "hi")]


def test_node_sessions_are_bounded_least_recent_evicted() -> None:
    host = HostLink(max_nodes=2)
    for node in (1, 2, 3):
        host.receive(hello_msg(node, 0, boot=node))
    assert sorted(host.nodes()) == [2, 3]
    assert host.counters.evicted_nodes == 1
    assert [r.body for r in host.receive(rd(1, node=1)).replies] == [Nack(1, NACK_NO_SESSION)]


def test_held_messages_are_bounded_by_the_window() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 0, boot=1))
    for seq in range(2, 200):
        host.receive(rd(seq))
    assert host.counters.out_of_window == 200 - 2 - (HOST_WINDOW - 1)


# --- board side --------------------------------------------------------------------


def test_board_sends_nothing_before_hello_ack_then_respects_window() -> None:
    board = BoardLink(5, Hello(boot_id=1), first_seq=100, window=4, rto=1.0)
    for i in range(10):
        assert board.offer(rd(i).body) is not None
    sent = board.poll(0.0)
    assert [m.body for m in sent] == [Hello(boot_id=1)]
    assert sent[0].seq == 99
    assert board.poll(0.5) == []
    assert [m.body for m in board.poll(1.0)] == [Hello(boot_id=1)]  # retransmitted
    board.receive(Message(5, 1, Ack(99)))
    assert [m.seq for m in board.poll(1.1)] == [100, 101, 102, 103]
    board.receive(Message(5, 2, Ack(101)))  # cumulative: acknowledges 100 and 101
    assert [m.seq for m in board.poll(1.2)] == [104, 105]
    board.receive(Message(5, 3, Ack(100)))  # stale
    assert board.counters.stale_acks == 1
    assert board.poll(1.3) == []
    again = board.poll(2.1)
    assert [m.seq for m in again] == [102, 103]
    assert all(m.flags & FLAG_RETRANSMIT for m in again)


def test_board_queue_is_bounded() -> None:
    board = BoardLink(5, Hello(), queue_limit=3)
    accepted = [board.offer(rd(i).body) for i in range(5)]
    assert [a is not None for a in accepted] == [True, True, True, False, False]
    assert board.counters.refused == 2
    assert len(board.pending) == 3


def test_board_resyncs_on_nack_with_hello_before_oldest_pending() -> None:
    board = BoardLink(5, Hello(boot_id=7), first_seq=10, rto=1.0)
    board.poll(0.0)
    board.receive(Message(5, 1, Ack(9)))
    for i in range(3):
        board.offer(rd(i).body)
    board.poll(0.1)
    board.receive(Message(5, 2, Ack(10)))
    board.receive(Message(5, 3, Nack(11, NACK_NO_SESSION)))
    assert board.hello_pending
    hello = board.poll(0.2)
    assert [(m.seq, m.body) for m in hello] == [(10, Hello(boot_id=7))]
    board.receive(Message(5, 4, Ack(10)))
    assert [m.seq for m in board.poll(0.3)] == [11, 12]  # resent at once


# --- the whole link under loss and corruption --------------------------------------


@dataclass
class LinkRun:
    produced: list[int] = field(default_factory=list)
    maybe_lost: set[int] = field(default_factory=set)
    delivered: list[Message] = field(default_factory=list)
    retransmits: int = 0
    finished: bool = False


def run_link(
    seed: int,
    faults: FaultConfig,
    n: int,
    reboot_at: tuple[int, ...] = (),
    restart_host_at: tuple[int, ...] = (),
    first_seq: int = 65500,
) -> tuple[LinkRun, HostLink]:
    rng = random.Random(seed)
    up, down = Wire(faults, random.Random(seed + 1)), Wire(faults, random.Random(seed + 2))
    host, host_rx, board_rx = HostLink(), Deframer(), Deframer()
    boot = 1
    board = BoardLink(5, Hello(boot_id=boot), first_seq=first_seq, rto=0.3)
    run = LinkRun()
    t = 0.0
    for step in range(40_000):
        t += 0.02
        if len(run.produced) < n and step % 2 == 0:
            i = len(run.produced)
            if i in reboot_at and board.counters.offered and i not in run.maybe_lost:
                run.maybe_lost |= set(ids(board.pending))
                run.maybe_lost.add(i)  # marks this reboot as done
                run.retransmits += board.counters.retransmits
                boot += 1
                board = BoardLink(5, Hello(boot_id=boot), first_seq=rng.randrange(65536))
            if i in restart_host_at and host.counters.delivered and i not in run.maybe_lost:
                run.maybe_lost.add(i)
                host, host_rx = HostLink(), Deframer()
            if board.offer(rd(i).body) is not None:
                run.produced.append(i)
        replies: list[Message] = []
        for chunk in up.apply([b"\x00" + encode_frame(m) for m in board.poll(t)]):
            for msg in host_rx.feed(chunk):
                result = host.receive(msg)
                run.delivered += result.delivered
                replies += result.replies
        for chunk in down.apply([b"\x00" + encode_frame(m) for m in replies]):
            for msg in board_rx.feed(chunk):
                board.receive(msg)
        if len(run.produced) == n and not board.pending and not board.hello_pending:
            run.finished = True
            break
    run.retransmits += board.counters.retransmits
    return run, host


LOSSY = FaultConfig(
    drop_frame=0.15, flip=0.003, garbage=0.05, split=0.3, merge=0.2, drop_byte=0.001
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exactly_once_in_order_under_loss_and_corruption(seed: int) -> None:
    run, host = run_link(seed, LOSSY, n=400)
    assert run.finished
    assert ids(run.delivered) == run.produced  # no loss, no duplicate, in order
    assert run.retransmits > 0
    assert host.counters.duplicates > 0  # lost ACKs really happened and were handled


@pytest.mark.parametrize("seed", [4, 5])
def test_exactly_once_across_board_reboots(seed: int) -> None:
    run, host = run_link(seed, LOSSY, n=400, reboot_at=(120, 300))
    assert run.finished
    got = ids(run.delivered)
    assert len(got) == len(set(got))
    assert got == sorted(got)
    missing = set(run.produced) - set(got)
    assert missing <= run.maybe_lost  # only what was unacked in RAM when the board rebooted
    assert host.counters.reboots == 2


def test_host_restart_loses_nothing() -> None:
    run, host = run_link(6, LOSSY, n=300, restart_host_at=(150,))
    assert run.finished
    got = ids(run.delivered)
    assert set(got) == set(run.produced)
    assert len(got) - len(set(got)) <= 8  # only in-flight messages may repeat (SPEC 6)
    assert host.counters.sessions == 1


def test_same_boot_hello_far_away_restarts_session_without_flushing() -> None:
    host = HostLink()
    host.receive(hello_msg(5, 9, boot=1))
    host.receive(rd(12))  # held behind a gap, not acknowledged
    result = host.receive(hello_msg(5, 1000, boot=1))
    assert result.delivered == []  # the board still has 12 and will send it again
    assert host.counters.sessions == 2
    assert host.counters.reboots == 0
    assert ids(host.receive(rd(1001)).delivered) == [1001]


def test_board_ignores_ack_beyond_its_window() -> None:
    board = BoardLink(5, Hello(boot_id=1), first_seq=0, window=4)
    board.poll(0.0)
    board.receive(Message(5, 1, Ack(65535)))
    for i in range(4):
        board.offer(rd(i).body)
    board.poll(0.1)
    board.receive(Message(5, 2, Ack(40)))
    assert len(board.pending) == 4
    assert board.counters.stale_acks == 1


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    drop=st.floats(0.0, 0.3),
    flip=st.floats(0.0, 0.01),
    reboots=st.lists(st.integers(1, 119), max_size=2, unique=True),
    first_seq=st.integers(0, 65535),
)
def test_exactly_once_property(
    seed: int, drop: float, flip: float, reboots: list[int], first_seq: int
) -> None:
    faults = FaultConfig(drop_frame=drop, flip=flip, garbage=0.05, split=0.3, merge=0.3)
    run, _ = run_link(seed, faults, n=120, reboot_at=tuple(reboots), first_seq=first_seq)
    assert run.finished
    got = ids(run.delivered)
    assert len(got) == len(set(got))
    assert got == sorted(got)
    assert set(run.produced) - set(got) <= run.maybe_lost
    if not reboots:
        assert got == run.produced
