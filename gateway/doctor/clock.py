"""The clock: set, and synchronised (events carry its timestamps).

The synchronisation state comes from ``timedatectl`` (systemd) or, without it, from
the kernel's NTP state (``adjtimex`` in read-only mode, which any user may call and
which every container on the host shares). When neither answers, the state is
reported as unknown, not guessed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from gateway.doctor.context import Context
from gateway.doctor.result import CheckResult

# Before this the clock has not been set (a board without RTC after a power cut).
EARLIEST = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TIME_ERROR = 5  # adjtimex: clock not synchronised
STA_UNSYNC = 0x0040
_FIX = (
    "enable NTP (timedatectl set-ntp true, or chrony/systemd-timesyncd) and let it reach "
    "a time server; on a unit without network, a GPS time source"
)


@dataclass(frozen=True, slots=True)
class SyncState:
    """What one source says about NTP synchronisation."""

    source: str
    synchronized: bool
    detail: str = ""


SyncSource = Callable[[], SyncState | None]


def timedatectl_state() -> SyncState | None:
    """``timedatectl show -p NTPSynchronized``; ``None`` without systemd."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        proc = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = proc.stdout.strip()
    if proc.returncode != 0 or value not in ("yes", "no"):
        return None
    return SyncState("timedatectl", value == "yes")


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """``struct timex`` (Linux, 64-bit and 32-bit longs alike)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


def adjtimex_state() -> SyncState | None:
    """The kernel's NTP state (``adjtimex`` with no modes: read only)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return interpret_adjtimex(state, int(timex.status), int(timex.maxerror))


def interpret_adjtimex(state: int, status: int, maxerror_us: int) -> SyncState:
    """Turn adjtimex's return value, status bits and maximum error into a state."""
    if state == TIME_ERROR or status & STA_UNSYNC:
        return SyncState("adjtimex", False, "the kernel's clock is not NTP-disciplined")
    return SyncState("adjtimex", True, f"maximum error {maxerror_us / 1000:.0f} ms")


DEFAULT_SOURCES: tuple[SyncSource, ...] = (timedatectl_state, adjtimex_state)


def check_clock(
    ctx: Context,
    sources: Sequence[SyncSource] = DEFAULT_SOURCES,
    now: Callable[[], float] = time.time,
) -> Iterator[CheckResult]:
    """The time is plausible, and what the first source that answers says about NTP."""
    moment = dt.datetime.fromtimestamp(now(), dt.UTC)
    if moment < EARLIEST:
        yield CheckResult(
            "clock",
            "clock",
            "fail",
            f"the clock says {moment:%Y-%m-%d %H:%M} UTC: it has not been set; events "
            "would carry wrong timestamps (and certificates look invalid)",
            _FIX,
        )
        return
    shown = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    for source in sources:
        state = source()
        if state is None:
            continue
        extra = f", {state.detail}" if state.detail else ""
        if state.synchronized:
            yield CheckResult(
                "clock", "clock", "ok", f"{shown}, NTP synchronised ({state.source}{extra})"
            )
        else:
            yield CheckResult(
                "clock",
                "clock",
                "warn",
                f"{shown}, NOT synchronised ({state.source}{extra}): event timestamps may drift",
                _FIX,
            )
        return
    yield CheckResult(
        "clock",
        "clock",
        "warn",
        f"{shown}, synchronisation unknown (neither timedatectl nor adjtimex answered)",
        "check the time source by hand (chronyc tracking, or ntpq -p)",
    )
