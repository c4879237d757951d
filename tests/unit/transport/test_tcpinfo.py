"""IP-layer byte counts from the kernel's TCP counters, on real loopback sockets."""

from __future__ import annotations

import socket

import pytest

from gateway.transport.tcpinfo import TCP_HEADER, ip_totals


def _pair() -> tuple[socket.socket, socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    server.close()
    return client, peer


def _wait_acked(sock: socket.socket, payload: int) -> tuple[int, int]:
    for _ in range(200):
        totals = ip_totals(sock)
        assert totals is not None
        if totals[0] >= payload:
            return totals
    raise AssertionError("never counted")


def test_payload_and_a_header_per_segment_each_way() -> None:
    client, peer = _pair()
    try:
        start = ip_totals(client)
        assert start is not None  # the handshake's SYN and ACK: headers only
        assert start[0] % (20 + TCP_HEADER) == 0 and start[0] > 0
        for _ in range(10):
            client.sendall(b"x" * 100)
            assert peer.recv(1000)
        peer.sendall(b"y" * 300)
        got = b""
        while len(got) < 300:
            got += client.recv(1000)
        sent, received = _wait_acked(client, 1000)
        assert sent >= 1000 + 10 * (20 + TCP_HEADER)  # ten data segments at least
        assert received >= 300 + 10 * (20 + TCP_HEADER)  # the data and the ACKs back
        assert (sent - 1000) % (20 + TCP_HEADER) == 0
        assert (received - 300) % (20 + TCP_HEADER) == 0
    finally:
        client.close()
        peer.close()


@pytest.mark.parametrize("kind", ["closed", "unix", "not a socket"])
def test_what_cannot_be_measured_is_none(kind: str) -> None:
    if kind == "closed":
        client, peer = _pair()
        client.close()
        peer.close()
        assert ip_totals(client) is None
    elif kind == "unix":
        a, b = socket.socketpair()
        try:
            assert ip_totals(a) is None
        finally:
            a.close()
            b.close()
    else:
        assert ip_totals(object()) is None
