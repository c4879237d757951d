"""Run a :class:`~simulators.board.board.Board` on a line in a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from simulators.board.board import Board, BoardOptions
from simulators.board.transport import Line


class BoardRunner:
    """Drives a board on a line: reads host bytes, steps the clock, writes the output.

    Use as a context manager, or call :meth:`start` and :meth:`stop` (which joins).
    """

    def __init__(self, line: Line, options: BoardOptions | None = None, tick: float = 0.01):
        self.line = line
        self.tick = tick
        self.board = Board(options or BoardOptions(), now=time.monotonic())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-board", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> BoardRunner:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and join the thread (the line stays open; the caller closes it)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def run_forever(self, duration: float = 0.0) -> None:
        """Run in the calling thread until interrupted or ``duration`` seconds pass."""
        deadline = time.monotonic() + duration if duration > 0 else None
        while deadline is None or time.monotonic() < deadline:
            self._once()

    def __enter__(self) -> BoardRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._once()
        except BaseException as exc:  # reported to the test through .error
            self.error = exc

    def _once(self) -> None:
        data = self.line.read(self.tick)
        now = time.monotonic()
        if data:
            self.board.receive(data, now)
        for chunk in self.board.step(now):
            self.line.write(chunk)
