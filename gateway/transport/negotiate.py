"""Which events a unit may send as compact batches: fixed by config, or negotiated.

``[outbox] batch``:

* ``off``: never; ``backlog``: every bulk type, whatever the centre reads (the
  operator vouches that every consumer reads batches);
* ``negotiate``: only what the central consumers declare they read. Each consumer
  keeps a retained declaration on ``{prefix}/central/capabilities/{consumer}``
  (:mod:`gateway.events.capabilities`); the unit subscribes to all of them and batches
  a bulk type only while at least one declaration is in force and **every** one lists
  that type for the ``zlib-json-array`` container version this unit writes. Limits are
  the smallest declared and the unit's own.

Anything else means one event per message: no declaration (yet, on each new
connection until the retained ones arrive), one withdrawn (empty retained message),
one that is malformed or hostile (too large, wrong types, another consumer's name,
another prefix, no encoding this unit writes), more consumers than
:data:`MAX_CONSUMERS`. A refused declaration is logged (WARNING, at most once a minute
per consumer), counted, and keeps batches off until that consumer publishes a good
one or withdraws it. :meth:`BatchPolicy.on_message` runs on paho's network thread:
it parses at most 16 KiB and swaps one immutable :class:`Batching`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from gateway.events.capabilities import (
    BATCH_ENCODING,
    BATCH_ENCODING_VERSION,
    Declaration,
    DeclarationError,
    parse_declaration,
    valid_consumer,
)
from gateway.events.envelope import EVENT_TYPES
from gateway.events.topics import capabilities_topic
from gateway.health import BatchHealth, BatchMode
from gateway.ratelog import RateLimitedLog
from gateway.transport.forwarder import Batching
from gateway.transport.lanes import BULK, lane_of

log = logging.getLogger(__name__)

MAX_CONSUMERS: Final = 32
"""Declarations (good or refused) a unit tracks; beyond, batches stay off."""
BULK_TYPES: Final = frozenset(t for t in EVENT_TYPES if lane_of(t) == BULK)
_ENCODING_LABEL: Final = f"{BATCH_ENCODING}/{BATCH_ENCODING_VERSION}"


SETTLE_S: Final = 1.0
"""How long a wider batching must stand before it is used (narrower: at once)."""


@dataclass(frozen=True, slots=True)
class _State:
    """What is in force now, and what will be once it stood ``settle_s`` (replaced whole)."""

    batching: Batching | None
    reason: str
    since: float
    pending: Batching | None = None
    pending_reason: str = ""
    pending_at: float = 0.0  # monotonic time the pending batching was negotiated


def _narrower(new: Batching | None, old: Batching | None) -> bool:
    """Whether ``new`` batches nothing that ``old`` did not (safe to use at once)."""
    if new is None or old is None:
        return new is None
    return (
        (new.types or frozenset()) <= (old.types or frozenset())
        and new.max_events <= old.max_events
        and new.max_bytes <= old.max_bytes
    )


class BatchPolicy:
    """The batching in force for the forwarder (:meth:`current`) and its health."""

    def __init__(
        self,
        mode: BatchMode,
        own: Batching,
        prefix: str,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.mode: BatchMode = mode
        self._monotonic = monotonic
        self.settle_s = settle_s
        self._connected_at = float("-inf")  # monotonic time of the last new connection
        self._hold_until = float("-inf")
        self.own = replace(own, types=BULK_TYPES)
        self.prefix = prefix
        self._topic_head = capabilities_topic(prefix, "")
        self._clock = clock
        self._lock = threading.Lock()
        self._declared: dict[str, Declaration] = {}
        self._refused: dict[str, str] = {}  # consumer -> why
        self.refusals = 0
        self._ratelog = RateLimitedLog(log, interval_s=60.0, max_keys=MAX_CONSUMERS + 1)
        if mode == "backlog":
            self._state = _State(self.own, "configured: [outbox] batch = backlog", clock())
        elif mode == "off":
            self._state = _State(None, "configured: [outbox] batch = off", clock())
        else:
            self._state = _State(None, "no consumer has declared what it reads", clock())

    @property
    def negotiates(self) -> bool:
        """Whether the unit must subscribe to the consumers' declarations."""
        return self.mode == "negotiate"

    def owns(self, topic: str) -> bool:
        """Whether ``topic`` is a declaration topic (a message for :meth:`on_message`)."""
        return self.negotiates and topic.startswith(self._topic_head)

    def current(self) -> Batching | None:
        """The batching in force now (forwarder thread).

        A batching that allows more than the one in force (batches switched on, a type
        added, larger limits) is used only once it stood :attr:`settle_s`: retained
        declarations arrive one by one after a (re)connection, and a consumer that
        reads fewer types may come after one that reads more. A narrower one is in
        force at once.
        """
        state = self._state
        if state.pending is not None and self._monotonic() - state.pending_at >= self.settle_s:
            with self._lock:
                state = self._state
                if state.pending is not None:
                    self._promote(state)
                    state = self._state
        return state.batching

    def _promote(self, state: _State) -> None:
        """Put the pending batching in force (hold the lock)."""
        batching = state.pending
        assert batching is not None
        self._state = _State(batching, state.pending_reason, self._clock())
        log.info(
            "compact batches on for %s (%s, at most %d events / %d bytes): %s",
            ", ".join(sorted(batching.types or ())),
            _ENCODING_LABEL,
            batching.max_events,
            batching.max_bytes,
            state.pending_reason,
        )

    def on_connected(self) -> None:
        """A new connection: what was declared may have changed while away (network thread).

        The broker sends the retained declarations again after the subscription; until
        then events go one by one.
        """
        if not self.negotiates:
            return
        with self._lock:
            self._declared.clear()
            self._refused.clear()
            self._connected_at = self._monotonic()
            self._hold_until = self._connected_at + self.settle_s
            self._update("waiting for the consumers' declarations (new connection)", quiet=True)

    def holds_bulk(self) -> bool:
        """Whether the bulk lane waits (a replay must not start one by one for nothing).

        Only just after a new connection: until :attr:`settle_s` after it, or after the
        first declaration that arrived in that time, at most twice :attr:`settle_s`
        in all. Alerts and the unit's own state are never held.
        """
        if not self.negotiates or self._monotonic() >= self._hold_until:
            return False
        self.current()  # a batching that stood long enough ends the hold
        return self._state.pending is not None or not self._declared

    def on_message(self, topic: str, payload: bytes) -> None:
        """A declaration arrived, or was withdrawn (network thread; never raises)."""
        if not self.owns(topic):
            return
        try:
            self._on_message(topic, payload)
        except Exception:  # a defect here must never stop the link's thread
            log.exception("handling the declaration on %s failed; batches off", topic)
            with self._lock:
                self._refuse(topic[len(self._topic_head) :][:64] or "?", "internal error")

    def _on_message(self, topic: str, payload: bytes) -> None:
        consumer = topic[len(self._topic_head) :]
        with self._lock:
            if not payload and valid_consumer(consumer):
                gone = self._declared.pop(consumer, None) or self._refused.pop(consumer, None)
                if gone is not None:
                    log.info("consumer %s withdrew its declaration", consumer)
                self._update(f"consumer {consumer} withdrew its declaration")
                return
            if not valid_consumer(consumer):  # never a declaration: ignored, counted
                self.refusals += 1
                self._ratelog.log(
                    "refused:(name)",
                    logging.WARNING,
                    "ignored a message on %s: %r is not a consumer name ([A-Za-z0-9_-]{1,64}, "
                    "not a topic kind)",
                    topic[:200],
                    consumer[:64],
                )
                return
            try:
                known = consumer in self._declared or consumer in self._refused
                if not known and len(self._declared) + len(self._refused) >= MAX_CONSUMERS:
                    raise DeclarationError(f"more than {MAX_CONSUMERS} consumers declared")
                declaration = parse_declaration(payload, consumer, self.prefix)
                unknown = declaration.encoding(BATCH_ENCODING, BATCH_ENCODING_VERSION) is None
                if unknown and declaration.encodings:  # ([] says: reads no batches)
                    offered = ", ".join(e.label for e in declaration.encodings)
                    raise DeclarationError(
                        f"offers no encoding this unit writes ({_ENCODING_LABEL}); offered: "
                        f"{offered}"
                    )
            except DeclarationError as exc:
                self._refuse(consumer[:64], str(exc))
                return
            self._refused.pop(consumer, None)
            self._declared[consumer] = declaration
            self._log_ignored(declaration)
            self._update(f"declared by {consumer}")

    def _refuse(self, consumer: str, why: str) -> None:
        self.refusals += 1
        known = consumer in self._refused or consumer in self._declared
        if known or len(self._declared) + len(self._refused) < MAX_CONSUMERS:
            self._refused[consumer] = why
            self._declared.pop(consumer, None)
        else:  # bounded: the overflow keeps batches off until the next connection
            self._refused["(overflow)"] = why
        self._ratelog.log(
            f"refused:{consumer}",
            logging.WARNING,
            "refused the declaration of consumer %r on %s: %s; events go one by one",
            consumer,
            self._topic_head + consumer,
            why,
        )
        self._update(f"declaration of {consumer} refused: {why}")

    def _log_ignored(self, declaration: Declaration) -> None:
        entry = declaration.encoding(BATCH_ENCODING, BATCH_ENCODING_VERSION)
        ignored = sorted(entry.types - BULK_TYPES) if entry is not None else []
        if ignored:
            log.info(
                "consumer %s lists types this unit never batches (ignored): %s",
                declaration.consumer,
                ", ".join(ignored[:10]),
            )

    def _update(self, why: str, quiet: bool = False) -> None:
        """Recompute what is in force (hold the lock); log a change."""
        batching, reason = self._negotiated(why)
        state = self._state
        if batching == state.batching:  # back to what is in force: nothing pending
            self._state = replace(state, reason=reason, pending=None)
            return
        if not _narrower(batching, state.batching):
            if batching != state.pending:
                now = self._monotonic()
                self._state = replace(
                    state, pending=batching, pending_reason=reason, pending_at=now
                )
                if now < self._hold_until:  # just connected: hold the replay until it stands
                    self._hold_until = min(
                        now + self.settle_s, self._connected_at + 2 * self.settle_s
                    )
            if self.settle_s <= 0:
                self._promote(self._state)
            return
        self._state = _State(batching, reason, self._clock())
        if quiet:
            log.debug("compact batches: %s", reason)
        elif batching is None:
            log.warning("compact batches off: %s", reason)
        else:
            log.info(
                "compact batches narrowed to %s: %s",
                ", ".join(sorted(batching.types or ())),
                reason,
            )

    def _negotiated(self, why: str) -> tuple[Batching | None, str]:
        if self._refused:
            consumer, problem = next(iter(self._refused.items()))
            return None, f"declaration of {consumer} refused: {problem}"
        if not self._declared:
            return None, why
        types = set(BULK_TYPES)
        max_events, max_bytes = self.own.max_events, self.own.max_bytes
        for declaration in self._declared.values():
            entry = declaration.encoding(BATCH_ENCODING, BATCH_ENCODING_VERSION)
            if entry is None:  # "encodings": []: this consumer reads no batches
                types = set()
                continue
            types &= entry.types
            max_events = min(max_events, entry.max_events)
            max_bytes = min(max_bytes, entry.max_bytes)
        consumers = ", ".join(sorted(self._declared))
        if not types:
            return None, f"no bulk type is read batched by every consumer ({consumers})"
        batching = replace(
            self.own, types=frozenset(types), max_events=max_events, max_bytes=max_bytes
        )
        return batching, f"declared by {consumers}"

    def health(self, batches: int) -> BatchHealth:
        """What is in force, since when, and why (``batches``: sent since start)."""
        self.current()  # a pending batching that stood long enough is in force now
        state = self._state
        with self._lock:
            consumers = tuple(sorted(self._declared))
        b = state.batching
        return BatchHealth(
            mode=self.mode,
            state="on" if b is not None else "off",
            since=state.since,
            reason=state.reason,
            encoding=_ENCODING_LABEL if b is not None else None,
            types=tuple(sorted(b.types or ())) if b is not None else (),
            consumers=consumers,
            refusals=self.refusals,
            batches=batches,
        )
