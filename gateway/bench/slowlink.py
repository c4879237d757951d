"""A slow uplink on one box: a network namespace whose loopback rate-limits one port.

``bench priority --link-rate 2mbit`` runs the whole bench (broker, unit, consumers)
inside a fresh network namespace. There the unit reaches the broker on a port of its
own (the uplink); the kernel's token bucket filter (``tbf``, under an ``htb`` with a
``u32`` filter on that port) limits both directions of it to the rate, with a queue of
at most ``latency`` (400 ms) of data, as a cellular modem's buffer does. The consumers
use the broker's other port at loopback speed (the centre's own network). The
loopback's MTU is set to 1,500 bytes, as on a real link (65,536 otherwise: one TCP
segment would hold a whole window). There is no propagation delay (``netem`` is not
available on every kernel): the link's round trip is its serialization time.

Needs root (``ip netns``, ``tc``) and the ``ip`` and ``tc`` programs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence

from gateway.errors import UsageError

LINK_MTU = 1500
QUEUE_LATENCY = "400ms"


def _run(args: Sequence[str]) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"{' '.join(args)} failed: {done.stderr.strip() or done.returncode}")


def check_can_shape() -> None:
    """Raise :class:`UsageError` unless this process may create and shape a namespace."""
    if os.geteuid() != 0:
        raise UsageError("--link-rate needs root (it creates a network namespace and a tc qdisc)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise UsageError(f"--link-rate needs the {tool!r} program (apt-get install iproute2)")


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    """A fresh network namespace with its loopback up (MTU 1,500); deleted afterwards."""
    check_can_shape()
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up", "mtu", str(LINK_MTU)])
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def run_inside(name: str, argv: Sequence[str]) -> int:
    """Run ``python -m gateway argv`` inside namespace ``name``; its exit code."""
    return subprocess.run(
        ["ip", "netns", "exec", name, sys.executable, "-m", "gateway", *argv], check=False
    ).returncode


def shape_port(port: int, rate: str) -> None:
    """Limit TCP traffic from and to ``port`` on this namespace's loopback to ``rate``.

    Everything else on the loopback is left at full speed. ``rate`` is in tc's units
    (``2mbit``, ``256kbit``).
    """
    tc = ["tc"]
    _run([*tc, "qdisc", "replace", "dev", "lo", "root", "handle", "1:", "htb", "default", "10"])
    for classid in ("1:10", "1:20"):
        fast = ["htb", "rate", "10gbit", "quantum", "60000"]
        _run([*tc, "class", "add", "dev", "lo", "parent", "1:", "classid", classid, *fast])
    bucket = ["rate", rate, "burst", str(2 * LINK_MTU), "latency", QUEUE_LATENCY]
    _run([*tc, "qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "tbf", *bucket])
    for field in ("sport", "dport"):
        match = ["u32", "match", "ip", field, str(port), "0xffff", "flowid", "1:20"]
        _run([*tc, "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", *match])


def link_stats() -> str:
    """The shaped class's counters (bytes, packets, drops), as tc prints them."""
    done = subprocess.run(
        ["tc", "-s", "qdisc", "show", "dev", "lo"], capture_output=True, text=True, check=False
    )
    return done.stdout
