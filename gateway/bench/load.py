"""The machine's load, said next to every benchmark figure (the cores are shared)."""

from __future__ import annotations

import os


def load_1m() -> float:
    """The 1-minute load average, rounded to 0.01."""
    return round(os.getloadavg()[0], 2)


def describe_load() -> str:
    """``load 1.23 / 0.98 (1 / 5 min) on 2 cores``."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"
