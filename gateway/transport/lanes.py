"""Priority lanes of the outbox: which events leave first, and in which order.

Every stored event belongs to one lane, chosen by its type (:data:`LANE_OF_TYPE`):

=========  ======================================  ====================================
lane       types                                   why
=========  ======================================  ====================================
``alert``  ``alert``, ``actuation``                somebody may have to act on it now
``control`` ``health``, ``manifest``, ``command``  the unit's own state and audit
``bulk``   everything else (crossings, zones,      the traffic record: complete, but
           aggregates, flow, sensor readings)      minutes late do no harm
=========  ======================================  ====================================

The forwarder fills each free slot of its in-flight window from the highest lane that
has events waiting, so an alert raised while a backlog drains waits for one slot, not
for the backlog. No lane starves: a lane with events waiting that was passed over for
``N`` publishes in a row gets the next one (``N = round(1 / share) - 1``; with the
default share of 0.1, at least one publish in every ten). Within a lane events leave in
``seq`` order; the ``bulk`` lane may instead drain its backlog newest first
(``backlog_order = "newest_first"``): events stored since the (re)connection go first,
oldest first, then what waited before it, newest to oldest.

:class:`LaneQueue` is one cursor over one lane (or over part of the bulk lane);
:class:`Scheduler` picks the queue the next slot goes to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

BacklogOrder = Literal["oldest_first", "newest_first"]

ALERT: Final = 0
CONTROL: Final = 1
BULK: Final = 2
LANE_NAMES: Final[tuple[str, ...]] = ("alert", "control", "bulk")
LANE_OF_TYPE: Final[dict[str, int]] = {
    "alert": ALERT,
    "actuation": ALERT,
    "health": CONTROL,
    "manifest": CONTROL,
    "command": CONTROL,
    "availability": CONTROL,
}
# SQL that derives the lane of a stored row from its JSON payload (rows stored by a
# version without lanes, salvaged rows).
LANE_SQL: Final = (
    "CASE json_extract(CAST(payload AS TEXT), '$.type') "
    + " ".join(f"WHEN '{t}' THEN {lane}" for t, lane in LANE_OF_TYPE.items())
    + f" ELSE {BULK} END"
)


def lane_of(event_type: str) -> int:
    """The lane of an event type (``bulk`` for every type not listed)."""
    return LANE_OF_TYPE.get(event_type, BULK)


@dataclass(slots=True)
class LaneQueue:
    """A cursor over one lane's stored events, ascending or descending in ``seq``.

    Ascending: rows ``floor < seq``, the cursor is the last seq taken (passed).
    Descending: rows ``seq <= ceiling``, the cursor is the lowest seq taken so far
    (``ceiling + 1`` before the first); it ends at seq 1.

    When the broker accepts a held topic again, its lane's queues are rewound
    (:meth:`rewind`) so the kept rows go out in lane order; rows the queue reaches a
    second time (:meth:`revisits`) may be in flight already and are checked first.
    """

    name: str
    lane: int
    descending: bool = False
    floor: int = 0
    ceiling: int = 0
    cursor: int = 0
    waited: int = 0  # publishes given to other queues while this one had events waiting
    exhausted: bool = field(default=False)
    reached: int = 0  # the farthest the cursor went (before a rewind)

    @classmethod
    def ascending(cls, name: str, lane: int, floor: int = 0) -> LaneQueue:
        """Rows of ``lane`` above ``floor``, oldest first."""
        return cls(name, lane, floor=floor, cursor=floor, reached=floor)

    @classmethod
    def descending_from(cls, name: str, lane: int, ceiling: int) -> LaneQueue:
        """Rows of ``lane`` up to ``ceiling``, newest first."""
        start = ceiling + 1
        return cls(name, lane, descending=True, ceiling=ceiling, cursor=start, reached=start)

    def passed(self, seq: int) -> bool:
        """Whether this queue's cursor has gone past ``seq`` (it will not send it again)."""
        if self.descending:
            return self.cursor <= seq <= self.ceiling
        return self.floor < seq <= self.cursor

    def covers(self, seq: int) -> bool:
        """Whether ``seq`` is in this queue's part of its lane."""
        return seq <= self.ceiling if self.descending else seq > self.floor

    def passed_range(self) -> tuple[int, int] | None:
        """The inclusive seq range the cursor has gone past, or None."""
        if self.descending:
            return (self.cursor, self.ceiling) if self.cursor <= self.ceiling else None
        return (self.floor + 1, self.cursor) if self.cursor > self.floor else None

    def advance(self, seq: int) -> None:
        """The row ``seq`` was taken (sent, or skipped for a held topic)."""
        self.cursor = seq
        self.reached = min(self.reached, seq) if self.descending else max(self.reached, seq)

    def revisits(self, seq: int) -> bool:
        """Whether the cursor passed ``seq`` before a rewind (it may be in flight)."""
        return seq >= self.reached if self.descending else seq <= self.reached

    def rewind(self, first_seq: int) -> None:
        """Go back so that rows from ``first_seq`` on are read again (a hold was lifted)."""
        if self.descending:
            if self.cursor <= self.ceiling:
                self.cursor = self.ceiling + 1
                self.exhausted = False
        elif self.cursor >= first_seq:
            self.cursor = max(first_seq - 1, self.floor)


@dataclass(slots=True)
class Scheduler:
    """Chooses the queue the next publish comes from: priority, with a share for the rest."""

    queues: list[LaneQueue]
    share: float = 0.1

    @property
    def patience(self) -> int:
        """Publishes a waiting queue lets pass before it takes one."""
        return max(round(1.0 / self.share) - 1, 1)

    def pick(self, ready: Sequence[LaneQueue]) -> LaneQueue | None:
        """The queue to serve among ``ready`` (those with events waiting), or None."""
        if not ready:
            return None
        starving = [q for q in ready if q.waited >= self.patience]
        if starving:
            return max(starving, key=lambda q: q.waited)
        return ready[0]  # ``ready`` keeps the priority order of ``queues``

    def served(self, chosen: LaneQueue, ready: Sequence[LaneQueue]) -> None:
        """Count one publish from ``chosen`` against every other queue that waited."""
        chosen.waited = 0
        for queue in ready:
            if queue is not chosen:
                queue.waited += 1


def queues_for(order: BacklogOrder, last_seq: int) -> list[LaneQueue]:
    """The queues of a new connection, in priority order.

    ``last_seq`` is the newest seq stored when the connection starts: with
    ``newest_first`` the bulk lane's events up to it are the backlog.
    """
    queues = [
        LaneQueue.ascending("alert", ALERT),
        LaneQueue.ascending("control", CONTROL),
    ]
    if order == "newest_first":
        queues.append(LaneQueue.ascending("bulk", BULK, floor=last_seq))
        queues.append(LaneQueue.descending_from("backlog", BULK, ceiling=last_seq))
    else:
        queues.append(LaneQueue.ascending("bulk", BULK))
    return queues
