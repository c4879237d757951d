"""Byte lines for the simulated board: a pseudo-terminal, or an in-memory pair for tests."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
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


class PtyLine:
    """A pseudo-terminal: the board owns the master, the host opens ``path`` (the slave).

    The slave is put in raw mode and kept open here as well, so the master never sees
    EIO when the host closes and reopens the port. Writes the host does not read fill
    the kernel buffer; beyond it bytes are dropped and counted, like a UART overrun.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.overrun_bytes = 0

    def read(self, timeout: float) -> bytes:
        """Return the bytes the host wrote, waiting at most ``timeout`` seconds."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return b""

    def write(self, data: bytes) -> None:
        """Write to the host; what does not fit in the kernel buffer is dropped."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                self.overrun_bytes += len(view)
                return
            view = view[n:]

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


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
