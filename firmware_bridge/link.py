"""The reliable link: host-side session (ACKs, dedup, in-order delivery) and board-side sender.

Both sides are pure state machines: no I/O, the caller passes messages in and gets
messages to transmit back; the board side takes ``now`` (seconds, any monotonic clock)
so tests can drive it with a virtual clock. See SPEC.md, "Reliability".
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field

from firmware_bridge.messages import (
    FLAG_ACK_REQ,
    FLAG_RETRANSMIT,
    NACK_NO_SESSION,
    NACK_OUT_OF_WINDOW,
    Ack,
    Body,
    Hello,
    Message,
    Nack,
)

SEQ_MOD = 1 << 16
WINDOW = 8  # board: at most this many unacknowledged reliable messages in flight
HOST_WINDOW = 32  # host: seqs accepted ahead of the next expected one (>= WINDOW)
DEDUP_WINDOW = 64  # host: seqs just behind the next expected one are duplicates


def seq_add(seq: int, n: int) -> int:
    """Sequence arithmetic modulo 2**16."""
    return (seq + n) % SEQ_MOD


def seq_diff(a: int, b: int) -> int:
    """Distance from ``b`` forward to ``a`` modulo 2**16 (0..65535)."""
    return (a - b) % SEQ_MOD


@dataclass
class HostCounters:
    """Monotonic counters of a :class:`HostLink`."""

    delivered: int = 0
    duplicates: int = 0  # retransmissions already delivered: ACKed again, not delivered
    reordered: int = 0  # messages held until a gap before them was filled
    out_of_window: int = 0
    no_session: int = 0
    sessions: int = 0  # HELLOs that started a session (first contact or reboot)
    reboots: int = 0  # of which: a known node with a new boot id
    resyncs: int = 0  # HELLOs that kept the current session (same boot id, seq in range)
    gaps: int = 0  # seqs skipped when a reboot flushed held messages
    evicted_nodes: int = 0


@dataclass
class _Session:
    hello: Hello
    hello_seq: int
    next_seq: int
    held: dict[int, Message] = field(default_factory=dict)


@dataclass
class LinkResult:
    """What one received message produced on the host side."""

    delivered: list[Message] = field(default_factory=list)  # reliable data, in order, once
    boot_id: int = -1  # boot id of the session the delivered messages belong to
    replies: list[Message] = field(default_factory=list)  # ACK / NACK to send back
    other: list[Message] = field(default_factory=list)  # HELLO and best-effort messages


class HostLink:
    """Host side: deliver each (node, seq) once and in order, ACK what was delivered.

    A message ahead of a gap is held without ACK (the board retransmits it until the gap
    is filled); a message already delivered is ACKed again but not delivered.

    State is one session per node id, at most ``max_nodes`` (least recently heard
    evicted); each session holds at most ``HOST_WINDOW`` out-of-order messages.
    """

    def __init__(self, max_nodes: int = 64) -> None:
        self.max_nodes = max_nodes
        self.counters = HostCounters()
        self._sessions: OrderedDict[int, _Session] = OrderedDict()
        self._tx_seq = 0

    def nodes(self) -> dict[int, Hello]:
        """Return the HELLO of every node with a session."""
        return {node: s.hello for node, s in self._sessions.items()}

    def receive(self, msg: Message) -> LinkResult:
        """Process one message from a board."""
        result = LinkResult()
        if isinstance(msg.body, Hello):
            self._hello(msg, msg.body, result)
            result.other.append(msg)
            return result
        if not msg.reliable:
            result.other.append(msg)
            return result
        session = self._sessions.get(msg.node)
        if session is None:
            self.counters.no_session += 1
            result.replies.append(self._reply(msg.node, Nack(msg.seq, NACK_NO_SESSION)))
            return result
        self._sessions.move_to_end(msg.node)
        result.boot_id = session.hello.boot_id
        ahead = seq_diff(msg.seq, session.next_seq)
        if ahead < HOST_WINDOW:
            if msg.seq in session.held:
                self.counters.duplicates += 1
                return result
            session.held[msg.seq] = msg
            if ahead:
                self.counters.reordered += 1
            while session.next_seq in session.held:  # deliver, then ACK: ACK means delivered
                result.delivered.append(session.held.pop(session.next_seq))
                result.replies.append(self._reply(msg.node, Ack(session.next_seq)))
                session.next_seq = seq_add(session.next_seq, 1)
        elif ahead >= SEQ_MOD - DEDUP_WINDOW:
            self.counters.duplicates += 1
            result.replies.append(self._reply(msg.node, Ack(msg.seq)))
        else:
            self.counters.out_of_window += 1
            result.replies.append(self._reply(msg.node, Nack(msg.seq, NACK_OUT_OF_WINDOW)))
        self.counters.delivered += len(result.delivered)
        return result

    def _hello(self, msg: Message, hello: Hello, result: LinkResult) -> None:
        result.replies.append(self._reply(msg.node, Ack(msg.seq)))
        start = seq_add(msg.seq, 1)
        session = self._sessions.get(msg.node)
        if session is not None:
            self._sessions.move_to_end(msg.node)
            behind = seq_diff(session.next_seq, start)
            if session.hello.boot_id == hello.boot_id and behind <= DEDUP_WINDOW:
                self.counters.resyncs += 1
                return
            if session.hello.boot_id != hello.boot_id:
                # A reboot: held messages can never be completed nor retransmitted.
                self.counters.reboots += 1
                result.delivered.extend(self._flush(session))
                result.boot_id = session.hello.boot_id
            # Same boot but a seq far away: the held messages are unacknowledged, so the
            # board still has them and sends them again into the new session.
        self.counters.sessions += 1
        self._sessions[msg.node] = _Session(hello, msg.seq, start)
        while len(self._sessions) > self.max_nodes:
            # Held messages of an evicted node are unacknowledged: its board resends them
            # after the NO_SESSION / HELLO resync, so they are dropped here, not delivered.
            self._sessions.popitem(last=False)
            self.counters.evicted_nodes += 1
        self.counters.delivered += len(result.delivered)

    def _flush(self, session: _Session) -> list[Message]:
        """Deliver held messages of an ending session in seq order, counting the gaps."""
        out: list[Message] = []
        for seq in sorted(session.held, key=lambda s: seq_diff(s, session.next_seq)):
            self.counters.gaps += seq_diff(seq, session.next_seq) - len(out)
            out.append(session.held[seq])
        session.held.clear()
        return out

    def _reply(self, node: int, body: Body) -> Message:
        self._tx_seq = seq_add(self._tx_seq, 1)
        return Message(node, self._tx_seq, body)


@dataclass
class BoardCounters:
    """Monotonic counters of a :class:`BoardLink`."""

    offered: int = 0
    refused: int = 0  # offers refused because the queue was full
    sent: int = 0
    retransmits: int = 0
    acked: int = 0
    stale_acks: int = 0
    hellos: int = 0
    resyncs: int = 0  # NACKs that made the board send HELLO again


@dataclass
class _Pending:
    msg: Message
    sent_at: float | None = None
    tries: int = 0


class BoardLink:
    """Board side: number reliable messages, keep them until ACKed, retransmit on timeout.

    ``queue_limit`` bounds the messages kept (in flight and waiting); ``offer`` refuses
    new ones when it is full. At most ``window`` consecutive seqs from the oldest
    unacknowledged one are in flight. No data is sent while a HELLO is unacknowledged.
    """

    def __init__(
        self,
        node: int,
        hello: Hello,
        *,
        first_seq: int = 0,
        window: int = WINDOW,
        queue_limit: int = 64,
        rto: float = 0.3,
    ) -> None:
        self.node = node
        self.hello = hello
        self.window = window
        self.queue_limit = queue_limit
        self.rto = rto
        self.counters = BoardCounters()
        self._next_seq = first_seq % SEQ_MOD
        self._queue: list[_Pending] = []
        self._hello: _Pending | None = _Pending(
            Message(node, seq_add(first_seq, -1), hello, FLAG_ACK_REQ)
        )

    @property
    def pending(self) -> list[Message]:
        """Reliable messages not yet acknowledged, oldest first."""
        return [p.msg for p in self._queue]

    @property
    def hello_pending(self) -> bool:
        """True while the board waits for the ACK of its HELLO."""
        return self._hello is not None

    def offer(self, body: Body) -> Message | None:
        """Queue a reliable message; return it with its seq, or None when the queue is full."""
        self.counters.offered += 1
        if len(self._queue) >= self.queue_limit:
            self.counters.refused += 1
            return None
        msg = Message(self.node, self._next_seq, body, FLAG_ACK_REQ)
        self._next_seq = seq_add(self._next_seq, 1)
        self._queue.append(_Pending(msg))
        return msg

    def poll(self, now: float) -> list[Message]:
        """Messages to transmit at time ``now``: a due HELLO, or new and timed-out data."""
        if self._hello is not None:
            # The HELLO names the seq just before the oldest unacknowledged message, as of
            # when it is sent: ACKs still arriving from before the resync may move it.
            seq = seq_add(self._base(), -1)
            if self._hello.msg.seq != seq:
                self._hello.msg = Message(self.node, seq, self.hello, FLAG_ACK_REQ)
            return [m for m in [self._due(self._hello, now)] if m is not None]
        out: list[Message] = []
        if not self._queue:
            return out
        base = self._queue[0].msg.seq
        for pending in self._queue:
            if seq_diff(pending.msg.seq, base) >= self.window:
                break
            msg = self._due(pending, now)
            if msg is not None:
                out.append(msg)
        return out

    def receive(self, msg: Message) -> bool:
        """Process an ACK or NACK from the host; return False for any other message."""
        body = msg.body
        if isinstance(body, Ack):
            self._ack(body.ack_seq)
            return True
        if isinstance(body, Nack):
            if body.reason in (NACK_NO_SESSION, NACK_OUT_OF_WINDOW) and self._hello is None:
                self.counters.resyncs += 1
                hello = Message(self.node, seq_add(self._base(), -1), self.hello, FLAG_ACK_REQ)
                self._hello = _Pending(hello)
            return True
        return False

    def _base(self) -> int:
        """Return the oldest unacknowledged seq, or the next seq when nothing is pending."""
        return self._queue[0].msg.seq if self._queue else self._next_seq

    def _ack(self, seq: int) -> None:
        if self._hello is not None and seq == self._hello.msg.seq:
            if seq != seq_add(self._base(), -1):
                return  # ACKs that arrived since moved the base: send the HELLO again
            self._hello = None
            for pending in self._queue:  # resend everything in flight right away
                pending.sent_at = None
            return
        # Cumulative: the host delivers in order and ACKs only what it delivered, so an
        # ACK of ``seq`` covers every earlier seq too. The queue stays contiguous.
        removed = 0
        if seq_diff(seq, self._base()) >= self.window:
            self._queue_stale()
            return
        while self._queue and self._queue[0].tries:
            if seq_diff(seq, self._queue[0].msg.seq) >= SEQ_MOD // 2:
                break
            del self._queue[0]
            removed += 1
        self.counters.acked += removed
        if not removed:
            self._queue_stale()

    def _queue_stale(self) -> None:
        self.counters.stale_acks += 1

    def _due(self, pending: _Pending, now: float) -> Message | None:
        if pending.sent_at is not None and now - pending.sent_at < self.rto:
            return None
        msg = pending.msg
        if pending.tries:
            self.counters.retransmits += 1
            msg = Message(msg.node, msg.seq, msg.body, msg.flags | FLAG_RETRANSMIT)
        elif isinstance(msg.body, Hello):
            self.counters.hellos += 1
        pending.sent_at = now
        pending.tries += 1
        self.counters.sent += 1
        return msg


def counters_dict(counters: HostCounters | BoardCounters) -> dict[str, int]:
    """Return a counters dataclass as a plain dict."""
    return asdict(counters)
