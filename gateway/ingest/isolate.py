"""Write a batch, isolating the lines a database refuses instead of losing the batch.

InfluxDB answers 400 for a whole request when one point is bad (a parse error, a
field type conflict). :func:`write_isolating` then splits the batch in halves and
writes each, down to single bodies (one message's lines). A body refused on its own
is checked against :meth:`Database.probe`: when a known-good point goes in, the
body itself is bad and is returned to be dead-lettered; when the probe is refused
too, the database refuses everything, which is a configuration fault
(:class:`ConfigFaultError`, held and retried, never dead-lettered). A body that
needs ``k`` of ``n`` bodies isolated costs about ``2 k log2 n`` requests; the halves
already written are written again on a retry, which overwrites them (same series and
time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.ingest.database import RejectedWriteError


class Writer(Protocol):
    """What :func:`write_isolating` needs of :class:`gateway.ingest.database.Database`."""

    def write(self, bodies: list[bytes]) -> None:
        """Write the bodies in one request (raising the database module's errors)."""
        ...

    def probe(self) -> None:
        """Write one known-good point."""
        ...


def write_isolating(db: Writer, bodies: Sequence[bytes]) -> list[tuple[int, str]]:
    """Write ``bodies``; return ``(index, reason)`` of each body refused on its own.

    Raises:
        RetryableWriteError: the database is away, busy or (``ConfigFaultError``)
            refusing everything; nothing is to be dead-lettered then.
    """
    refused: list[tuple[int, str]] = []
    pending = [(0, len(bodies))]
    while pending:
        lo, hi = pending.pop()
        try:
            db.write(list(bodies[lo:hi]))
        except RejectedWriteError as exc:
            if hi - lo == 1:
                db.probe()  # raises ConfigFaultError when the database refuses everything
                refused.append((lo, str(exc)))
                continue
            mid = (lo + hi) // 2
            pending += [(mid, hi), (lo, mid)]  # the first half is written first
    refused.sort()
    return refused
