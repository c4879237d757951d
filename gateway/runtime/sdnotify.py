"""systemd notifications (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``) without a dependency.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to
``Type=notify`` services; a notification is one datagram. Without the variable every
call is a no-op, so the gateway runs the same outside systemd.
"""

from __future__ import annotations

import os
import socket


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr or addr[0] not in "/@":
        return None
    return "\0" + addr[1:] if addr[0] == "@" else addr


def notify(state: str) -> bool:
    """Send ``state`` to systemd; return whether a datagram was sent."""
    addr = _address()
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), addr)
    except OSError:
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half the watchdog period systemd expects (``WATCHDOG_USEC``), or ``None``."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.5)
    except ValueError:
        return None
