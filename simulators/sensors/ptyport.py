"""A pseudo-terminal standing in for a USB-serial adapter that can be unplugged.

The simulator writes to the master side; readers open the slave path, or better a
symlink the simulator controls (``--link``), which keeps its name across an unplug and
replug while the pty behind it is a new one, as a udev ``/dev/serial/by-id`` link does.
The slave is put in raw mode and kept open here as well, so the master never sees EIO
when a reader closes and reopens the port. The sensor simulators and the simulated
sensor board both use it.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty


class PtyPort:
    """One pty pair; ``unplug()`` closes it, ``plug()`` makes a new one at the same link."""

    def __init__(self, link: str | None = None) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.slave_path = ""
        self.dropped_bytes = 0
        self.plug()

    @property
    def path(self) -> str:
        """The path readers should open."""
        return self.link or self.slave_path

    @property
    def plugged(self) -> bool:
        """Whether a pty is present."""
        return self.master >= 0

    def plug(self) -> None:
        """Create a new pty (raw, no echo) and point the link at its slave."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self.slave_path, tmp)
            os.replace(tmp, self.link)  # atomic: readers see the old or the new pty

    def unplug(self) -> None:
        """Close the pty (readers get an I/O error) and remove the link."""
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        """Write without blocking; what does not fit is dropped and counted (an overrun)."""
        if not self.plugged:
            self.dropped_bytes += len(data)
            return
        done = 0
        while done < len(data):
            try:
                done += os.write(self.master, data[done:])
            except BlockingIOError:
                break
        self.dropped_bytes += len(data) - done

    def read(self, timeout: float) -> bytes:
        """Return the bytes readers wrote, waiting at most ``timeout`` seconds."""
        if not self.plugged:
            time.sleep(timeout)
            return b""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return b""

    def drain(self) -> bytes:
        """Read what readers wrote to the port (commands), without blocking."""
        if not self.plugged:
            return b""
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Unplug for good."""
        self.unplug()
