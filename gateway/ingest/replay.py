"""Replay dead letters after a fix: through the whole decode path again, into the database.

A ``message`` letter is converted with the current configuration (a fixed mapping, a
wider time window, a raised size limit) and a ``line`` letter is written as it is. The
letters that now go in are written (bisected like live batches) and removed from the
store; those refused again stay, with the new reason and one more attempt. A database
that is away or refuses everything stops the replay with an error and removes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.ingest.convert import Limits, convert
from gateway.ingest.database import Database, RetryableWriteError
from gateway.ingest.deadstore import DeadLetterStore, Letter
from gateway.ingest.decode import DB_REJECTED, RejectedError
from gateway.ingest.isolate import write_isolating


@dataclass(slots=True)
class ReplayResult:
    """What a replay did: ids written (and removed), ids refused again with the reason."""

    written: list[int] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)
    skipped_truncated: list[int] = field(default_factory=list)


class ReplayStoppedError(Exception):
    """The database went away or refuses everything; ``result`` says what was done before."""

    def __init__(self, cause: RetryableWriteError, result: ReplayResult) -> None:
        super().__init__(str(cause))
        self.result = result


def replay_store(
    store: DeadLetterStore,
    database: Database,
    limits: Limits,
    *,
    reason: str | None = None,
    ids: tuple[int, ...] = (),
    batch_size: int = 1000,
) -> tuple[int, ReplayResult]:
    """Replay the selected letters page by page (memory: one page); (selected, result).

    Raises:
        ReplayStoppedError: the database is away or refuses everything; the pages
            before were written and removed, the rest stays in the store.
    """
    total, selected, after = ReplayResult(), 0, 0
    while True:
        page = store.letters(reason=reason, ids=ids, limit=batch_size, after_id=after)
        if not page:
            return selected, total
        after = page[-1].id
        selected += len(page)
        try:
            part = replay(store, database, limits, page, batch_size)
        except RetryableWriteError as exc:
            raise ReplayStoppedError(exc, total) from exc
        total.written += part.written
        total.refused += part.refused
        total.skipped_truncated += part.skipped_truncated


def replay(
    store: DeadLetterStore,
    database: Database,
    limits: Limits,
    letters: list[Letter],
    batch_size: int = 1000,
) -> ReplayResult:
    """Replay ``letters`` (from ``store``) into ``database``.

    Raises:
        RetryableWriteError: the database is away, busy or refuses every write.
    """
    result = ReplayResult()
    ready: list[tuple[int, bytes]] = []
    for letter in letters:
        if letter.truncated:
            result.skipped_truncated.append(letter.id)
            continue
        if letter.kind == "line":
            ready.append((letter.id, letter.payload))
            continue
        try:
            converted = convert(letter.payload, limits, time.time(), letter.topic)
        except RejectedError as exc:
            store.refused_again(letter.id, exc.reason, exc.detail)
            result.refused.append((letter.id, exc.reason, exc.detail))
            continue
        if converted.points:
            ready.append((letter.id, converted.body))
        else:  # nothing to store (only non-finite numbers): done
            store.remove([letter.id])
            result.written.append(letter.id)
    for start in range(0, len(ready), batch_size):
        chunk = ready[start : start + batch_size]
        refused = dict(write_isolating(database, [body for _id, body in chunk]))
        written = []
        for index, (letter_id, _body) in enumerate(chunk):
            if index in refused:
                store.refused_again(letter_id, DB_REJECTED, refused[index])
                result.refused.append((letter_id, DB_REJECTED, refused[index]))
            else:
                written.append(letter_id)
        store.remove(written)
        result.written.extend(written)
    return result
