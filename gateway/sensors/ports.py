"""Why a serial port does not open: the cause and the fix, for the field tools.

``gateway sensors read`` and ``gateway doctor`` name the same causes: the device is
not there, this user may not open it, another process holds it, or the path is not
a serial port at all.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PortProblem:
    """A serial port that cannot be used: ``cause`` (short), ``detail``, ``fix``."""

    cause: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}: {self.detail}"


def port_problem(port: str) -> PortProblem | None:
    """What is wrong with a device path before opening it (``None``: try to open it).

    pyserial URLs (``socket://``, ``rfc2217://``, ...) are not checked here.
    """
    if "://" in port:
        return None
    if not os.path.exists(port):
        return PortProblem(
            "no such device",
            f"{port} does not exist",
            "check the cable and the USB adapter (ls -l /dev/serial/by-id/); name the port by "
            "its /dev/serial/by-id/ path so it does not move between boots",
        )
    if not os.access(port, os.R_OK | os.W_OK):
        return permission_denied(port)
    return None


def permission_denied(port: str) -> PortProblem:
    """The problem when the user running the gateway may not open ``port``."""
    return PortProblem(
        "permission denied",
        f"cannot open {port}",
        "add the service user to the dialout group (usermod -aG dialout USER), then log in again",
    )


def open_problem(port: str, exc: BaseException) -> PortProblem:
    """The cause of an exception pyserial raised while opening ``port``."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    lowered = text.lower()
    if code == errno.EBUSY or "busy" in lowered:
        return PortProblem(
            "port busy",
            f"{port}: {text}",
            f"another process holds {port} (is gateway run running? fuser -v {port})",
        )
    if code == errno.ENOTTY or "inappropriate ioctl" in lowered:
        return PortProblem(
            "not a serial port",
            f"{port} is not a terminal device ({text})",
            "give the sensor's serial device (/dev/ttyUSB*, /dev/ttyAMA*, /dev/serial/by-id/...)",
        )
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in lowered:
        return permission_denied(port)
    if code == errno.ENOENT or "no such file" in lowered:
        found = port_problem(port)
        if found is not None:
            return found
    return PortProblem("cannot open", f"{port}: {text}", "check the port name and the adapter")
