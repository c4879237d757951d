"""Ctrl-C as a request to stop, not an exception in the middle of a thread join.

A ``KeyboardInterrupt`` that lands inside ``Thread.join()`` (CPython before 3.13,
gh-90882) marks the joined thread as finished while it still runs; the interpreter
then exits under a thread that is inside ONNX Runtime or OpenCV, and the process
aborts with ``terminate called without an active exception``. Long commands that
own threads take the first Ctrl-C through :func:`stop_on_interrupt` instead: it sets
an event, the command stops its threads and joins them, and reports. A second
Ctrl-C raises ``KeyboardInterrupt`` as usual (quit now).

Services (``gateway run``, ``gateway ingest``, ``gateway ngsi bridge``, the sensor
simulator) run until SIGTERM or SIGINT through :func:`stop_on_signals`: every such
signal sets the event, and the service stops in order.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """Within the block, the first SIGINT sets the yielded event (main thread only)."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested  # signal handlers belong to the main thread: nothing to install
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():  # the second Ctrl-C: quit now
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        requested.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Within the block, SIGTERM and SIGINT set the yielded event (main thread only).

    The handlers that were installed before are restored when the block ends.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested  # signal handlers belong to the main thread: nothing to install
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        requested.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
