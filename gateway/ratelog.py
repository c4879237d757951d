"""Log a recurring problem once per interval, with a count of what was held back."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimitedLog:
    """At most one record per ``key`` per ``interval_s``; keys are bounded by ``max_keys``.

    A field sensor spewing garbage must not flood the journal: the first occurrence of
    a problem is logged with its context, repeats within the interval are only counted,
    and the next record says how many were held back. The least recently logged key is
    evicted once ``max_keys`` keys are tracked.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 60.0,
        max_keys: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, list[float]] = OrderedDict()  # key -> [last, held back]

    def __len__(self) -> int:
        return len(self._seen)

    def log(self, key: str, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged within the interval; True if logged."""
        now = self._clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._interval:
            entry[1] += 1
            return False
        held = int(entry[1]) if entry is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        if held:
            self._logger.log(level, msg + " (%d similar held back)", *args, held)
        else:
            self._logger.log(level, msg, *args)
        return True
