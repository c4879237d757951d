"""Resolve and connect with one deadline, naming the cause of a failure.

The field tools (camera probe, ``gateway doctor``) tell a crew *why* a host cannot
be reached: the name does not resolve, nothing listens, there is no route, or
nothing answers in time. :class:`NetError` carries that cause; each caller adds
the fix that fits what it was connecting to.
"""

from __future__ import annotations

import errno
import socket
import threading
import time

from gateway.errors import GatewayError

# Causes, as reported in NetError.cause
DNS_FAILURE = "DNS failure"
REFUSED = "connection refused"
NO_ROUTE = "no route to host"
TIMEOUT = "timeout"
FAILED = "connection failed"


class NetError(GatewayError):
    """A host that cannot be reached: ``cause`` (one of the constants above) and detail."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


def resolve(host: str, port: int, timeout_s: float) -> list[tuple[int, tuple[str, int]]]:
    """``(family, address)`` pairs for ``host``; in a helper thread (no timeout of its own)."""
    result: list[object] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            result.append(exc)

    worker = threading.Thread(target=lookup, name="resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout_s))
    if not result:
        raise NetError(DNS_FAILURE, f"{host} did not resolve in {timeout_s:.1f} s")
    found = result[0]
    if isinstance(found, OSError):
        raise NetError(DNS_FAILURE, f"{host} does not resolve ({found.strerror or found})")
    assert isinstance(found, list)
    return [(int(family), addr[:2]) for family, _type, _proto, _name, addr in found]


def connect(host: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection to ``host:port`` within ``timeout_s`` (resolution included)."""
    deadline = time.monotonic() + timeout_s
    addresses = resolve(host, port, timeout_s)
    where = f"{host}:{port}"
    last: OSError | None = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    if isinstance(last, ConnectionRefusedError):
        raise NetError(REFUSED, f"nothing listens on {where}")
    if isinstance(last, TimeoutError):
        raise NetError(TIMEOUT, f"no answer from {where} in {timeout_s:.1f} s")
    if last is not None and last.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        raise NetError(NO_ROUTE, f"{where}: {last.strerror}")
    detail = last.strerror if last is not None and last.strerror else str(last)
    raise NetError(FAILED, f"{where}: {detail}")


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (monotonic), at least a few milliseconds."""
    return max(0.05, deadline - time.monotonic())
