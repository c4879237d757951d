"""Byte lines for the simulated board: the :class:`Line` protocol and an in-memory pair.

On a pseudo-terminal the board's line is :class:`simulators.sensors.ptyport.PtyPort`
(the host opens its ``path``), the same pty the sensor simulators write to.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Line(Protocol):
    """The board's end of a serial line."""

    def read(self, timeout: float) -> bytes:
        """Return the bytes available within ``timeout`` seconds (maybe none)."""
        ...

    def write(self, data: bytes) -> None:
        """Send bytes to the host end."""
        ...

    def close(self) -> None:
        """Release the line."""
        ...


class _Pipe:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._cond = threading.Condition()

    def put(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def get(self, timeout: float) -> bytes:
        with self._cond:
            if not self._buf:
                self._cond.wait(timeout)
            out = bytes(self._buf)
            self._buf.clear()
            return out


class MemoryLine:
    """An in-memory full-duplex line; ``host`` is the other end's (read, write) pair."""

    def __init__(self) -> None:
        self._to_host = _Pipe()
        self._to_board = _Pipe()
        self.host = _HostEnd(self._to_host, self._to_board)

    def read(self, timeout: float) -> bytes:
        """Return bytes the host wrote."""
        return self._to_board.get(timeout)

    def write(self, data: bytes) -> None:
        """Send bytes to the host."""
        self._to_host.put(data)

    def close(self) -> None:
        """Nothing to release."""


class _HostEnd:
    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing

    def read(self, timeout: float) -> bytes:
        return self._in.get(timeout)

    def write(self, data: bytes) -> None:
        self._out.put(data)
