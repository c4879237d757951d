"""Bytes a TCP connection put on the network, from the kernel's own counters (Linux).

A cellular plan bills IP packets: the MQTT bytes of a link plus the TLS records around
them, the TCP and IP headers of every segment (pure ACKs, retransmissions, the SYN and
FIN included). ``getsockopt(TCP_INFO)`` gives the payload bytes sent and received
(``tcpi_bytes_sent``, retransmissions included; ``tcpi_bytes_received``) and the segments
each way (``tcpi_segs_out``, ``tcpi_segs_in``); each segment adds its headers: 20 bytes
of IPv4 (40 of IPv6), 20 of TCP and 12 of the timestamp option Linux sends by default.
Link-layer framing (and a carrier's own overhead) is below this and not counted.
"""

from __future__ import annotations

import socket
import struct
from typing import Final

# struct tcp_info (include/uapi/linux/tcp.h): offsets of the fields read here.
_BYTES_ACKED: Final = 120  # u64, since Linux 4.1 (the SYN counts one)
_BYTES_RECEIVED: Final = 128  # u64
_SEGS_OUT: Final = 136  # u32, since Linux 4.2
_SEGS_IN: Final = 140  # u32
_BYTES_SENT: Final = 200  # u64, since Linux 4.19 (retransmissions included)
_READ: Final = 256
TCP_HEADER: Final = 20 + 12  # with the timestamp option
IP_HEADER: Final = {socket.AF_INET: 20, socket.AF_INET6: 40}


def ip_totals(sock: object) -> tuple[int, int] | None:
    """``(bytes out, bytes in)`` at the IP layer so far, or None when not measurable.

    None for a socket that is not TCP over IP (a websocket wrapper, a Unix socket), one
    already closed, or a kernel without the counters.
    """
    getsockopt = getattr(sock, "getsockopt", None)
    family = getattr(sock, "family", None)
    tcp_info = getattr(socket, "TCP_INFO", None)
    if getsockopt is None or family not in IP_HEADER or tcp_info is None:
        return None
    try:
        raw = getsockopt(socket.IPPROTO_TCP, tcp_info, _READ)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, bytes) or len(raw) < _SEGS_IN + 4:
        return None
    acked, received = struct.unpack_from("=QQ", raw, _BYTES_ACKED)
    segs_out, segs_in = struct.unpack_from("=II", raw, _SEGS_OUT)
    if len(raw) >= _BYTES_SENT + 8:
        (sent,) = struct.unpack_from("=Q", raw, _BYTES_SENT)
    else:  # an older kernel: what was acknowledged (no retransmissions), less the SYN
        sent = max(acked - 1, 0)
    header = IP_HEADER[family] + TCP_HEADER
    return sent + segs_out * header, received + segs_in * header
