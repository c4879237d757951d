"""Progress of long commands on stderr, only when stderr is a terminal.

One mechanism (tqdm, as the model store's downloads use): :func:`bar` for work with
a count (frames of a video), :func:`ticker` for work without one (a benchmark's
elapsed time). Log records are written above the bar while it shows, and nothing at
all is drawn when stderr is a file or a pipe (journald, CI, ``2>log``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def enabled() -> bool:
    """Whether progress is drawn: stderr is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _size() -> tuple[int, int]:
    """The terminal's (columns, rows), or 80x24 when it reports none.

    A serial console or a bare pseudo-terminal reports 0x0, and tqdm then draws nothing.
    """
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        columns, rows = size.columns, size.lines
    except (OSError, ValueError, AttributeError):
        columns = rows = 0
    return (columns if columns > 0 else 80, rows if rows > 0 else 24)


@contextlib.contextmanager
def bar(
    desc: str,
    unit: str,
    total: int | None = None,
    *,
    leave: bool = True,
    bar_format: str | None = None,
) -> Iterator[tqdm]:  # type: ignore[type-arg]
    """A progress bar (count, rate, ETA when ``total`` is known); disabled off a terminal."""
    show = enabled()
    with contextlib.ExitStack() as stack:
        if show:
            stack.enter_context(logging_redirect_tqdm())
        progress = stack.enter_context(
            tqdm(
                total=total,
                desc=desc,
                unit=unit,
                disable=not show,
                file=sys.stderr,
                ncols=_size()[0] if show else None,
                nrows=_size()[1] if show else None,
                leave=leave,
                bar_format=bar_format,
            )
        )
        yield progress


def advance(progress: tqdm, done: int, total: int | None = None) -> None:  # type: ignore[type-arg]
    """Move ``progress`` to ``done`` (of ``total``, which may become known late)."""
    if total and progress.total != total:
        progress.total = total
    if done > progress.n:
        progress.update(done - progress.n)


@contextlib.contextmanager
def ticker(desc: str, every_s: float = 1.0) -> Iterator[None]:
    """Elapsed time of ``desc`` on one line, redrawn every ``every_s`` (only on a terminal)."""
    if not enabled():
        yield
        return
    stop = threading.Event()
    with bar(desc, "s", leave=False, bar_format="{desc}: {elapsed} elapsed") as progress:

        def tick() -> None:
            while not stop.wait(every_s):
                progress.refresh()

        thread = threading.Thread(target=tick, name="progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(2.0)
